#!/usr/bin/env bash
# The Nix packaging checks that run without nixpkgs (CI machines cannot reach it):
#   parse          nix-instantiate --parse on every .nix file
#   module-eval    nixos-module/tests: services.picosnitch evaluated with Nix 2.8 against
#                  a stand-in for nixpkgs' lib/pkgs; rendered TOML and unit checked
#   module-errors  bad settings fail evaluation with a message naming the option
#   check-config   the rendered TOML judged by `picosnitch check-config`, when a built
#                  binary is at hand (the NixOS build always does this)
#   flake-outputs  flake.nix's outputs called with stand-ins for the nixpkgs and
#                  rust-overlay inputs: packages built with rust-overlay's toolchain,
#                  apps, module default, checks, devShell
#   flake-module   nixosModules.default loaded through Nix's flake machinery
#   flake-lock     flake.lock has the inputs of flake.nix, the follows it declares,
#                  and the recorded pins (python); Nix's own view of it (nix flake lock
#                  --no-update-lock-file --offline), which offline sees less
#   toolchain      the Rust version the flake builds with (found by evaluating it) is
#                  in the locked rust-overlay and new enough for every locked crate
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
# What flake.lock must hold. Both revisions and their narHashes are taken from public
# lock files: neither input can be fetched here to recompute a hash. Update a rev
# together with its narHash (and lastModified) when moving a pin.
#
# nixpkgs: nixos-25.05, the newest channel Nix 2.8 can evaluate. Its rustc is 1.86.0,
# too old for Cargo.lock (the toolchain check says by how much), which is why the
# Rust toolchain comes from rust-overlay.
pin_rev=1f08a4df998e21f4e8be8fb6fbf61d11a1a5076a
pin_nar_hash=sha256-+jkEZxs7bfOKfBIk430K+tK9IvXlwzqQQnppC2ZKFj4=
pin_ref=nixos-25.05
nixpkgs_rustc=1.86.0
# rust-overlay (github:oxalica/rust-overlay), its nixpkgs following ours: the revision
# of 2026-05-11. Its stable manifests then went up to 1.95.0 (released 2026-04-16), so
# flake.nix may ask for that or older; asking for a newer release needs a newer pin.
overlay_rev=4852a8aa041c94af55e136cde5b8b6d42c3563e8
overlay_nar_hash=sha256-NTZzJ7xJvMXOonYqut3WLUhryeZj5QuuL0ANcqS7d30=
overlay_last_modified=1778469574
overlay_newest_stable=1.95.0

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
# a plain import: nixosModules needs neither nixpkgs nor rust-overlay, so it loads
# offline as long as flake.lock matches flake.nix (getFlake locks the flake too, and
# a mismatch makes it try to fetch an input). Tracked files only, as with any git
# flake: new files must be `git add`ed.
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
        # The first real error, not a "warning: error: ... retrying" line of a download.
        fail flake-module "$( (grep -m1 "^error:" "$work/fm.err" || grep -m1 error: "$work/fm.err") | cut -c1-300)"
    fi
else
    skip flake-module "no usable Nix"
fi
section_end

# ---------------------------------------------------------------- flake-lock
section flake-lock
if $nix_ok; then
    # The real check: flake.lock read as data and compared with flake.nix's inputs and
    # the recorded pins. Every input is a github: input with a recorded pin; the lock's
    # root lists exactly flake.nix's inputs; each node's `original` is flake.nix's url,
    # its `locked` is the pin, and its `inputs` are the follows flake.nix declares for
    # it (rust-overlay's own flake has one input, nixpkgs, which follows ours); no node
    # is left over. What it cannot check offline: that a rev and its narHash belong
    # together, which needs the source.
    nix-instantiate --eval --strict --json -E "(import $repo/flake.nix).inputs" >"$work/inputs.json" 2>"$work/inputs.err" \
        || echo '{}' >"$work/inputs.json"
    if python3 - "$work/inputs.json" "$pin_ref" "$pin_rev" "$pin_nar_hash" "$overlay_rev" "$overlay_nar_hash" "$overlay_last_modified" \
        >"$work/lockpy.out" 2>&1 <<'EOF'; then
