# Offline checks of flake.nix: its `outputs` function is called with stand-ins for
# the nixpkgs and rust-overlay inputs (./stand-in/nixpkgs.nix, ./stand-in/rust-overlay.nix)
# and the result is compared with what the flake promises: packages (built with
# rust-overlay's toolchain, not nixpkgs' rustc), apps (`nix run .#tui`), the NixOS
# module with this flake's package as default, checks, devShell and formatter, for
# both systems.
#   nix-instantiate --read-write-mode --eval --strict --json nixos-module/tests/flake-outputs.nix -A results
# `toolchain` is the Rust version the package and the devShell get; scripts/nix-checks.sh
# reads it from here (-A toolchain) to judge Cargo.lock against it.
let
  standIn = import ./stand-in;
  nixpkgs = import ./stand-in/nixpkgs.nix { inherit (standIn) lib pkgs; };
  rust-overlay = import ./stand-in/rust-overlay.nix;
  repo = ../..;
  inherit (builtins) attrNames elem filter;

  flake = import (repo + "/flake.nix");
  outputs = flake.outputs {
    inherit self nixpkgs rust-overlay;
  };
  self = outputs // {
    outPath = toString repo;
  };

  sys = "x86_64-linux";
  pkg = self.packages.${sys}.default;
  binary = "${pkg}/bin/picosnitch";
  devShell = self.devShells.${sys}.default.attrs;

  # What the package is built with, and the toolchains in the devShell.
  rustc = pkg.rustc;
  devShellToolchains = filter (p: p ? components) devShell.packages;
  # rust-overlay's toolchains of that version, on the stand-in nixpkgs of that system.
  overlaid = system: nixpkgs.legacyPackages.${system}.extend rust-overlay.overlays.default;
  fromOverlay = system: (overlaid system).rust-bin.stable.${rustc.version};

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
    (test "inputs: nixpkgs, and rust-overlay following it" {
      inputs = attrNames flake.inputs;
      follows = flake.inputs.rust-overlay.inputs.nixpkgs.follows or null;
    } {
      inputs = [ "nixpkgs" "rust-overlay" ];
      follows = "nixpkgs";
    })
    (test "package: built with rust-overlay's minimal toolchain (makeRustPlatform), not nixpkgs' rustc" (
      map (system: let p = self.packages.${system}.default; in {
        inherit system;
        rustc = p.rustc.name;
        rustcFromOverlay = p.rustc == (fromOverlay system).minimal;
        cargoFromOverlay = p.cargo == (fromOverlay system).minimal;
        rustcInNativeBuildInputs = elem p.rustc p.nativeBuildInputs;
        notNixpkgsRustc = p.rustc != nixpkgs.legacyPackages.${system}.rustc;
      }) [ "aarch64-linux" "x86_64-linux" ]
    ) (
      map (system: {
        inherit system;
        rustc = "rust-minimal-${rustc.version}";
        rustcFromOverlay = true;
        cargoFromOverlay = true;
        rustcInNativeBuildInputs = true;
        notNixpkgsRustc = true;
      }) [ "aarch64-linux" "x86_64-linux" ]
    ))
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
    (test "devShell: the package's Rust release, from rust-overlay, with clippy, rustfmt, rust-src, rust-analyzer" (map (t: {
      inherit (t) name components;
      fromOverlay = t == (fromOverlay sys).default.override { extensions = [ "clippy" "rustfmt" "rust-src" "rust-analyzer" ]; };
    }) devShellToolchains) [
      {
        name = "rust-default-${rustc.version}";
        components = [ "rustc" "cargo" "rust-std" "rust-docs" "rustfmt" "clippy" "rust-src" "rust-analyzer" ];
        fromOverlay = true;
      }
    ])
    (test "devShell: no second Rust toolchain from nixpkgs" (map (p: p.name) (filter (p: elem p.name [
      "cargo-1.86.0"
      "rustc-1.86.0"
      "clippy-1.86.0"
      "rustfmt-1.86.0"
      "rust-analyzer"
    ]) devShell.packages)) [ ])
    (test "devShell: the tools to build and test" (builtins.filter (n: !(elem n (map (p: p.name) devShell.packages))) [
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
  # The Rust version that builds the package, and the devShell's.
  toolchain = {
    package = rustc.version;
    devShell = map (t: t.version) devShellToolchains;
  };
  results = map (t: {
    inherit (t) name;
    pass = t.actual == t.expected;
    detail = if t.actual == t.expected then "" else "expected ${builtins.toJSON t.expected}\n     got ${builtins.toJSON t.actual}";
  }) tests;
}
