#!/usr/bin/env bash
# Kernel matrix: boots Debian kernels under qemu (software emulation) with an initramfs
# holding the static picosnitch binary and guest-init.sh, which runs the real daemon and
# real traffic inside and checks the database. Prints one RESULT line per run, then a
# table with one row per run (PASS, FAIL, or SKIPPED and why), and ends with exactly one
# line "N passed, N failed, N skipped". Exit status: 1 when a run failed, or was skipped
# under CI=true; 2 when the harness itself could not run; else 0. See README.md here.
#
# Needs root (apt-get install of qemu; the initramfs has a /dev/console node) and network
# access to a Debian mirror the first time; afterwards everything comes from .cache/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=$here/.cache

# The matrix. label | apt suite | package that leads to the kernel image | hook sets to run.
# "auto" lets the daemon probe; "fentry" forces BPF trampolines on kernels that also have
# the >= 6.4 tracepoints, so both hook sets are exercised there.
MATRIX=(
    "5.10|bullseye|linux-image-cloud-amd64|auto"
    "6.1|bookworm|linux-image-cloud-amd64|auto"
    "6.12|bookworm-security|linux-image-6.12-cloud-amd64|auto fentry"
    "7.x|sid|linux-image-cloud-amd64|auto fentry"
)
# Runs that must fail, as label:stage:text (text: words the RESULT line must contain).
# The daemon needs Linux >= 5.12 (socket cookies in tracing programs), so on 5.10 it must
# refuse to start, saying so before it loads anything: that refusal is the run's PASS.
# Any other outcome there (a verifier error, a daemon that starts, a boot failure, a
# timeout) is a FAIL.
EXPECT_FAIL=("5.10:daemon-start:needs Linux >= 5.12")

MIRROR=${KM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${KM_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEYRING=${KM_DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
# Per VM: a run takes 5-42 s here; guest-init.sh's own bounds add up to about 180 s.
VM_TIMEOUT=240
# All VMs together: a run that would start past this is reported as failed, not run.
BUDGET=600
QEMU_MEM=512
# A real CPU model (x86-64-v2) that TCG emulates in full. Not "max": it crashed a trixie 6.12
# kernel in about 1 boot of 10. Not "max,-cx16" either, a CPU no machine is: without
# cmpxchg16b, Linux 7.x cannot allocate socket-local storage at all (kmalloc_nolock()
# needs it), which the daemon then rightly reports as losses.
QEMU_CPU=Nehalem
QEMU_SMP=1
QEMU_ICOUNT=off
KERNEL_APPEND=

usage() {
    cat <<EOF
usage: $0 [options]
  --kernels LIST       comma-separated labels to run (default: all: $(labels | paste -sd, -))
  --expect-fail LIST   comma-separated LABEL[:STAGE[:TEXT]] runs that pass by failing at STAGE
                       with TEXT in the RESULT line (default: ${EXPECT_FAIL[*]});
                       a bare LABEL takes any failure; --expect-fail '' expects every run to pass
  --binary FILE        use this static picosnitch binary instead of building one
  --refresh            look the kernel packages up again (apt-get update) even if cached
  --timeout SECONDS    per-VM time limit (default: $VM_TIMEOUT)
  --budget SECONDS     time limit for all VMs together (default: $BUDGET)
  --hook-sets LIST     comma-separated hook sets to run where the matrix has them (default: all)
  --cpu MODEL          qemu -cpu model (default: $QEMU_CPU)
  --smp N              guest CPUs (default: $QEMU_SMP)
  --icount SHIFT|off   qemu -icount shift=SHIFT: guest time from executed instructions (default: $QEMU_ICOUNT)
  --append WORDS       extra words for the guest kernel's command line (for debugging)
Environment: KM_DEBIAN_MIRROR, KM_DEBIAN_SECURITY_MIRROR, KM_DEBIAN_KEYRING; CI=true makes
a skipped run (no root, a kernel that cannot be fetched, the budget used up) a failure.
EOF
}

labels() { local m; for m in "${MATRIX[@]}"; do echo "${m%%|*}"; done; }
die() { echo "kernel-matrix: error: $*" >&2; exit 2; }
note() { echo "kernel-matrix: $*" >&2; }
# Nothing can run at all: one SKIPPED line; under CI=true that is a failure.
skip_all() {
    echo "SKIPPED: kernel-matrix: $*"
    echo "0 passed, 0 failed, all skipped"
    [[ ${CI:-} == true ]] && exit 1
    exit 0
}

want_labels=$(labels | paste -sd, -)
want_hooks=
binary=
refresh=0
while (($#)); do
    case "$1" in
        --kernels) want_labels=${2:?--kernels needs a list}; shift 2 ;;
        --expect-fail) IFS=, read -r -a EXPECT_FAIL <<<"${2-}"; shift 2 ;;
        --binary) binary=${2:?--binary needs a file}; shift 2 ;;
        --refresh) refresh=1; shift ;;
        --timeout) VM_TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
        --budget) BUDGET=${2:?--budget needs seconds}; shift 2 ;;
        --hook-sets) want_hooks=${2:?--hook-sets needs a list}; shift 2 ;;
        --cpu) QEMU_CPU=${2:?--cpu needs a qemu CPU model}; shift 2 ;;
        --smp) QEMU_SMP=${2:?--smp needs a number of CPUs}; shift 2 ;;
        --icount) QEMU_ICOUNT=${2:?--icount needs a shift or off}; shift 2 ;;
        --append) KERNEL_APPEND=${2?--append needs words}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
