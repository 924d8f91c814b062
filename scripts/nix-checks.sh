#!/usr/bin/env bash
# The Nix packaging checks that run without nixpkgs (CI machines cannot reach it):
#   parse          nix-instantiate --parse on every .nix file
#   module-eval    nixos-module/tests: services.picosnitch evaluated with Nix 2.8 against
#                  a stand-in for nixpkgs' lib/pkgs; rendered TOML and unit checked
#   module-errors  bad settings fail evaluation with a message naming the option
#   check-config   the rendered TOML judged by `picosnitch check-config`, when a built
#                  binary is at hand (the NixOS build always does this)
#   flake-outputs  flake.nix's outputs called with a stand-in nixpkgs input
#   flake-module   nixosModules.default loaded through Nix's flake machinery
#   flake-lock     flake.lock consistent with flake.nix (nix flake lock
#                  --no-update-lock-file) and equal to the recorded pin
#   toolchain      the pinned nixpkgs' rustc is new enough for Cargo.lock
#   unit-security  systemd-analyze security --offline=true, exposure <= 4.0, on the
#                  rendered NixOS units and crates/picosnitch/dist/picosnitch.service
#   vm-scripts     the NixOS VM test scripts compile and pass pyflakes
# What needs nixpkgs (building the package, the VM tests, the module tests against
# real nixpkgs) runs with `nix flake check` where Nix and its binary cache are
# available; this script says so at the end.
#
# Installs what it needs (Debian: nix-bin, systemd, pyflakes3) when run as root.
# Exits non-zero if any check failed; a check that cannot run is reported as skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
# Milliseconds since the epoch, from bash's own clock.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
started=$(now_ms)

# ---------------------------------------------------------------- pins
# The nixpkgs revision flake.lock must hold, its narHash, and the rustc it ships.
# Taken from public lock files of nixos-25.05 (nixpkgs cannot be fetched here to
# recompute the hash); rustc 1.86.0 is what release-25.05 carries. Update all three
# together when moving the pin.
pin_rev=1f08a4df998e21f4e8be8fb6fbf61d11a1a5076a
pin_nar_hash=sha256-+jkEZxs7bfOKfBIk430K+tK9IvXlwzqQQnppC2ZKFj4=
pin_ref=nixos-25.05
pin_rustc=1.86.0

# ---------------------------------------------------------------- bookkeeping
passed=() failed=() skipped=()
times=()
pass() { passed+=("$1"); echo "PASS $1${2:+: $2}"; }
fail() { failed+=("$1"); echo "FAIL $1${2:+: $2}"; }
skip() { skipped+=("$1: $2"); echo "SKIP $1: $2"; }
section() { echo; echo "== $1"; section_start=$(now_ms); section_name=$1; }
section_end() {
    local ms=$(($(now_ms) - section_start))
    times+=("$section_name $((ms / 1000)).$(printf %03d $((ms % 1000)))s")
}

