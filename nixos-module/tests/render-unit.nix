# The text of a service unit from a NixOS `systemd.services.<name>` value, written
# like nixpkgs' serviceToUnit (nixos/lib/systemd-lib.nix) so that the tests can parse
# it and `systemd-analyze security` can read it. Used with the stand-in and with real
# nixpkgs (./check.nix), so both are judged on the same text.
{ lib }:
let
  # systemd-lib.nix toOption/attrsToSection: one `Key=value` line per list element.
  toOption =
    x:
    if x == true then
      "true"
    else if x == false then
      "false"
    else
      toString x;
  attrsToSection =
    as:
    lib.concatMapStrings (
      name:
      let
        v = as.${name};
      in
      lib.concatMapStrings (x: "${name}=${toOption x}\n") (if builtins.isList v then v else [ v ])
    ) (builtins.attrNames as);

  # [Unit] from description and the ordering lists (as nixpkgs' unitConfig defaults
  # do), [Service] from environment and serviceConfig; nixpkgs leaves [Install] out
  # (it links wantedBy itself), it is written here so the file stands on its own.
  renderService =
    name: s:
    let
      unitSection =
        lib.optionalAttrs (s.description != "") { Description = s.description; }
        // lib.optionalAttrs (s.documentation != [ ]) { Documentation = toString s.documentation; }
        // lib.optionalAttrs (s.wants != [ ]) { Wants = toString s.wants; }
        // lib.optionalAttrs (s.requires != [ ]) { Requires = toString s.requires; }
        // lib.optionalAttrs (s.before != [ ]) { Before = toString s.before; }
        // lib.optionalAttrs (s.after != [ ]) { After = toString s.after; }
        // s.unitConfig;
    in
    "[Unit]\n"
    + attrsToSection unitSection
    + "\n[Service]\n"
    + lib.concatMapStrings (n: "Environment=${builtins.toJSON "${n}=${s.environment.${n}}"}\n") (
      builtins.filter (n: s.environment.${n} != null) (builtins.attrNames s.environment)
    )
    + attrsToSection s.serviceConfig
    + lib.optionalString (s.wantedBy != [ ]) "\n[Install]\nWantedBy=${toString s.wantedBy}\n";
in
renderService
