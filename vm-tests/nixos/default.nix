# NixOS VM tests: each boots a VM (QEMU, KVM when available) with services.picosnitch
# and checks the daemon end to end. They need Nix and nixpkgs (binary cache), so they
# run where those exist, not on the project's CI machines:
#   nix build .#checks.x86_64-linux.vm-service -L
#   nix build .#checks.x86_64-linux.vm-remote -L
# Interactively: nix run .#checks.x86_64-linux.vm-service.driverInteractive
{ pkgs, self }:
{
  vm-service = pkgs.testers.runNixOSTest (import ./service.nix { inherit self; });
  vm-remote = pkgs.testers.runNixOSTest (import ./remote.nix { inherit self; });
}
