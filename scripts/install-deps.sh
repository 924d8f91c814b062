#!/usr/bin/env bash
# Installs the Debian packages picosnitch needs to build and test, and nothing that is
# already there. Safe to run again; needs root.
set -euo pipefail

# Build: clang compiles bpf/*.c; libbpf-dev has bpf_helpers.h; llvm and bpftool are for
# inspecting objects (the BTF mirror test dumps BTF with bpftool).
# Tests: iproute2 (network namespaces), sqlite3 (the README's example queries).
packages=(clang llvm libbpf-dev bpftool iproute2 sqlite3)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "picosnitch: missing packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "picosnitch: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
