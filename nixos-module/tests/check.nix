# The tests of ./default.nix against real nixpkgs: the flake check `module-eval`.
# Offline they run against ./stand-in; here `nixos.eval` is a real NixOS evaluation
# (nixpkgs' module system, option types, and its own services.picosnitch module that
# ours disables). The tests are evaluated when the check is; the derivation prints
# them and fails if any failed. Reading the rendered TOML builds it (remarshal), so
# this check uses import-from-derivation.
{ pkgs, nixpkgs }:
let
  inherit (pkgs) lib;
  renderService = import ./render-unit.nix { inherit lib; };

  # Never built: the tests only look at its store path.
  package = pkgs.runCommand "picosnitch-0.1.0" { meta.mainProgram = "picosnitch"; } ''
    echo "a stand-in for the picosnitch package, not meant to be built" >&2
    exit 1
  '';

  # The least a NixOS configuration needs to evaluate.
  minimal = {
    nixpkgs.hostPlatform = pkgs.stdenv.hostPlatform.system;
    boot.loader.grub.enable = false;
    fileSystems."/" = {
      device = "none";
      fsType = "tmpfs";
    };
    system.stateVersion = "25.05";
  };

  env = {
    inherit lib package;
    nixos.eval =
      modules:
      let
        system = nixpkgs.lib.nixosSystem { modules = [ minimal ] ++ modules; };
        inherit (system) config;
      in
      {
        inherit config;
        inherit (system) options;
        failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
        units = builtins.mapAttrs renderService config.systemd.services;
      };
  };

  results = (import ./. { inherit env; }).results;
  failed = builtins.filter (r: !r.pass) results;
  report = lib.concatMapStrings (
    r: (if r.pass then "PASS " else "FAIL ") + r.name + "\n" + lib.optionalString (!r.pass) "     ${r.detail}\n"
  ) results;
in
pkgs.runCommand "picosnitch-module-eval" { inherit report; passAsFile = [ "report" ]; } ''
  cat "$reportPath"
  echo "${toString (builtins.length results - builtins.length failed)} passed, ${toString (builtins.length failed)} failed"
  ${lib.optionalString (failed != [ ]) "exit 1"}
  touch $out
''
