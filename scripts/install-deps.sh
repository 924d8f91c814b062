#!/usr/bin/env bash
# Installs the Debian packages picosnitch needs to build and test, and nothing that is
# already there. Safe to run again; needs root. A fresh machine of the CI kind has only
# Rust (with cargo-nextest), gcc, Python 3.11 and git.
set -euo pipefail

packages=(
    clang llvm libbpf-dev # the BPF programs are C compiled by clang (-target bpf) with libbpf's headers
    bpftool               # the test that checks the Rust mirror of the event structs dumps the object's BTF
    iproute2              # tests make network namespaces and veth pairs (ip netns, ip link)
    util-linux mount      # the opener's tests start a server in a new mount namespace (unshare) from a tmpfs (mount)
    procps                # sysctl for the ping-socket range inside a test namespace
    sqlite3               # the README's example queries
    tmux                  # the TUI tests drive the real binary in a real terminal
    dbus-daemon           # the notification tests run a real session bus for the desktop user
    passwd                # useradd: dbus-daemon needs an account for the desktop user it runs as
    bindfs fuse           # the desktop-user hasher tests mount a real FUSE filesystem as a desktop user (bindfs, without allow_other) and unmount it (fusermount)
    nethogs               # a peer the benchmark's smoke run (bench/run --smoke) measures beside picosnitch
    libnetfilter-queue1 libnfnetlink0 iptables # the OpenSnitch daemon the smoke run unpacks (apt-get download, not installed: its service would filter the machine) needs these
    postgresql            # the remote-history tests start a throwaway PostgreSQL cluster (initdb, postgres, psql) on loopback
    chromium              # the web UI tests run the page in headless Chromium (/usr/bin/chromium)
    chromium-driver       # (the issue asks for it with chromium; Playwright talks CDP to the browser itself)
    dnsmasq-base          # the reverse DNS tests run a real DNS server with PTR records (the binary only: the dnsmasq package would start a system resolver)
)
# The web UI tests drive Chromium with playwright-core from npm (pinned in
# crates/picosnitch/tests/browser/package-lock.json). A node that already brings its npm
# (NodeSource's nodejs) is enough; otherwise Debian's nodejs and npm.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "picosnitch: missing packages: ${missing[*]}; run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "picosnitch: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
