# A stand-in for the part of nixpkgs' `pkgs` that ../../default.nix uses.
#
# Nothing here builds. `runCommand` returns a record of what would be built (name, buildCommand,
# a made-up output path) so the tests can check the build-time validation is
# wired up; the real check (running `picosnitch check-config`) needs the package and
# runs only with real nixpkgs. `formats.toml` writes the TOML itself (nixpkgs uses
# remarshal's json2toml) and, like json2toml, refuses null, which TOML cannot express.
{ lib }:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    isAttrs
    isBool
    isFloat
    isInt
    isList
    isPath
    isString
    match
    toJSON
    typeOf
    ;

  # Like a real output path, it changes with everything that goes into the build.
  fakeStorePath =
    name: inputs:
    "${builtins.storeDir}/${builtins.substring 0 32 (builtins.hashString "sha256" "${name}${inputs}")}-${name}";

  key = k: if match "[A-Za-z0-9_-]+" k != null then k else toJSON k;

  scalar =
    loc: v:
    if v == null then
      throw "formats.toml: ${loc} is null, which TOML cannot express"
    else if isBool v then
      (if v then "true" else "false")
    else if isInt v || isFloat v then
      toString v
    else if isString v || isPath v then
      toJSON (toString v)
    else if isList v then
      "[" + concatStringsSep ", " (map (scalar "${loc}[]") v) + "]"
    else if isAttrs v then
      "{ " + concatStringsSep ", " (map (k: "${key k} = ${scalar "${loc}.${k}" v.${k}}") (attrNames v)) + " }"
    else
      throw "formats.toml: ${loc} is a ${typeOf v}, which TOML cannot express";

  # Plain keys first, then one [table] per nested attribute set, depth first.
  table =
    path: v:
    let
      names = attrNames v;
      isTable = n: isAttrs v.${n} && !(v.${n} ? outPath);
      plain = filter (n: !isTable n) names;
      tables = filter isTable names;
      loc = concatStringsSep "." path;
      header = if path == [ ] || plain == [ ] && tables != [ ] then "" else "[${concatStringsSep "." (map key path)}]\n";
    in
    header
    + lib.concatMapStrings (n: "${key n} = ${scalar "${loc}.${n}" v.${n}}\n") plain
    + lib.concatMapStrings (n: "\n" + table (path ++ [ n ]) v.${n}) tables;

  tomlValue =
    let
      valueType =
        lib.types.nullOr (
          lib.types.oneOf [
            lib.types.bool
            lib.types.int
            lib.types.float
            lib.types.str
            lib.types.path
            (lib.types.attrsOf valueType)
            (lib.types.listOf valueType)
          ]
        )
        // {
          description = "TOML value";
        };
    in
    valueType;
in
{
  formats.toml =
    { }:
    {
      type = tomlValue;
      generate = name: value: builtins.toFile name (table [ ] value);
    };

  # passthru attributes land on the result, as with stdenv.mkDerivation.
  runCommand =
    name: env: buildCommand:
    (env.passthru or { })
    // {
      type = "derivation";
      inherit name buildCommand;
      env = removeAttrs env [ "passthru" ];
      outPath = fakeStorePath name (buildCommand + builtins.toJSON (removeAttrs env [ "passthru" ]));
    };

  stdenv.hostPlatform.system = "x86_64-linux";

  # What the tests install as services.picosnitch.package.
  picosnitch = {
    type = "derivation";
    name = "picosnitch-0.1.0";
    pname = "picosnitch";
    outPath = fakeStorePath "picosnitch-0.1.0" "";
  };
}
