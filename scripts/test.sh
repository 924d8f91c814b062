#!/usr/bin/env bash
# Runs every test: unit tests, the kernel capture tests and the end-to-end daemon tests.
# The last two need root; without it they print SKIPPED and why (under CI=true they fail
# instead, since CI runs as root). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --workspace --all-targets
cargo nextest run --workspace --profile ci "$@"
