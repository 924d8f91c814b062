# A second node with PostgreSQL receives the rows the daemon records (the remote
# writer of issue 7): password through remoteDatabase.passwordFile (a systemd
# credential), TLS off on the test network.
{ self }:
{
  name = "picosnitch-remote";

  nodes.db =
    { pkgs, ... }:
    {
      services.postgresql = {
        enable = true;
        enableTCPIP = true;
        # The role owns its database; the remote writer itself only needs INSERT and
        # SELECT (the GRANTs are in the README of issue 7).
        initialScript = pkgs.writeText "picosnitch-init.sql" ''
          CREATE ROLE picosnitch LOGIN PASSWORD 'test-password';
          CREATE DATABASE picosnitch OWNER picosnitch;
        '';
        authentication = ''
          host picosnitch picosnitch 0.0.0.0/0 scram-sha-256
        '';
      };
      networking.firewall.allowedTCPPorts = [ 5432 ];
    };

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
          database.write_limit_seconds = 1;
          database.remote = {
            host = "db";
            tls = "disable";
          };
        };
        remoteDatabase.passwordFile = "/etc/picosnitch-test/db-password";
      };
      # A copied file (mode set), not a store symlink; a real system keeps it out of
      # the store (sops-nix, agenix, or a file put there by hand).
      environment.etc."picosnitch-test/db-password" = {
        text = "test-password";
        mode = "0400";
      };

      environment.systemPackages = [
        pkgs.curl
        pkgs.sqlite
      ];
    };

  testScript = builtins.readFile ./remote.py;
}
