{
  description = "picosnitch: records which executable makes every network connection, with BPF";

  # nixos-25.05 is the newest channel that Nix 2.8 (Debian bookworm's nix-bin, used by
  # the offline checks) can still evaluate; nixpkgs >= 25.11 needs Nix >= 2.18.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      # The two architectures crates/picosnitch-bpf/build.rs compiles BPF for.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      packageFor = pkgs: self.packages.${pkgs.stdenv.hostPlatform.system}.default;
    in
    {
      packages = forAllSystems (pkgs: rec {
        picosnitch = pkgs.callPackage ./nixos-module/package.nix { };
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
            cargo
            rustc
            clippy
            rustfmt
            rust-analyzer
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
