#!/usr/bin/env bash
# Runs every test: unit tests, the kernel capture tests and the end-to-end daemon tests
# (the last two need root; without it they print SKIPPED and say why).
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast "$@"
