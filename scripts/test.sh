#!/usr/bin/env bash
# Runs every test. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run --workspace --no-fail-fast
