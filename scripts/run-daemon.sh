#!/usr/bin/env bash
# Builds picosnitch and runs the daemon in the foreground with the default config
# (or PICOSNITCH_CONFIG). Installs what is missing first. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release -p picosnitch
args=()
if [[ -n "${PICOSNITCH_CONFIG:-}" ]]; then args=(--config "$PICOSNITCH_CONFIG"); fi
exec ./target/release/picosnitch daemon "${args[@]}"
