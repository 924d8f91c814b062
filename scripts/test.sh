#!/usr/bin/env bash
# Runs every test: unit tests, the kernel capture tests and the end-to-end daemon tests
# (cargo nextest), then the Nix packaging checks that run without nixpkgs
# (scripts/nix-checks.sh) and, in CI, the kernel matrix (vm-tests/kernel-matrix/run.sh).
# The root-only tests print SKIPPED and why without root (under CI=true they fail
# instead, since CI runs as root). Installs what is missing first. Every part runs even
# when an earlier one failed; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh || exit 2

failed=()
step() {
    local name=$1
    shift
    echo "==== $name: $*"
    local start=$SECONDS
    if "$@"; then
        echo "==== $name: passed in $((SECONDS - start)) s"
    else
        echo "==== $name: FAILED after $((SECONDS - start)) s"
        failed+=("$name")
    fi
}

step build cargo build --workspace --all-targets
step cargo-tests cargo nextest run --workspace --profile ci "$@"
step nix-checks ./scripts/nix-checks.sh
# Boots Debian kernels (5.10, 6.1, 6.12, 7.x) under qemu and checks the real daemon in
# each (vm-tests/kernel-matrix/README.md); needs root and downloads the kernels, so it
# runs in CI or when asked for.
if [[ ${CI:-} == true || ${PICOSNITCH_KERNEL_MATRIX:-} == 1 ]]; then
    step kernel-matrix ./vm-tests/kernel-matrix/run.sh
else
    echo "==== kernel-matrix: SKIPPED (runs with CI=true or PICOSNITCH_KERNEL_MATRIX=1)"
fi

if ((${#failed[@]})); then
    echo "failed: ${failed[*]}"
    exit 1
fi
echo "all passed"
