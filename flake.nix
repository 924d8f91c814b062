{
  description = "picosnitch: records which executable makes every network connection, with BPF";

  # nixos-25.05 is the newest channel that Nix 2.8 (Debian bookworm's nix-bin, used by
  # the offline checks) can still evaluate; nixpkgs >= 25.11 needs Nix >= 2.18.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  # release-25.05 ships rustc 1.86, and the locked crates need newer (aya 0.14: 1.87,
  # and aya 0.13 cannot create the SK_STORAGE maps the BPF side uses; sha2 0.11 and
  # postcard 1.2: 1.88). So the Rust toolchain comes from rust-overlay, applied to the
  # pinned nixpkgs; its own nixpkgs input follows ours, so only one nixpkgs is fetched.
  inputs.rust-overlay.url = "github:oxalica/rust-overlay";
  inputs.rust-overlay.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    {
      self,
      nixpkgs,
      rust-overlay,
    }:
    let
      inherit (nixpkgs) lib;
      # The Rust release the package and the devShell use: the project's CI toolchain.
      # scripts/nix-checks.sh evaluates the package to find it and checks every locked
      # crate's rust-version against it, and that the locked rust-overlay has it.
      rustVersion = "1.95.0";
      # The two architectures crates/picosnitch-bpf/build.rs compiles BPF for.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      # The pinned nixpkgs with rust-overlay's `rust-bin` added; nothing else changes.
      forAllSystems =
        f: lib.genAttrs systems (system: f (nixpkgs.legacyPackages.${system}.extend rust-overlay.overlays.default));
      packageFor = pkgs: self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      # rustc, cargo and rust-std: all buildRustPackage needs.
      rustToolchain = pkgs: pkgs.rust-bin.stable.${rustVersion}.minimal;
    in
    {
      packages = forAllSystems (pkgs: rec {
        picosnitch = pkgs.callPackage ./nixos-module/package.nix {
          rustPlatform = pkgs.makeRustPlatform {
            cargo = rustToolchain pkgs;
            rustc = rustToolchain pkgs;
          };
        };
        default = picosnitch;
      });

      # `nix run . -- status`, and `nix run .#tui`.
      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe (packageFor pkgs);
          meta.description = "picosnitch's command line (daemon, status, query, tui, top)";
        };
        tui = {
          type = "app";
          program = "${pkgs.writeShellScript "picosnitch-tui" ''
            exec ${lib.getExe (packageFor pkgs)} tui "$@"
          ''}";
          meta.description = "Browse the recorded history in the terminal";
        };
      });

      # services.picosnitch, with this flake's package as the default.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos-module ];
          services.picosnitch.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };
      nixosModules.picosnitch = self.nixosModules.default;

      checks = forAllSystems (
        pkgs:
        {
          package = packageFor pkgs;
          # The offline module tests, run against real nixpkgs instead of the stand-in.
          module-eval = import ./nixos-module/tests/check.nix { inherit pkgs nixpkgs; };
        }
        # NixOS VM tests: boot a VM with the module and check the daemon end to end.
        // import ./vm-tests/nixos { inherit pkgs self; }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            # The package's toolchain, with the tools for working on it.
            (rust-bin.stable.${rustVersion}.default.override {
              extensions = [
                "clippy"
                "rustfmt"
                "rust-src"
                "rust-analyzer"
              ];
            })
            cargo-nextest
            llvmPackages.clang-unwrapped
            llvm
            libbpf
            bpftools
            sqlite
            tmux
            postgresql
            qemu
            python3
            nixfmt-rfc-style
          ];
          # CLANG, LIBBPF_INCLUDE_DIR, BPF_EXTRA_CFLAGS for build.rs, as in the package.
          env = (packageFor pkgs).bpfBuildEnv;
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
