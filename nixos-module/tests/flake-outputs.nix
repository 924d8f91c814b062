# Offline checks of flake.nix: its `outputs` function is called with a stand-in for
# the nixpkgs input (./stand-in/nixpkgs.nix) and the result is compared with what
# the flake promises: packages, apps (`nix run .#tui`), the NixOS module with this
# flake's package as default, checks, devShell and formatter, for both systems.
#   nix-instantiate --read-write-mode --eval --strict --json nixos-module/tests/flake-outputs.nix -A results
let
  standIn = import ./stand-in;
  nixpkgs = import ./stand-in/nixpkgs.nix { inherit (standIn) lib pkgs; };
  repo = ../..;
  inherit (builtins) attrNames elem match;

  outputs = (import (repo + "/flake.nix")).outputs {
    inherit self nixpkgs;
  };
  self = outputs // {
    outPath = toString repo;
  };

  sys = "x86_64-linux";
  pkg = self.packages.${sys}.default;
  binary = "${pkg}/bin/picosnitch";
  devShell = self.devShells.${sys}.default.attrs;

  viaFlakeModule = standIn.nixos.eval [
    self.nixosModules.default
    { services.picosnitch.enable = true; }
  ];

  test = name: actual: expected: { inherit name actual expected; };
  tests = [
    (test "outputs" (attrNames outputs) [
      "apps"
      "checks"
      "devShells"
      "formatter"
      "nixosModules"
      "packages"
    ])
    (test "systems" (map (o: attrNames self.${o}) [
      "packages"
      "apps"
      "checks"
      "devShells"
      "formatter"
    ]) (builtins.genList (_: [ "aarch64-linux" "x86_64-linux" ]) 5))
    (test "package: name and version from Cargo.toml" pkg.name "picosnitch-${(builtins.fromTOML (builtins.readFile (repo + "/Cargo.toml"))).workspace.package.version}")
    (test "package: built from Cargo.lock with the BPF toolchain in the derivation" {
      lockFile = pkg.attrs.cargoLock.lockFile == repo + "/Cargo.lock";
      inherit (pkg.attrs.env) CLANG LIBBPF_INCLUDE_DIR BPF_EXTRA_CFLAGS;
      src = pkg.attrs.src.files;
      mainProgram = pkg.meta.mainProgram;
      devShellHasTheSameBuildEnv = devShell.env == pkg.attrs.env;
    } {
      lockFile = true;
      CLANG = "${nixpkgs.legacyPackages.${sys}.llvmPackages.clang-unwrapped}/bin/clang";
      LIBBPF_INCLUDE_DIR = "${nixpkgs.legacyPackages.${sys}.libbpf.dev}/include";
      BPF_EXTRA_CFLAGS = "-idirafter ${nixpkgs.legacyPackages.${sys}.linuxHeaders}/include";
      src = map (p: toString (repo + p)) [
        "/Cargo.toml"
        "/Cargo.lock"
        "/crates"
        "/bpf"
        "/config.example.toml"
      ];
      mainProgram = "picosnitch";
      devShellHasTheSameBuildEnv = true;
    })
    (test "apps: default runs the binary, tui runs `picosnitch tui`" {
      default = self.apps.${sys}.default.program;
      tui = self.apps.${sys}.tui.program;
      types = map (a: a.type) (builtins.attrValues self.apps.${sys});
    } {
      default = binary;
      tui = "${nixpkgs.legacyPackages.${sys}.writeShellScript "picosnitch-tui" "exec ${binary} tui \"$@\"\n"}";
      types = [
        "app"
        "app"
      ];
    })
    (test "nixosModules.default: this flake's package is the default" (standIn.lib.hasPrefix "${binary} daemon --config "
      viaFlakeModule.config.systemd.services.picosnitch.serviceConfig.ExecStart
    ) true)
    (test "checks: package, module tests and the VM tests" {
      names = attrNames self.checks.${sys};
      package = self.checks.${sys}.package == pkg;
      vmTests = map (n: self.checks.${sys}.${n}.test.name) [ "vm-service" "vm-remote" ];
      scripts = map (n: self.checks.${sys}.${n}.test.testScript) [ "vm-service" "vm-remote" ];
    } {
      names = [ "module-eval" "package" "vm-remote" "vm-service" ];
      package = true;
      vmTests = [ "picosnitch-service" "picosnitch-remote" ];
      scripts = map (f: builtins.readFile (repo + "/vm-tests/nixos/${f}")) [ "service.py" "remote.py" ];
    })
    (test "devShell: the tools to build and test" (builtins.filter (n: !(elem n (map (p: p.name) devShell.packages))) [
      "cargo-1.86.0"
      "rustc-1.86.0"
      "clippy-1.86.0"
      "cargo-nextest"
      "clang-19.1.7"
      "llvm-19.1.7"
      "libbpf-1.5.0"
      "bpftools"
      "sqlite"
      "tmux"
      "postgresql"
      "qemu"
    ]) [ ])
    (test "formatter" self.formatter.${sys}.name "nixfmt")
  ];
in
{
  results = map (t: {
    inherit (t) name;
    pass = t.actual == t.expected;
    detail = if t.actual == t.expected then "" else "expected ${builtins.toJSON t.expected}\n     got ${builtins.toJSON t.actual}";
  }) tests;
}