work=$(mktemp -d /tmp/nix-checks.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------- tools
section setup
need_pkgs=()
command -v nix-instantiate >/dev/null || need_pkgs+=(nix-bin)
command -v systemd-analyze >/dev/null || need_pkgs+=(systemd)
command -v pyflakes3 >/dev/null || need_pkgs+=(pyflakes3)
if ((${#need_pkgs[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "installing ${need_pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null \
            || echo "apt-get could not install ${need_pkgs[*]}; the checks that need them are skipped"
    else
        echo "missing ${need_pkgs[*]} (run as root on Debian to install them); the checks that need them are skipped"
    fi
fi
have() { command -v "$1" >/dev/null; }
echo "nix: $(nix --version 2>/dev/null || echo none); $(systemd-analyze --version 2>/dev/null | head -1 || echo 'systemd-analyze: none')"

# Single-user Nix without a daemon, no binary cache (unreachable: every query would
# wait for a timeout), flakes enabled. Nothing is built: evaluation only, plus
# builtins.toFile writing the rendered TOML into the store.
export NIX_CONFIG=$'substituters =\nbuild-users-group =\nexperimental-features = nix-command flakes\nwarn-dirty = false'
nix_ok=false
if have nix-instantiate; then
    if mkdir -p /nix/store 2>/dev/null && [[ -w /nix/store ]]; then
        nix_ok=true
    else
        echo "/nix/store is not writable by $(id -un): the Nix checks are skipped"
    fi
fi
nix_eval() { nix-instantiate --read-write-mode --eval --strict --json "$@"; }
section_end

# Prints a test-results JSON list ([{name, pass, detail}]) and records each result.
report_results() { # label json-file
    python3 - "$1" "$2" <<'EOF'
import json, sys
label, path = sys.argv[1], sys.argv[2]
for t in json.load(open(path)):
    print(("PASS" if t["pass"] else "FAIL") + f" {label}: {t['name']}")
    if not t["pass"]:
        print("     " + t["detail"])
EOF
}
record_results() { # label json-file
    local out
    out=$(report_results "$1" "$2")
    echo "$out"
    while IFS= read -r line; do
        case $line in
            "PASS "*) passed+=("${line#PASS }") ;;
            "FAIL "*) failed+=("${line#FAIL }") ;;
        esac
    done <<<"$out"
}

# Evaluates a results list; if the evaluation itself fails, evaluates each test on its
# own so one broken test does not hide the others, and shows the failing one's error.
run_test_file() { # label file
    local label=$1 file=$2
    if nix_eval "$file" -A results >"$work/$label.json" 2>"$work/$label.err"; then
        record_results "$label" "$work/$label.json"
        return
    fi
    echo "evaluating all of $file failed; one test at a time:"
    sed 's/^/     /' "$work/$label.err" | head -5
    local n
    n=$(nix-instantiate --eval -E "builtins.length (import $repo/$file {}).results" 2>/dev/null || echo 0)
    for ((i = 0; i < n; i++)); do
        if nix_eval -E "[ (builtins.elemAt (import $repo/$file {}).results $i) ]" >"$work/one.json" 2>"$work/one.err"; then
            record_results "$label" "$work/one.json"
        else
            fail "$label: test $i" "$(grep -m1 error: "$work/one.err")"
        fi
    done
    ((n > 0)) || fail "$label" "$(grep -m1 error: "$work/$label.err")"
}

# ---------------------------------------------------------------- parse
section parse
if $nix_ok; then
    mapfile -t nix_files < <(git ls-files --cached --others --exclude-standard '*.nix')
    bad=0
    for f in "${nix_files[@]}"; do
        if ! nix-instantiate --parse "$f" >/dev/null 2>"$work/parse.err"; then
            bad=1
            fail "parse: $f" "$(grep -m1 error: "$work/parse.err")"
        fi
    done
    ((bad)) || pass "parse" "${#nix_files[@]} files"
else
    skip parse "no usable Nix"
fi
section_end

# ---------------------------------------------------------------- module-eval
section module-eval
if $nix_ok; then
    run_test_file module-eval nixos-module/tests/default.nix
else
    skip module-eval "no usable Nix"
fi
section_end

# ---------------------------------------------------------------- module-errors
section module-errors
if $nix_ok; then
    if nix_eval -E "builtins.mapAttrs (_: c: c.expect) (import $repo/nixos-module/tests {}).failureCases" >"$work/cases.json" 2>"$work/cases.err"; then
        while IFS=$'\t' read -r name expect; do
            if nix_eval -E "(import $repo/nixos-module/tests {}).failureCases.\"$name\".value" >/dev/null 2>"$work/case.err"; then
                fail "module-errors: $name" "evaluation succeeded, expected an error matching: $expect"
            elif grep -Eq -- "$expect" "$work/case.err"; then
                pass "module-errors: $name" "$(grep -m1 -o 'error: .*' "$work/case.err" | cut -c8-140)"
            else
                fail "module-errors: $name" "error does not match /$expect/: $(grep -m1 error: "$work/case.err")"
            fi
        done < <(python3 -c 'import json,sys; [print(f"{k}\t{v}") for k, v in json.load(open(sys.argv[1])).items()]' "$work/cases.json")
    else
        fail module-errors "$(grep -m1 error: "$work/cases.err")"
    fi
else
    skip module-errors "no usable Nix"
fi
section_end

# ---------------------------------------------------------------- check-config
section check-config
# The NixOS build runs `picosnitch check-config` on the rendered file. Without nixpkgs
# nothing is built here, but if a picosnitch binary is at hand (PICOSNITCH_BIN, or
# cargo's target/ after scripts/test.sh) the rendered files are judged by it too.
bin=${PICOSNITCH_BIN:-}
for candidate in target/release/picosnitch target/debug/picosnitch; do
    [[ -z $bin && -x $candidate ]] && bin=$candidate
done
if ! $nix_ok; then
    skip check-config "no usable Nix"
elif [[ -z $bin ]]; then
    skip check-config "no picosnitch binary (set PICOSNITCH_BIN or build the workspace first); runs in the NixOS build"
elif nix_eval nixos-module/tests -A configFiles >"$work/configs.json" 2>"$work/configs.err"; then
    while IFS=$'\t' read -r name file; do
        "$bin" check-config "$file" >"$work/cc.out" 2>&1
        rc=$?
        case $name:$rc in
            unknownKey:78)
                if grep -q retention_dayz "$work/cc.out"; then
                    pass "check-config: $name" "refused: $(head -1 "$work/cc.out")"
                else
                    fail "check-config: $name" "exit 78 without naming the key: $(head -1 "$work/cc.out")"
                fi
                ;;
            unknownKey:*) fail "check-config: $name" "exit $rc, expected 78: $(head -1 "$work/cc.out")" ;;
            *:0) pass "check-config: $name" "accepted by $bin" ;;
            *) fail "check-config: $name" "exit $rc: $(head -1 "$work/cc.out")" ;;
        esac
    done < <(python3 -c 'import json,sys; [print(f"{k}\t{v}") for k, v in json.load(open(sys.argv[1])).items()]' "$work/configs.json")
