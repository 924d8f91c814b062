# A stand-in for the nixpkgs flake input, so that ../flake-outputs.nix can call
# flake.nix's `outputs` offline and look at what it returns. Packages are records
# with a made-up store path (nothing is built or fetched); `callPackage` passes the
# arguments a function asks for, as nixpkgs' does; `extend` applies an overlay to the
# whole set, as nixpkgs' does (final/prev, so callPackage sees what overlays add).
# Attribute names are the ones nixos-25.05 uses; a name that nixpkgs lacks would pass
# here and fail there, so this checks how flake.nix wires things together, not that
# nixpkgs has every package.
{ lib, pkgs }:
let
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  # The made-up store path changes with `inputs`, as a real one does with the build.
  fakeWith = name: inputs: {
    type = "derivation";
    inherit name;
    outPath = "${builtins.storeDir}/${builtins.substring 0 32 (builtins.hashString "sha256" "${name}${inputs}")}-${name}";
  };
  fake = name: fakeWith name "";

  nixpkgsLib = lib // {
    genAttrs = names: f: builtins.listToAttrs (map (n: lib.nameValuePair n (f n)) names);
    getDev = p: p.dev or p;
    # nixpkgs' getExe: the main program named in meta.
    getExe = p: "${p}/bin/${p.meta.mainProgram}";
    importTOML = path: builtins.fromTOML (builtins.readFile path);
    licenses.gpl3Plus = {
      spdxId = "GPL-3.0-or-later";
    };
    # nixpkgs' fileset refuses paths that do not exist; so does this one.
    fileset = {
      unions = paths: paths;
      toSource =
        { root, fileset }:
        let
          missing = builtins.filter (p: !builtins.pathExists p) fileset;
        in
        if missing != [ ] then
          throw "lib.fileset: ${toString (builtins.head missing)} does not exist"
        else
          {
            inherit root;
            files = map toString fileset;
            outPath = toString root;
          };
    };
  };

  # The package set of one system with these overlays applied, like
  # `import nixpkgs { inherit system overlays; }`.
  pkgsWith =
    system: overlays:
    let
      final = builtins.foldl' (prev: overlay: prev // overlay final prev) (base system final) overlays;
    in
    final // { extend = overlay: pkgsWith system (overlays ++ [ overlay ]); };

  base = system: self: {
    inherit system;
    stdenv.hostPlatform.system = system;
    callPackage =
      fn: args:
      let
        f = if builtins.isFunction fn then fn else import fn;
      in
      f (builtins.intersectAttrs (builtins.functionArgs f) (self // { lib = nixpkgsLib; }) // args);

    # nixpkgs' makeRustPlatform: buildRustPackage with the given rustc and cargo
    # (nixpkgs' own `rustPlatform` is this with its rustc 1.86.0). Attributes and
    # passthru end up on the derivation, as with mkDerivation; rustc is among the
    # nativeBuildInputs, as in nixpkgs, and the store path depends on the toolchain.
    # `rustc` and `cargo` are also recorded on the result (in nixpkgs, cargo is
    # inside the cargo hooks), so the tests can see which toolchain builds it.
    makeRustPlatform =
      { rustc, cargo, ... }:
      {
        buildRustPackage =
          attrs:
          fakeWith "${attrs.pname}-${attrs.version}" "${rustc}${cargo}"
          // (attrs.passthru or { })
          // {
            inherit (attrs) meta;
            inherit attrs rustc cargo;
            nativeBuildInputs = (attrs.nativeBuildInputs or [ ]) ++ [ rustc ];
          };
      };
    rustPlatform = self.makeRustPlatform { inherit (self) rustc cargo; };

    llvmPackages.clang-unwrapped = fake "clang-19.1.7";
    libbpf = fake "libbpf-1.5.0" // {
      dev = fake "libbpf-1.5.0-dev";
    };
    linuxHeaders = fake "linux-headers-6.12.7";
    writeShellScript = name: text: fakeWith name text // { inherit text; };
    mkShell = attrs: fake "nix-shell" // { inherit attrs; };
    testers.runNixOSTest = test: fake "vm-test-run-${test.name}" // { inherit test; };
    inherit (pkgs) runCommand formats;

    cargo = fake "cargo-1.86.0" // { version = "1.86.0"; };
    rustc = fake "rustc-1.86.0" // { version = "1.86.0"; };
    clippy = fake "clippy-1.86.0";
    rustfmt = fake "rustfmt-1.86.0";
    rust-analyzer = fake "rust-analyzer";
    cargo-nextest = fake "cargo-nextest";
    llvm = fake "llvm-19.1.7";
    bpftools = fake "bpftools";
    sqlite = fake "sqlite";
    tmux = fake "tmux";
    postgresql = fake "postgresql";
    qemu = fake "qemu";
    python3 = fake "python3";
    nixfmt-rfc-style = fake "nixfmt";
  };
in
{
  lib = nixpkgsLib;
  legacyPackages = nixpkgsLib.genAttrs systems (system: pkgsWith system [ ]);
}
