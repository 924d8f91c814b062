# Two local HTTP servers (ports 8080 and 8081) for the VMs' test traffic: the tests
# need connections to somewhere, and the VMs have no internet.
{ pkgs, ... }:
let
  server = port: {
    wantedBy = [ "multi-user.target" ];
    serviceConfig = {
      ExecStart = "${pkgs.python3}/bin/python3 -m http.server --bind 127.0.0.1 --directory /var/empty ${toString port}";
      DynamicUser = true;
    };
  };
in
{
  systemd.services.http-8080 = server 8080;
  systemd.services.http-8081 = server 8081;
}