else
    fail check-config "rendering failed: $(grep -m1 error: "$work/configs.err")"
fi
section_end

# ---------------------------------------------------------------- flake-outputs
section flake-outputs
if $nix_ok; then
    run_test_file flake-outputs nixos-module/tests/flake-outputs.nix
else
    skip flake-outputs "no usable Nix"
fi
section_end

# ---------------------------------------------------------------- flake-module
section flake-module
# Through Nix's own flake machinery (fetching this git tree, reading flake.lock), not
# a plain import: nixosModules needs no nixpkgs, so it loads offline. Tracked files
# only, as with any git flake: new files must be `git add`ed.
if $nix_ok; then
    expr='
      let
        flake = builtins.getFlake "git+file://'"$repo"'";
        standIn = import '"$repo"'/nixos-module/tests/stand-in;
        r = standIn.nixos.eval [
          flake.nixosModules.default
          { services.picosnitch = { enable = true; package = standIn.package; }; }
        ];
      in {
        modules = builtins.attrNames flake.nixosModules;
        execStart = r.config.systemd.services.picosnitch.serviceConfig.ExecStart;
        package = "${standIn.package}";
      }'
    if nix eval --impure --json --expr "$expr" >"$work/fm.json" 2>"$work/fm.err"; then
        if python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["modules"] == ["default", "picosnitch"], r["modules"]
assert r["execStart"].startswith(r["package"] + "/bin/picosnitch daemon --config /nix/store/"), r["execStart"]
' "$work/fm.json" 2>"$work/fm.err"; then
            pass flake-module "nixosModules.{default,picosnitch} from builtins.getFlake evaluate"
        else
            fail flake-module "$(tail -1 "$work/fm.err")"
        fi
    else
        fail flake-module "$(grep -m1 error: "$work/fm.err")"
    fi
else
    skip flake-module "no usable Nix"
fi
section_end

# ---------------------------------------------------------------- flake-lock
section flake-lock
if $nix_ok; then
    # Offline this catches an input added, removed or changed in flake.nix without
    # the lock following (Nix then tries to resolve it and cannot); it cannot check
    # that rev and narHash belong together, which needs the source: the recorded pin
    # below stands in for that.
    if nix flake lock --no-update-lock-file --offline "$repo" >/dev/null 2>"$work/lock.err"; then
        pass "flake-lock: nix flake lock --no-update-lock-file"
    else
        fail "flake-lock: nix flake lock --no-update-lock-file" "$(grep -m1 error: "$work/lock.err") (flake.lock does not match flake.nix's inputs)"
    fi
    nix-instantiate --eval --strict --json -E "(import $repo/flake.nix).inputs" >"$work/inputs.json" 2>/dev/null || echo '{}' >"$work/inputs.json"
    if python3 - "$work/inputs.json" "$pin_rev" "$pin_nar_hash" "$pin_ref" >"$work/lockpy.out" 2>&1 <<'EOF'; then
