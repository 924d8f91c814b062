# The daemon on one machine: readiness, attached BPF programs, a row for a normal
# user's curl with the right exe and sha256, who may read the history, settings
# changes that take effect after the restart (an ignored port; the fentry hooks), and
# retention.
{ self }:
{
  name = "picosnitch-service";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [
        self.nixosModules.default
        ./http-fixture.nix
      ];

      services.picosnitch = {
        enable = true;
        settings = {
          # Rows reach the database a second after the traffic, not ten.
          database.write_limit_seconds = 1;
          database.retention_days = 30;
          # The hooks the assertions below name (kernel >= 6.4, as in nixos-25.05).
          monitoring.hook_set = "tracepoint";
        };
      };

      # alice may read the history (group picosnitch), bob may not.
      users.users.alice = {
        isNormalUser = true;
        extraGroups = [ "picosnitch" ];
      };
      users.users.bob.isNormalUser = true;

      environment.systemPackages = [
        pkgs.curl
        pkgs.sqlite
        pkgs.bpftools
      ];

      # The same machine with one setting changed, switched to during the test.
      specialisation.ignore-port.configuration.services.picosnitch.settings.log.ignore_ports = [ 8080 ];
      specialisation.fentry.configuration.services.picosnitch.settings.monitoring.hook_set = "fentry";
    };

  testScript = builtins.readFile ./service.py;
}
