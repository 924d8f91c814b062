#!/usr/bin/env bash
# Builds picosnitch and runs the daemon in the foreground with the default config
# (or PICOSNITCH_CONFIG). Installs what is missing first. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release -p picosnitch
# The roles run as the service user ([data] owner, "picosnitch" by default).
if ! getent passwd picosnitch >/dev/null && [[ -z "${PICOSNITCH_CONFIG:-}" ]]; then
    echo "picosnitch: creating the service user and group picosnitch" >&2
    useradd --system --user-group --no-create-home --home-dir /var/lib/picosnitch --shell /usr/sbin/nologin picosnitch
fi
args=()
if [[ -n "${PICOSNITCH_CONFIG:-}" ]]; then args=(--config "$PICOSNITCH_CONFIG"); fi
exec ./target/release/picosnitch daemon "${args[@]}"
