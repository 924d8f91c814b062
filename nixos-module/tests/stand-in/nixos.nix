# A stand-in for the NixOS options that ../../default.nix sets, declared with the
# types nixpkgs (nixos-25.05) gives them, plus what NixOS does with them that the
# tests look at: failed assertions (nixpkgs throws on these when building the system)
# and the text of a service unit (../render-unit.nix).
{ lib, pkgs }:
let
  inherit (lib) mkOption types;

  modulesPath = "/stand-in/nixos/modules";

  # nixos/lib/systemd-unit-options.nix: a list anywhere makes the whole option a list
  # (one line per element); otherwise all definitions must agree.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      if builtins.any (d: builtins.isList d.value) defs then
        builtins.concatMap (d: if builtins.isList d.value then d.value else [ d.value ]) defs
      else
        lib.mergeEqualOption loc defs;
    check = x: builtins.isBool x || builtins.isInt x || builtins.isString x || builtins.isPath x || builtins.isList x || (builtins.isAttrs x && x ? outPath);
  };

  unitList = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };

  declarations = {
    _file = "${modulesPath}/(stand-in declarations)";
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };

      users.users = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            options = {
              isSystemUser = mkOption {
                type = types.bool;
                default = false;
              };
              isNormalUser = mkOption {
                type = types.bool;
                default = false;
              };
              group = mkOption {
                type = types.str;
                default = "";
              };
              extraGroups = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              description = mkOption {
                type = types.str;
                default = "";
              };
              uid = mkOption {
                type = types.nullOr types.int;
                default = null;
              };
            };
          }
        );
      };
      users.groups = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            options = {
              gid = mkOption {
                type = types.nullOr types.int;
                default = null;
              };
              members = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
            };
          }
        );
      };

      environment.systemPackages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      environment.etc = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            options = {
              source = mkOption { type = types.path; };
              mode = mkOption {
                type = types.str;
                default = "symlink";
              };
            };
          }
        );
      };

      systemd.tmpfiles.rules = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      systemd.services = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            options = {
              enable = mkOption {
                type = types.bool;
                default = true;
              };
              description = mkOption {
                type = types.str;
                default = "";
              };
              documentation = unitList;
              wantedBy = unitList;
              requiredBy = unitList;
              wants = unitList;
              requires = unitList;
              before = unitList;
              after = unitList;
              environment = mkOption {
                type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
                default = { };
              };
              path = mkOption {
                type = types.listOf (types.oneOf [ types.package types.str ]);
                default = [ ];
              };
              restartTriggers = mkOption {
                type = types.listOf types.unspecified;
                default = [ ];
              };
              unitConfig = mkOption {
                type = types.attrsOf unitOption;
                default = { };
              };
              serviceConfig = mkOption {
                type = types.attrsOf unitOption;
                default = { };
              };
            };
          }
        );
      };
    };
  };

  # nixpkgs' own module for picosnitch 2.x (nixos/modules/services/networking/picosnitch.nix
  # in nixos-25.05), which is always part of a NixOS evaluation; reduced to its option.
  upstreamPicosnitch = {
    _file = "${modulesPath}/services/networking/picosnitch.nix";
    key = "${modulesPath}/services/networking/picosnitch.nix";
    options.services.picosnitch.enable = lib.mkEnableOption "picosnitch daemon";
  };

  renderService = import ../render-unit.nix { inherit lib; };
in
{
  inherit modulesPath;

  # evalModules over the stand-in declarations, nixpkgs' picosnitch module and
  # `modules`; returns the config and what `nixos-rebuild` would act on.
  eval =
    modules:
    let
      result = lib.evalModules {
        modules = [
          declarations
          upstreamPicosnitch
        ] ++ modules;
        specialArgs = {
          inherit pkgs modulesPath;
        };
      };
      inherit (result) config;
    in
    {
      inherit config;
      inherit (result) options;
      # nixos/modules/system/activation/top-level.nix throws with these messages.
      failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
      units = builtins.mapAttrs renderService config.systemd.services;
    };
}
