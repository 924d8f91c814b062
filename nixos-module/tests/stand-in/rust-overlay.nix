# A stand-in for the rust-overlay flake input (github:oxalica/rust-overlay), so that
# ../flake-outputs.nix can call flake.nix's `outputs` offline. As the real
# `overlays.default` does, it adds `rust-bin` to nixpkgs and changes nothing else.
# `rust-bin.stable.<version>` has the profiles `minimal` (rustc, cargo, rust-std) and
# `default` (+ clippy, rustfmt, rust-docs), named as rust-overlay names them
# (rust-minimal-1.95.0), each with `override { extensions; targets; }`. They are
# records with a made-up store path that changes with the components; nothing is
# fetched or built.
#
# The real overlay has the stable releases from 1.29.0 up to the newest one when the
# locked revision was made; this one answers for any 1.x.y (x from 29 to 150, y up to
# 3), so it cannot tell whether the locked revision has the version flake.nix asks
# for. scripts/nix-checks.sh checks that against the recorded pin.
let
  inherit (builtins)
    concatMap
    concatStringsSep
    elem
    filter
    genList
    hashString
    listToAttrs
    storeDir
    substring
    ;

  fake = name: inputs: {
    type = "derivation";
    inherit name;
    outPath = "${storeDir}/${substring 0 32 (hashString "sha256" "${name}${inputs}")}-${name}";
  };

  profiles = {
    minimal = [
      "rustc"
      "cargo"
      "rust-std"
    ];
    default = profiles.minimal ++ [
      "rust-docs"
      "rustfmt"
      "clippy"
    ];
  };

  # An aggregated toolchain, as rust-overlay's mk-aggregated.nix makes one.
  toolchain =
    {
      version,
      profile,
      extensions ? [ ],
      targets ? [ ],
    }:
    let
      base = profiles.${profile};
      components = base ++ filter (e: !(elem e base)) extensions;
    in
    fake "rust-${profile}-${version}" (concatStringsSep "," (components ++ targets))
    // {
      pname = "rust-${profile}";
      inherit version components targets;
      override =
        args:
        toolchain (
          {
            inherit version profile;
          }
          // args
        );
    };

  versions = concatMap (minor: genList (patch: "1.${toString (minor + 29)}.${toString patch}") 4) (genList (x: x) 122);

  rust-bin.stable = listToAttrs (
    map (version: {
      name = version;
      value = {
        minimal = toolchain {
          inherit version;
          profile = "minimal";
        };
        default = toolchain {
          inherit version;
          profile = "default";
        };
      };
    }) versions
  );

  overlay = final: prev: { inherit rust-bin; };
in
{
  overlays.default = overlay;
  overlays.rust-overlay = overlay;
}