import base64, json, re, sys
inputs = json.load(open(sys.argv[1]))
rev, nar_hash, ref = sys.argv[2:5]
lock = json.load(open("flake.lock"))
assert lock["version"] == 7, f"lock version {lock['version']} (Nix 2.8 writes 7)"
root = lock["nodes"][lock["root"]]
assert sorted(root["inputs"]) == sorted(inputs), f"lock inputs {sorted(root['inputs'])} != flake.nix inputs {sorted(inputs)}"
node = lock["nodes"][root["inputs"]["nixpkgs"]]
m = re.fullmatch(r"github:([^/]+)/([^/]+)/(.+)", inputs["nixpkgs"]["url"])
assert m, inputs["nixpkgs"]["url"]
want = {"type": "github", "owner": m[1], "repo": m[2], "ref": m[3]}
assert node["original"] == want, f"original {node['original']} != flake.nix url {want}"
locked = node["locked"]
assert locked["type"] == "github" and (locked["owner"], locked["repo"]) == (m[1], m[2]), locked
assert m[3] == ref, f"flake.nix follows {m[3]}, the recorded pin is {ref}"
assert locked["rev"] == rev, f"locked rev {locked['rev']} is not the recorded pin {rev} (update the pin in scripts/nix-checks.sh with its narHash and rustc)"
assert locked["narHash"] == nar_hash, f"narHash {locked['narHash']} != recorded {nar_hash}"
assert len(base64.b64decode(nar_hash.removeprefix("sha256-"), validate=True)) == 32, "narHash is not a sha256"
assert isinstance(locked["lastModified"], int), "lastModified"
print(f"nixpkgs {want['ref']} at {rev[:12]} {nar_hash}")
EOF
        pass "flake-lock: pin" "$(cat "$work/lockpy.out")"
    else
        fail "flake-lock: pin" "$(tail -1 "$work/lockpy.out")"
    fi
else
    skip flake-lock "no usable Nix"
fi
section_end

# ---------------------------------------------------------------- toolchain
section toolchain
# buildRustPackage builds with `cargo --frozen` and the pinned nixpkgs' rustc, so
# Cargo.lock must match the manifests as committed, and no locked crate may need a
# newer rustc than the pin's. Worked out on a copy of the workspace: cargo must not
# rewrite the real Cargo.lock.
if have cargo; then
    mkdir -p "$work/ws"
    git ls-files -z Cargo.toml Cargo.lock crates | xargs -0 cp --parents -t "$work/ws"
    meta=(cargo metadata --format-version 1 --locked --filter-platform "$(uname -m)-unknown-linux-gnu")
    (cd "$work/ws" && { "${meta[@]}" --offline || "${meta[@]}"; }) >"$work/meta.json" 2>"$work/meta.err"
    if grep -q "cannot update the lock file" "$work/meta.err"; then
        fail "toolchain: Cargo.lock" "out of date with the manifests (cargo wants to rewrite it; buildRustPackage's --frozen refuses)"
        : >"$work/meta.json"
    elif [[ -s $work/meta.json ]]; then
        pass "toolchain: Cargo.lock" "matches the manifests"
    else
        skip "toolchain: Cargo.lock" "cargo metadata failed: $(grep -m1 error "$work/meta.err")"
    fi
    # The locked crates' rust-version: from cargo metadata (crates built for Linux), or
    # when that failed from Cargo.lock and cargo's download cache (every locked crate).
    if python3 - "$work/meta.json" "$pin_rustc" "${CARGO_HOME:-$HOME/.cargo}" >"$work/msrv.out" 2>&1 <<'EOF'; then
import glob, json, os, sys, tomllib
meta_path, rustc, cargo_home = sys.argv[1:4]
v = lambda s: tuple(int(x) for x in s.split("."))
if os.path.getsize(meta_path):
    crates = [(p["name"], p["version"], p.get("rust_version")) for p in json.load(open(meta_path))["packages"]]
    how = "cargo metadata"
else:
    crates, unknown = [], []
    for p in tomllib.load(open("Cargo.lock", "rb"))["package"]:
        if "source" not in p:
            continue
        found = glob.glob(os.path.join(cargo_home, "registry/src/*", f"{p['name']}-{p['version']}", "Cargo.toml"))
        if not found:
            unknown.append(f"{p['name']} {p['version']}")
            continue
        crates.append((p["name"], p["version"], tomllib.load(open(found[0], "rb")).get("package", {}).get("rust-version")))
    how = "Cargo.lock + cargo's cache" + (f", {len(unknown)} crates not cached and not judged" if unknown else "")