for l in ${want_labels//,/ }; do
    labels | grep -qxF -- "$l" || die "unknown kernel label '$l'; known: $(labels | paste -sd' ' -)"
done
[[ $(id -u) -eq 0 ]] || skip_all "needs root: it installs qemu with apt-get and builds an initramfs with a device node (sudo $0)"

mkdir -p "$cache"
# One run at a time: runs share the cache.
exec 9>"$cache/lock"
flock -n 9 || die "another run.sh holds $cache/lock; wait for it to finish"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kernel-matrix.XXXXXX")
vm_pid=
cleanup() {
    # Never leave a VM behind: timeout forwards TERM to qemu, -k kills it 5 s later.
    if [[ -n $vm_pid ]] && kill -0 "$vm_pid" 2>/dev/null; then
        kill -TERM "$vm_pid" 2>/dev/null || true
        wait "$vm_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- host packages
apt_updated=0
host_install() { # packages...
    if ((apt_updated == 0)); then
        note "apt-get update (system sources, to install $*)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed; check network access to the Debian mirror"
        apt_updated=1
    fi
    note "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
        die "apt-get install $* failed; install it by hand and run again"
}
command -v qemu-system-x86_64 >/dev/null || host_install qemu-system-x86
for tool in dpkg-deb gzip timeout flock; do
    command -v "$tool" >/dev/null || die "$tool is missing (packages dpkg, gzip, coreutils, util-linux)"
done
[[ -r $KEYRING ]] || host_install debian-archive-keyring
[[ -r $KEYRING ]] || die "no Debian archive keyring at $KEYRING (set KM_DEBIAN_KEYRING)"

# ---------------------------------------------------------------- the binary
if [[ -z $binary ]]; then
    # clang and libbpf headers for the BPF object; the script installs only what is missing.
    command -v cargo >/dev/null || die "cargo is missing: install Rust (rustup), or pass a prebuilt static binary with --binary FILE"
    "$repo/scripts/install-deps.sh" || die "scripts/install-deps.sh failed"
    note "building the static picosnitch binary (cargo; a no-op when up to date)"
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
    (cd "$repo" && RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --quiet \
        --target x86_64-unknown-linux-gnu -p picosnitch) || die "cargo build of the static binary failed (see above)"
    binary=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/picosnitch
fi
[[ -x $binary ]] || die "$binary is not an executable file"
# The guest has no shared libraries: a dynamic binary would only say "not found" there.
ldd_out=$(ldd "$binary" 2>&1 || true)
if [[ $ldd_out == *'=>'* ]]; then
    die "$binary is dynamically linked; build it with RUSTFLAGS='-C target-feature=+crt-static' --target x86_64-unknown-linux-gnu"
fi

# UDP traffic for the guest (busybox nc has no -u): a small static C program.
udp_exchange=$tmp/udp-exchange
if ! command -v cc >/dev/null || [[ ! -e /usr/lib/x86_64-linux-gnu/libc.a ]]; then
    host_install gcc libc6-dev
fi
cc -static -O2 -Wall -o "$udp_exchange" "$here/udp-exchange.c" ||
    die "cc -static of udp-exchange.c failed (it needs gcc and libc6-dev)"

# ---------------------------------------------------------------- private apt
# A private apt configuration: its own sources, lists, cache and state, and none of the
# system's apt.conf.d (whose hooks, e.g. docker-clean or appstream, would run against
# the system's cache on our update). It never reads or writes the system's sources or
# lists. Proxy and date-check settings are carried over so it works where the system's
# apt works (machines served from a frozen mirror set Check-Valid-Until "false": sid's
# Release file is only valid for a week).
apt_dir=$cache/apt
private_apt_ready=0 private_apt_failed=0
private_apt() { # fails (once, then at once) when the mirrors cannot be reached
    ((private_apt_ready)) && return 0
    ((private_apt_failed)) && return 1
    mkdir -p "$apt_dir"/{lists/partial,cache/archives/partial,state,log,empty.d}
    : >"$apt_dir/state/status"
    local s="[signed-by=$KEYRING]"
    cat >"$apt_dir/sources.list" <<EOF
deb $s $MIRROR bullseye main
deb $s $MIRROR bookworm main
deb $s $SECURITY_MIRROR bookworm-security main
deb $s $MIRROR sid main
EOF
    {
        cat <<EOF
Dir::Etc::main "/dev/null";
Dir::Etc::Parts "$apt_dir/empty.d";
Dir::Etc::SourceList "$apt_dir/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$apt_dir/empty.d";
Dir::State "$apt_dir/state";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/state/status";
Dir::Cache "$apt_dir/cache";
Dir::Log "$apt_dir/log";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order { "gz"; };
EOF
        apt-config dump 2>/dev/null | grep -E '^Acquire::((http|https|ftp)::Proxy|Check-Valid-Until|Check-Date|Max-FutureTime) ' || true
    } >"$apt_dir/apt.conf"
    note "apt-get update (private configuration in $apt_dir)"
    if ! APT_CONFIG=$apt_dir/apt.conf apt-get update -qq; then
        private_apt_failed=1
        return 1
    fi
    private_apt_ready=1
}
APT_FAILED="apt-get update with the private configuration failed; check access to $MIRROR and $SECURITY_MIRROR"
papt_get() { APT_CONFIG=$apt_dir/apt.conf apt-get "$@"; }
papt_cache() { APT_CONFIG=$apt_dir/apt.conf apt-cache "$@"; }

# Downloads name=version into an empty directory and prints the .deb's path.
download_deb() { # spec dir
    mkdir -p "$2"
    (cd "$2" && papt_get download -qq "$1" >/dev/null) || die "apt-get download $1 failed"
    local debs=("$2"/*.deb)
    [[ -f ${debs[0]} ]] || die "apt-get download $1 produced no .deb"
    echo "${debs[0]}"
}

# Follows exact-version dependencies on linux-image-* / linux-binary-* from $spec
# down to the package that holds the image. Prints "name=version".
resolve_package() { # spec
    local spec=$1 hop record name ver next
    for hop in 1 2 3 4 5; do
        record=$(papt_cache show "$spec" 2>/dev/null | awk 'BEGIN { RS = "" } NR == 1 { print; exit }') || true
        [[ -n $record ]] || die "apt has no package $spec (check the suite in MATRIX)"
        name=$(sed -n 's/^Package: //p' <<<"$record")
        ver=$(sed -n 's/^Version: //p' <<<"$record")
        next=$(sed -n 's/^Depends: //p' <<<"$record" | tr ',' '\n' |
            sed -nE 's/^ *(linux-(image|binary)-[^ |]+) \(= ([^)]+)\).*$/\1=\3/p' | grep -v -- '-dbg=' | head -n 1 || true)
        if [[ -z $next ]]; then
            echo "$name=$ver"
            return
        fi
        spec=$next
    done
    die "no kernel image package found below $1 after 5 dependency hops"
}

kernel_cached() { # label
    [[ -s $cache/kernels/$1/vmlinuz && -s $cache/kernels/$1/package && $refresh -eq 0 ]]
}

fetch_kernel() { # label suite package
    local label=$1 suite=$2 pkg=$3 dir=$cache/kernels/$1
    kernel_cached "$label" && return
    private_apt || die "$APT_FAILED"
    local spec deb list member
    spec=$(resolve_package "$pkg/$suite")
    if [[ -s $dir/vmlinuz && $(cat "$dir/package" 2>/dev/null) == "$spec" ]]; then return; fi
    note "$label: downloading $spec"
    rm -rf "$tmp/deb"
    deb=$(download_deb "$spec" "$tmp/deb")
    # bullseye..trixie keep the image in boot/; sid's linux-binary-* in usr/lib/modules/*/.
    list=$(dpkg-deb --fsys-tarfile "$deb" | tar -t) || die "cannot read $deb"
    member=$(grep -m1 -E '^\./(boot/vmlinuz-|usr/lib/modules/[^/]+/vmlinuz$)' <<<"$list" || true)
    [[ -n $member ]] || die "$spec has no boot/vmlinuz-* nor usr/lib/modules/*/vmlinuz"
    mkdir -p "$dir"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "$member" >"$dir/vmlinuz.new"
    # A bzImage carries "HdrS" at offset 0x202.
    [[ $(dd if="$dir/vmlinuz.new" bs=1 skip=514 count=4 2>/dev/null) == HdrS ]] ||
        die "$member in $spec is not a bzImage"
    mv "$dir/vmlinuz.new" "$dir/vmlinuz"
    echo "$spec" >"$dir/package"
    rm -rf "$tmp/deb"
}

# ---------------------------------------------------------------- busybox base
# Debian's busybox-static, fetched through the private apt rather than installed: it
# conflicts with the `busybox` package that initramfs-tools hosts often have. The host
# also uses it to write the cpio archives (no cpio package needed).
bb=$cache/busybox/busybox
if [[ ! -x $bb || ! -s $cache/busybox/package || $refresh -eq 1 ]]; then
    private_apt || skip_all "busybox-static is needed for every guest, and $APT_FAILED"
    spec=$(resolve_package "busybox-static/bookworm")
    if [[ ! -x $bb || $(cat "$cache/busybox/package" 2>/dev/null) != "$spec" ]]; then
        note "downloading $spec"
        rm -rf "$tmp/deb"
        deb=$(download_deb "$spec" "$tmp/deb")
        mkdir -p "$cache/busybox"
        dpkg-deb --fsys-tarfile "$deb" | tar -xO ./bin/busybox >"$bb.new" || die "no bin/busybox in $spec"
        chmod 755 "$bb.new"
        mv "$bb.new" "$bb"
        echo "$spec" >"$cache/busybox/package"
        rm -f "$cache"/busybox/base*.cpio.gz
        rm -rf "$tmp/deb"
    fi
fi

# Writes a newc cpio of directory $1 (entries relative to it) to stdout.
cpio_of() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | "$bb" cpio -o -H newc 2>/dev/null); }

# Named by layout version: change the number when the layout below changes.
base=$cache/busybox/base-v1.cpio.gz
if [[ ! -s $base ]]; then
    # Busybox and the directories; applet links are made by guest-init.sh (--install -s).
    rm -rf "$tmp/base"
    mkdir -p "$tmp/base"/{bin,dev,proc,sys,run,var,tmp,etc,srv,usr/sbin}
    cp "$bb" "$tmp/base/bin/busybox"
    ln -s busybox "$tmp/base/bin/sh"
    mknod -m 600 "$tmp/base/dev/console" c 5 1
    cpio_of "$tmp/base" | gzip -9 >"$base.new"
    mv "$base.new" "$base"
    rm -rf "$tmp/base"
fi

# ---------------------------------------------------------------- kernels
# A kernel that cannot be fetched skips its runs (the others still run), with the reason.
declare -A skip_why=()
for m in "${MATRIX[@]}"; do
    IFS='|' read -r label suite pkg _ <<<"$m"
    [[ ,$want_labels, == *,$label,* ]] || continue
    # The update runs here, not in the subshell, so it runs (or fails) once.
    kernel_cached "$label" || private_apt || true
    if ! (fetch_kernel "$label" "$suite" "$pkg") 2>"$tmp/fetch.err"; then
        cat "$tmp/fetch.err" >&2
        skip_why[$label]="its kernel could not be fetched: $(grep -m1 'error: ' "$tmp/fetch.err" | sed 's/^.*error: //')"
    fi
done

# apt's binary caches (about 170 MB for these four suites) are rebuilt from the lists
# whenever they are needed again; do not keep them.
rm -f "$apt_dir"/cache/*.bin

# ---------------------------------------------------------------- payload
# The binary, accounts for NSS (the daemon runs its roles as [data] owner/group, the
# service user picosnitch by default) and the test. Uncompressed: under TCG the guest unpacks it faster than it inflates gzip.
mkdir -p "$tmp/payload"/{etc,usr/sbin,usr/bin}
cp "$binary" "$tmp/payload/usr/sbin/picosnitch"
cp "$udp_exchange" "$tmp/payload/usr/bin/udp-exchange"
# Two names, so the daemon records the two ends of the exchange apart.
ln -s udp-exchange "$tmp/payload/usr/bin/udpsrv"
ln -s udp-exchange "$tmp/payload/usr/bin/udpcli"
cp "$here/guest-init.sh" "$tmp/payload/init"
chmod 755 "$tmp/payload/init" "$tmp/payload/usr/sbin/picosnitch" "$tmp/payload/usr/bin/udp-exchange"
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'picosnitch:x:990:990:picosnitch:/nonexistent:/bin/false' >"$tmp/payload/etc/passwd"
printf '%s\n' 'root:x:0:' 'picosnitch:x:990:' >"$tmp/payload/etc/group"
printf 'passwd: files\ngroup: files\n' >"$tmp/payload/etc/nsswitch.conf"
initrd=$tmp/initrd.cpio
# The kernel takes an uncompressed cpio after a compressed one only at a 4-byte aligned
# offset (NULs in between are skipped); otherwise it reports "invalid magic".
pad=$(((4 - $(stat -c %s "$base") % 4) % 4))
{ cat "$base"; head -c "$pad" /dev/zero; cpio_of "$tmp/payload"; } >"$initrd"
rm -rf "$tmp/payload"

# ---------------------------------------------------------------- runs
logs=$cache/logs
rm -rf "$logs"
mkdir -p "$logs"
note "runs that pass by failing as expected: ${EXPECT_FAIL[*]:-none}"
note "per-VM limit ${VM_TIMEOUT}s, all VMs ${BUDGET}s; console logs in $logs"

# Boots one VM; sets `result` (a RESULT line, made up here when the guest gave none).
run_vm() { # label hook limit log
    local label=$1 hook=$2 limit=$3 log=$4 rc=0 why
    # Backgrounded and waited for, so an interrupt reaches the trap (timeout puts qemu
    # in its own process group, where the terminal's ^C does not reach).
    local icount=()
    [[ $QEMU_ICOUNT == off ]] || icount=(-icount "shift=$QEMU_ICOUNT,sleep=on")
    timeout -k 5 "$limit" qemu-system-x86_64 -accel tcg "${icount[@]}" -cpu "$QEMU_CPU" -m "$QEMU_MEM" -smp "$QEMU_SMP" \
        -nographic -nodefaults -serial stdio -no-reboot \
        -kernel "$cache/kernels/$label/vmlinuz" -initrd "$initrd" \
        -append "console=ttyS0 panic=-1 quiet picosnitch.hook_set=$hook${KERNEL_APPEND:+ $KERNEL_APPEND}" \
        </dev/null >"$log" 2>&1 &
    vm_pid=$!
    wait "$vm_pid" || rc=$?
    vm_pid=
    result=$(tr -d '\r' <"$log" | grep -a -m1 '^RESULT ' || true)
    [[ -z $result ]] || return 0
    if ((rc == 124 || rc == 137)); then
        why="the VM did not finish within ${limit}s"
    else
        why="the VM ended (qemu status $rc) without a RESULT line"
    fi
    result="RESULT kernel=$label requested=$hook hook_set=unknown FAIL stage=vm $why; last console lines: $(tr -d '\r' <"$log" | grep -av '^$' | tail -n 3 | tr '\n' ' ' || true)"
}

passed=0 failed=0 skipped=0
rows=()
t_all=$SECONDS
for m in "${MATRIX[@]}"; do
    IFS='|' read -r label suite pkg hooks <<<"$m"
    [[ ,$want_labels, == *,$label,* ]] || continue
    for hook in $hooks; do
        [[ -z $want_hooks || ,$want_hooks, == *,$hook,* ]] || continue
        log=$logs/$label-$hook.log
        t0=$SECONDS
        left=$((BUDGET - (SECONDS - t_all)))
        result= verdict= why=
        if [[ -n ${skip_why[$label]:-} ]]; then
            verdict=SKIPPED why=${skip_why[$label]}
        elif ((left < 30)); then
            verdict=SKIPPED why="less than 30 s of the total time budget (--budget $BUDGET) was left for this run"
        else
            note "booting $label ($(cat "$cache/kernels/$label/package")), hook_set=$hook"
            run_vm "$label" "$hook" $((left < VM_TIMEOUT ? left : VM_TIMEOUT)) "$log"
            echo "$result"
        fi
        secs=$((SECONDS - t0))
        if [[ -z $verdict ]]; then
            stage=$(sed -nE 's/.* FAIL stage=([^ ]+).*/\1/p' <<<"$result")
            expected= must_fail=
            for e in "${EXPECT_FAIL[@]}"; do
                IFS=: read -r e_label e_stage e_text <<<"$e"
                [[ $e_label == "$label" ]] || continue
                must_fail=$e
                if [[ -n $stage && (-z $e_stage || $e_stage == "$stage") && (-z $e_text || $result == *"$e_text"*) ]]; then
                    expected=$e
                fi
            done
            if [[ -n $expected ]]; then
                verdict=PASS why="failed as it must ($expected): ${result#* FAIL }"
            elif [[ -n $must_fail ]]; then
                verdict=FAIL why="must fail ($must_fail), but: ${result#RESULT }"
            elif [[ -z $stage && $result == *" PASS"* ]]; then
                verdict=PASS why=${result#* PASS }
            else
                verdict=FAIL why=${result#RESULT }
            fi
            if [[ $verdict == FAIL && -s $log ]]; then
                # Context for the failure, without the verifier's per-instruction lines.
                echo "---- last console lines of $label hook_set=$hook (all of it: $log):"
                tr -d '\r' <"$log" | grep -avE '^  daemon\| ([0-9]+: |; )' | tail -n 25 || true
                echo "----"
            fi
        fi
        case $verdict in
            PASS) passed=$((passed + 1)) ;;
            FAIL) failed=$((failed + 1)) ;;
            SKIPPED) skipped=$((skipped + 1)) ;;
        esac
        chosen=$(sed -nE 's/.* hook_set=([^ ]+) .*/\1/p' <<<"$result")
        rows+=("$(printf '%-6s %-9s %-10s %-8s %4ss  %s' "$label" "$hook" "${chosen:--}" "$verdict" "$secs" "$why")")
        note "$label hook_set=$hook: $verdict in ${secs}s"
    done
done

echo
echo "kernel-matrix results (${SECONDS}s in all, $((SECONDS - t_all))s of it VMs; console logs in $logs):"
printf '  %-6s %-9s %-10s %-8s %5s  %s\n' kernel requested hook_set verdict time details
for r in "${rows[@]}"; do echo "  $r"; done
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0)) || exit 1
if ((skipped)) && [[ ${CI:-} == true ]]; then
    echo "kernel-matrix: skipped runs fail under CI=true"
    exit 1
fi
exit 0
