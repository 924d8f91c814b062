# Test script for service.nix, run by the NixOS test driver (node: `machine`).
import json
import shlex
import tomllib

DB = "/var/lib/picosnitch/picosnitch.db"


def as_user(user: str, command: str) -> str:
    return machine.succeed(f"su -l {user} -c {shlex.quote(command)}")


def sql(query: str) -> str:
    return machine.succeed(f"sqlite3 -readonly {DB} {shlex.quote(query)}")


def wait_for_rows(query: str) -> str:
    """Polls until `query` returns a row: the writer batches traffic every second."""
    return machine.wait_until_succeeds(f"sqlite3 -readonly {DB} {shlex.quote(query)} | grep .", timeout=60)


def unit_property(name: str) -> str:
    return machine.succeed(f"systemctl show --property={name} --value picosnitch.service").strip()


def now() -> int:
    return int(machine.succeed("date +%s"))


def curl(user: str, port: int) -> None:
    as_user(user, f"curl --silent --show-error --output /dev/null http://127.0.0.1:{port}/")


def assert_attached(byte_hooks: list[str]) -> None:
    """The cgroup hooks on the root cgroup, and `byte_hooks` (tracing programs) linked."""
    # Program names are cut to 15 characters by the kernel (BPF_OBJ_NAME_LEN).
    loaded = {p.get("name", "")[:15]: p["id"] for p in json.loads(machine.succeed("bpftool --json prog show"))}
    for name in ["connect4", "connect6"] + byte_hooks:
        assert name[:15] in loaded, f"{name} is not loaded; loaded: {sorted(loaded)}"
    cgroup = json.loads(machine.succeed("bpftool --json cgroup show /sys/fs/cgroup"))
    attached = {(c.get("attach_type"), c.get("name")) for c in cgroup}
    for pair in [("cgroup_inet4_connect", "connect4"), ("cgroup_inet6_connect", "connect6")]:
        assert pair in attached, f"{pair} is not attached to the root cgroup: {attached}"
    linked = {link.get("prog_id") for link in json.loads(machine.succeed("bpftool --json link show"))}
    for name in byte_hooks:
        assert loaded[name[:15]] in linked, f"{name} is loaded but not attached"


def switch_to(specialisation: str) -> None:
    """Switches to a specialisation and checks that picosnitch was restarted."""
    invocation = unit_property("InvocationID")
    machine.succeed(f"/run/booted-system/specialisation/{specialisation}/bin/switch-to-configuration test")
    machine.wait_for_unit("picosnitch.service")
    assert unit_property("InvocationID") != invocation, f"switching to {specialisation} did not restart picosnitch"


start_all()
machine.wait_for_unit("picosnitch.service")
for port in (8080, 8081):
    machine.wait_for_unit(f"http-{port}.service")
    machine.wait_for_open_port(port)

with subtest("Type=notify: the unit is active, so the daemon reported ready"):
    assert unit_property("ActiveState") == "active", unit_property("ActiveState")

with subtest("bpftool: our programs are loaded and attached (hook_set tracepoint)"):
    assert_attached(["sock_send_length", "sock_recv_length"])

with subtest("curl run by a normal user gives a row with its exe, sha256, uid and time"):
    curl_exe = as_user("alice", 'readlink -f "$(command -v curl)"').strip()
    curl_sha256 = machine.succeed(f"sha256sum {curl_exe}").split()[0]
    alice_uid = as_user("alice", "id -u").strip()
    before = now()
    curl("alice", 8080)
    rows = wait_for_rows(
        "SELECT e.exe, e.sha256, c.uid, c.contime FROM connections c "
        "JOIN executables e ON e.id = c.exe_id "
        f"WHERE c.rport = 8080 AND e.exe = '{curl_exe}'"
    )
    after = now()
    exe, sha256, uid, contime = rows.splitlines()[0].split("|")
    assert exe == curl_exe, exe
    assert sha256 == curl_sha256, f"sha256 {sha256} != {curl_sha256} (sha256sum {curl_exe})"
    assert uid == alice_uid, f"uid {uid} != alice's {alice_uid}"
    assert before - 1 <= int(contime) <= after, f"contime {contime} is not unix seconds in [{before}, {after}]"

with subtest("the picosnitch group reads the history and the status, others do not"):
    owner = machine.succeed(f"stat -c %U:%G {DB}").strip()
    assert owner == "picosnitch:picosnitch", f"{DB} belongs to {owner}"
    as_user("alice", f"sqlite3 -readonly {DB} 'SELECT count(*) FROM connections'")
    as_user("alice", "picosnitch status")
    machine.fail(f"su -l bob -c {shlex.quote(f'sqlite3 -readonly {DB} .tables')}")

with subtest("the daemon logs to the journal"):
    machine.succeed("journalctl _SYSTEMD_UNIT=picosnitch.service --no-pager --output=cat | grep -q .")

with subtest("a settings change takes effect with the restart that switching causes"):
    switch_to("ignore-port")
    config = tomllib.loads(machine.succeed("cat /etc/picosnitch/config.toml"))
    assert config["log"]["ignore_ports"] == [8080], config["log"]
    since = now()
    curl("alice", 8080)
    curl("alice", 8081)
    # Port 8081 is still recorded, so the writer has flushed past both connections...
    wait_for_rows(f"SELECT 1 FROM connections WHERE rport = 8081 AND contime >= {since}")
    # ...and port 8080 is not any more.
    ignored = sql(f"SELECT count(*) FROM connections WHERE rport = 8080 AND contime >= {since}").strip()
    assert ignored == "0", f"{ignored} rows for the ignored port 8080"

with subtest("hook_set fentry: the fexit programs are attached and traffic is still recorded"):
    switch_to("fentry")
    assert_attached(["fexit_sock_sendmsg", "fexit_sock_recvmsg"])
    since = now()
    curl("alice", 8080)
    wait_for_rows(f"SELECT 1 FROM connections WHERE rport = 8080 AND contime >= {since} AND send > 0 AND recv > 0")

with subtest("retention: rows older than retention_days are pruned at start"):
    machine.succeed("systemctl stop picosnitch.service")
    t = now()
    old, recent = t - 31 * 86400, t - 29 * 86400
    columns = "contime, send, recv, events, exe_id, pexe_id, gpexe_id, uid, family, protocol, lport, rport, laddr_id, raddr_id, domain_id, netns"
    values = ", ".join(f"({c}, 1, 1, 1, 0, 0, 0, 0, 2, 6, 40000, 9, 0, 0, 0, 0)" for c in (old, recent))
    insert = f"INSERT INTO connections ({columns}) VALUES {values}"
    # As the service user, so that no root-owned -wal/-shm file is left behind.
    machine.succeed(f"runuser -u picosnitch -- sqlite3 {DB} {shlex.quote(insert)}")
    machine.succeed("systemctl start picosnitch.service")
    machine.wait_until_succeeds(
        f"test \"$(sqlite3 -readonly {DB} 'SELECT count(*) FROM connections WHERE contime = {old}')\" = 0",
        timeout=60,
    )
    kept = sql(f"SELECT count(*) FROM connections WHERE contime = {recent}").strip()
    assert kept == "1", f"the 29-day-old row is gone too ({kept} left)"
