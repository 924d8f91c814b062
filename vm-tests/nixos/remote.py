# Test script for remote.nix, run by the NixOS test driver (nodes: `db`, `machine`).
import shlex
import time
import tomllib

DB = "/var/lib/picosnitch/picosnitch.db"


def remote_count(query: str) -> int:
    """Rows `query` counts on the PostgreSQL node; 0 while the tables do not exist yet."""
    status, out = db.execute(f"runuser -u postgres -- psql --dbname=picosnitch --tuples-only --no-align --command={shlex.quote(query)}")
    return int(out.strip()) if status == 0 and out.strip().isdigit() else 0


start_all()
db.wait_for_unit("postgresql.service")
db.wait_for_open_port(5432)
machine.wait_for_unit("picosnitch.service")
machine.wait_for_unit("http-8080.service")
machine.wait_for_open_port(8080)

with subtest("the password reaches the daemon as a credential, not through the store"):
    text = machine.succeed("cat /etc/picosnitch/config.toml")
    password_file = tomllib.loads(text)["database"]["remote"]["password_file"]
    assert password_file == "/run/credentials/picosnitch.service/remote-database-password", password_file
    assert "test-password" not in text, "the password itself is in the config"

with subtest("curl's connection arrives in the remote database"):
    curl_exe = machine.succeed('readlink -f "$(command -v curl)"').strip()
    curl_sha256 = machine.succeed(f"sha256sum {curl_exe}").split()[0]
    machine.succeed("curl --silent --show-error --output /dev/null http://127.0.0.1:8080/")
    query = (
        "SELECT count(*) FROM connections c JOIN executables e ON e.id = c.exe_id "
        f"WHERE c.rport = 8080 AND e.exe = '{curl_exe}' AND e.sha256 = '{curl_sha256}'"
    )
    deadline = time.monotonic() + 120
    while remote_count(query) < 1:
        assert time.monotonic() < deadline, "no row for curl reached the remote database in 120 s"
        time.sleep(2)

with subtest("the remote has what the local database has for curl"):
    local = machine.succeed(f"sqlite3 -readonly {DB} {shlex.quote(query)}").strip()
    assert int(local) >= 1, "the local database has no row for curl"
    deadline = time.monotonic() + 60
    while remote_count(query) < int(local):
        assert time.monotonic() < deadline, f"remote has {remote_count(query)} rows for curl, local {local}"
        time.sleep(2)