import base64, json, re, sys
inputs = json.load(open(sys.argv[1]))
ref, rev, nar_hash, o_rev, o_nar_hash, o_last_modified = sys.argv[2:8]
pins = {
    "nixpkgs": {"rev": rev, "narHash": nar_hash},
    "rust-overlay": {"rev": o_rev, "narHash": o_nar_hash, "lastModified": int(o_last_modified)},
}
lock = json.load(open("flake.lock"))
assert lock["version"] == 7, f"lock version {lock['version']} (Nix 2.8 writes 7)"
nodes = lock["nodes"]
root = nodes[lock["root"]]
assert inputs, "could not read flake.nix's inputs"
assert sorted(root["inputs"]) == sorted(inputs), f"lock inputs {sorted(root['inputs'])} != flake.nix inputs {sorted(inputs)}"
assert sorted(inputs) == sorted(pins), f"flake.nix inputs {sorted(inputs)}, recorded pins for {sorted(pins)} (scripts/nix-checks.sh)"
seen = {lock["root"]}
said = []
for name, spec in sorted(inputs.items()):
    key = root["inputs"][name]
    assert isinstance(key, str), f"root input {name} is a follows in the lock"
    node = nodes[key]
    seen.add(key)
    m = re.fullmatch(r"github:([^/]+)/([^/]+)(?:/(.+))?", spec.get("url", ""))
    assert m, f"{name}: url {spec.get('url')!r} is not github:owner/repo[/ref]"
    want = {"type": "github", "owner": m[1], "repo": m[2]} | ({"ref": m[3]} if m[3] else {})
    assert node["original"] == want, f"{name}: original {node['original']} != flake.nix url {want}"
    locked = node["locked"]
    assert locked["type"] == "github" and (locked["owner"], locked["repo"]) == (m[1], m[2]), f"{name}: locked {locked}"
    for k, v in pins[name].items():
        assert locked.get(k) == v, f"{name}: locked {k} {locked.get(k)} is not the recorded pin {v} (scripts/nix-checks.sh: update rev, narHash and lastModified together)"
    assert len(base64.b64decode(locked["narHash"].removeprefix("sha256-"), validate=True)) == 32, f"{name}: narHash is not a sha256"
    assert isinstance(locked["lastModified"], int), f"{name}: lastModified"
    # inputs.<name>.inputs.<x>.follows = "a/b" in flake.nix is ["a", "b"] in the lock.
    follows = {}
    for sub, s in spec.get("inputs", {}).items():
        assert set(s) == {"follows"}, f"{name}.inputs.{sub}: only follows is checked here, got {sorted(s)}"
        follows[sub] = s["follows"].split("/") if s["follows"] else []
    got = node.get("inputs", {})
    assert got == follows, f"{name}: lock node inputs {got} != flake.nix's follows {follows}"
    for sub, path in follows.items():
        assert len(path) == 1 and path[0] in root["inputs"], f"{name}.{sub} follows {path}, not one of the root inputs"
    said.append(f"{name} {m[3] or 'HEAD'} at {locked['rev'][:12]}" + "".join(f", {sub} follows {'/'.join(p)}" for sub, p in follows.items()))
if "nixpkgs" in inputs:
    assert re.fullmatch(r"github:[^/]+/[^/]+/(.+)", inputs["nixpkgs"]["url"])[1] == ref, f"flake.nix follows {inputs['nixpkgs']['url']}, the recorded pin is {ref}"
extra = sorted(set(nodes) - seen)
assert not extra, f"nodes no input refers to: {extra}"
print("; ".join(said))
EOF
        pass "flake-lock: inputs, follows and pins" "$(cat "$work/lockpy.out")"
    else
        fail "flake-lock: inputs, follows and pins" "$(tail -1 "$work/lockpy.out")"
    fi
    # Nix's own view. Offline it compares each input's original reference and follows
    # with flake.nix and keeps the locked entries as they are, so it accepts a wrong rev
    # or narHash, and a node without the inputs its flake has (rust-overlay's nixpkgs):
    # the python check above catches those. When it sees a difference it wants to
    # re-lock, and for a new or changed input it first tries to fetch it, so offline the
    # difference shows as a download error (github.com cannot be resolved), not as the
    # --no-update-lock-file refusal it would give online.
    if nix flake lock --no-update-lock-file --offline "$repo" >/dev/null 2>"$work/lock.err"; then
        pass "flake-lock: nix flake lock --no-update-lock-file --offline"
    elif grep -q "requires lock file changes" "$work/lock.err"; then
        fail "flake-lock: nix flake lock --no-update-lock-file --offline" "flake.lock does not match flake.nix: $(grep -m1 error: "$work/lock.err")"
    elif grep -Eq "unable to download|resolve host" "$work/lock.err"; then
        fail "flake-lock: nix flake lock --no-update-lock-file --offline" "Nix tried to fetch an input to re-lock it, so flake.lock and flake.nix disagree about it (offline this shows as: $(grep -m1 -o 'unable to download.*' "$work/lock.err"))"
    else
        fail "flake-lock: nix flake lock --no-update-lock-file --offline" "$(grep -m1 error: "$work/lock.err")"
    fi