too_new = sorted(f"{n} {ver} needs {rv}" for n, ver, rv in crates if rv and v(str(rv)) > v(rustc))
if too_new:
    print(f"rustc {rustc} of the pinned nixpkgs cannot build: " + "; ".join(too_new) + f" [{how}]")
    sys.exit(1)
print(f"every locked crate builds with rustc {rustc} [{how}]")
EOF
        pass "toolchain: rust-version" "$(cat "$work/msrv.out")"
    else
        fail "toolchain: rust-version" "$(cat "$work/msrv.out")"
    fi
else
    skip toolchain "no cargo"
fi
section_end

# ---------------------------------------------------------------- unit-security
section unit-security
if $nix_ok && have systemd-analyze; then
    if nix_eval nixos-module/tests -A units >"$work/units.json" 2>"$work/units.err"; then
        units=()
        for name in defaults full; do
            mkdir -p "$work/$name"
            python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/units.json" "$name" \
                >"$work/$name/picosnitch.service"
            units+=("nixos-$name:$work/$name/picosnitch.service")
        done
        units+=("dist:crates/picosnitch/dist/picosnitch.service")
        for entry in "${units[@]}"; do
            label=${entry%%:*} file=${entry#*:}
            # --threshold is in tenths: 40 means an exposure of 4.0.
            systemd-analyze security --offline=true --threshold=40 "$file" >"$work/sa.out" 2>&1
            rc=$?
            level=$(grep -o 'Overall exposure level for [^:]*: [0-9.]*' "$work/sa.out" | grep -o '[0-9.]*$')
            if ((rc == 0)) && [[ -n $level ]]; then
                pass "unit-security: $label" "exposure $level (<= 4.0)"
            else
                fail "unit-security: $label" "exposure ${level:-?} (rc $rc): $(grep -v '^ *[✓✗ ]' "$work/sa.out" | head -3 | tr '\n' ' ')"
            fi
        done
    else
        fail unit-security "rendering the units failed: $(grep -m1 error: "$work/units.err")"
    fi
else
    skip unit-security "needs Nix and systemd-analyze"
fi
section_end

# ---------------------------------------------------------------- vm-scripts
section vm-scripts
# The NixOS test driver runs these scripts (after pyflakes and mypy); here they are
# only compiled and linted, with the driver's globals declared.
driver_globals=start_all,subtest,retry,log,driver,machines,vlans,create_machine,join_all,run_tests
driver_globals+=,serial_stdout_on,serial_stdout_off,polling_condition,Machine,test_script
driver_globals+=,machine,db
for f in vm-tests/nixos/*.py; do
    # compile(), not py_compile: no __pycache__ left in the tree.
    if ! python3 -c 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")' "$f" 2>"$work/py.err"; then
        fail "vm-scripts: $f" "$(tail -1 "$work/py.err")"
    elif ! have pyflakes3; then
        skip "vm-scripts: $f" "compiles; pyflakes3 not installed"
    elif PYFLAKES_BUILTINS=$driver_globals pyflakes3 "$f" >"$work/pf.out" 2>&1; then
        pass "vm-scripts: $f" "compiles, pyflakes clean"
    else
        fail "vm-scripts: $f" "$(head -3 "$work/pf.out" | tr '\n' ' ')"
    fi
done
section_end

# ---------------------------------------------------------------- summary
total_ms=$(($(now_ms) - started))
echo
echo "== not run here (need nixpkgs and its binary cache; run with Nix elsewhere):"
echo "   nix build .#default                       the package (cargo + clang inside the derivation)"
echo "   nix build .#checks.<system>.module-eval   these module tests against real nixpkgs"
echo "   nix build .#checks.<system>.vm-service    NixOS VM: readiness, bpftool, curl row, settings, retention"
echo "   nix build .#checks.<system>.vm-remote     NixOS VM + PostgreSQL node: rows reach the remote"
echo "   nix develop, nix run .#tui, nix fmt"
echo
echo "== times: $(IFS=,; echo "${times[*]}" | sed 's/,/, /g'); total $((total_ms / 1000)).$(printf %03d $((total_ms % 1000)))s"
if ((${#skipped[@]})); then
    echo "skipped:"
    printf '   %s\n' "${skipped[@]}"
fi
if ((${#failed[@]})); then
    echo "failed:"
    printf '   %s\n' "${failed[@]}"
fi
echo "${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
((${#failed[@]} == 0))
