# The picosnitch workspace, built from Cargo.lock with nixpkgs' buildRustPackage. The
# BPF object is compiled by crates/picosnitch-bpf/build.rs with clang inside this
# derivation and embedded in the binary, so the output is the one `picosnitch` binary.
# The flake passes `rustPlatform` made from rust-overlay's toolchain (see flake.nix):
# nixos-25.05's own rustc (1.86) is too old for the locked crates.
{
  lib,
  rustPlatform,
  llvmPackages,
  libbpf,
  linuxHeaders,
}:
let
  bpfBuildEnv = {
    # build.rs runs `$CLANG -target bpf`. The cc-wrapper's host flags (hardening,
    # glibc include paths, -march) are wrong for BPF, so the unwrapped clang is used.
    CLANG = "${llvmPackages.clang-unwrapped}/bin/clang";
    # bpf/bpf_helpers.h and friends. Headers only: aya loads the object, libbpf is not linked.
    LIBBPF_INCLUDE_DIR = "${lib.getDev libbpf}/include";
    # <linux/bpf.h>, <linux/types.h> and <asm/types.h>: Debian keeps asm/ in a multiarch
    # directory that build.rs adds; nixpkgs' kernel headers keep it next to linux/.
    BPF_EXTRA_CFLAGS = "-idirafter ${linuxHeaders}/include";
  };
in
rustPlatform.buildRustPackage {
  pname = "picosnitch";
  inherit ((lib.importTOML ../Cargo.toml).workspace.package) version;

  # Only what the build reads, so README or Nix edits do not rebuild the package.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../crates
      ../bpf
      ../config.example.toml
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;

  env = bpfBuildEnv;
  # The devShell sets the same variables, so `cargo build` there finds clang and headers.
  passthru = { inherit bpfBuildEnv; };

  # Unit tests only: the capture and end-to-end tests need root and a kernel with BPF,
  # which the build sandbox has neither of (the NixOS VM tests cover them).
  cargoTestFlags = [
    "--workspace"
    "--lib"
  ];

  postInstall = ''
    install -Dm644 config.example.toml $out/share/doc/picosnitch/config.example.toml
  '';

  meta = {
    description = "Records which executable makes every network connection, with BPF";
    license = lib.licenses.gpl3Plus;
    mainProgram = "picosnitch";
    # build.rs knows the BPF target names of these two.
    platforms = [
      "x86_64-linux"
      "aarch64-linux"
    ];
  };
}