else
    skip flake-lock "no usable Nix"
fi
section_end

# ---------------------------------------------------------------- toolchain
section toolchain
# buildRustPackage builds with `cargo --frozen` and the rustc of the rustPlatform the
# flake gives it: rust-overlay's, of the version flake.nix names. That version is
# found by evaluating flake.nix (nixos-module/tests/flake-outputs.nix -A toolchain:
# what the package's rustc is, with the stand-in inputs), so this check follows
# whatever the flake builds with. The locked rust-overlay must have that release,
# Cargo.lock must match the manifests as committed, and no locked crate may need a
# newer rustc. Worked out on a copy of the workspace: cargo must not rewrite the real
# Cargo.lock.
rust_version=
if $nix_ok; then
    if nix_eval nixos-module/tests/flake-outputs.nix -A toolchain >"$work/toolchain.json" 2>"$work/toolchain.err"; then
        if python3 - "$work/toolchain.json" "$overlay_newest_stable" >"$work/tc.out" 2>&1 <<'EOF'; then
import json, re, sys
t = json.load(open(sys.argv[1]))
newest = sys.argv[2]
v = lambda s: tuple(int(x) for x in s.split("."))
pkg = t["package"]
assert re.fullmatch(r"\d+\.\d+\.\d+", pkg or ""), f"the package's rustc has no stable version: {pkg!r}"
print(pkg)
assert t["devShell"] == [pkg], f"the devShell's Rust toolchains {t['devShell']} are not the package's {pkg}"
assert v(pkg) <= v(newest), f"flake.nix asks for Rust {pkg}; the locked rust-overlay has stable releases up to {newest} (move the rust-overlay pin)"
EOF
            rust_version=$(head -1 "$work/tc.out")
            pass "toolchain: rust-overlay" "the package and the devShell use Rust $rust_version; the locked rust-overlay has up to $overlay_newest_stable"
        else
            rust_version=$(grep -xE '[0-9]+\.[0-9]+\.[0-9]+' "$work/tc.out" | head -1)
            fail "toolchain: rust-overlay" "$(tail -1 "$work/tc.out")"
        fi
    else
        fail "toolchain: rust-overlay" "evaluating flake.nix's toolchain failed: $(grep -m1 error: "$work/toolchain.err")"
    fi
else
    skip "toolchain: rust-overlay" "no usable Nix to evaluate flake.nix"
fi
if ! have cargo; then
    skip toolchain "no cargo"
elif [[ -z $rust_version ]]; then
    skip "toolchain: rust-version" "the flake's Rust version is unknown (see above)"
else
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
    if python3 - "$work/meta.json" "$rust_version" "${CARGO_HOME:-$HOME/.cargo}" "$nixpkgs_rustc" >"$work/msrv.out" 2>&1 <<'EOF'; then
import glob, json, os, sys, tomllib
meta_path, rustc, cargo_home, nixpkgs_rustc = sys.argv[1:5]
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
needs = lambda limit: sorted(f"{n} {ver} needs {rv}" for n, ver, rv in crates if rv and v(str(rv)) > v(limit))
too_new = needs(rustc)
if too_new:
    print(f"Rust {rustc}, the flake's toolchain, cannot build: " + "; ".join(too_new) + f" [{how}]")
    sys.exit(1)
newest = max((str(rv) for _, _, rv in crates if rv), key=v, default="none")
print(f"all {len(crates)} locked crates build with Rust {rustc} (the newest rust-version asked for is {newest}) [{how}]; "
      f"nixos-25.05's own rustc {nixpkgs_rustc} could not: " + ("; ".join(needs(nixpkgs_rustc)) or "it could, the overlay may be dropped"))
EOF
        pass "toolchain: rust-version" "$(cat "$work/msrv.out")"
    else
        fail "toolchain: rust-version" "$(cat "$work/msrv.out")"
    fi
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
echo "   nix build .#default                       the package (rust-overlay's Rust ${rust_version:-?}, fetched from static.rust-lang.org; cargo + clang in the derivation)"
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
