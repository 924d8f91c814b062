# The offline stand-in for nixpkgs: `lib`, `pkgs` and a NixOS evaluator, just large
# enough for ../../default.nix. See each file for what it keeps and what it leaves out.
let
  lib = import ./lib.nix;
  pkgs = import ./pkgs.nix { inherit lib; };
  nixos = import ./nixos.nix { inherit lib pkgs; };
in
{
  inherit lib pkgs nixos;
  # What the tests install as services.picosnitch.package.
  package = pkgs.picosnitch;
}
