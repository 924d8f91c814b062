"""The picosnitch daemon as the benchmark runs it: the default configuration (the user's
experience), except where the history and the runtime directory go, on a fresh database
each time; its status file; its loss counters; the rows it wrote."""
import grp
import json
import os
import pwd
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from .proc import Background, CommandFailed, cpu_seconds, pss_kib, run, wait_until

# Kernel counters that are not a loss: a path longer than the kernel copies is still
# attributed (the primary reads the rest from /proc).
NOT_A_LOSS = {"path_truncated", "names_truncated", "names_netns_unknown"}

# The roles run as the service user, as installed; on a machine without the account
# (`useradd --system --user-group picosnitch`) a number, which needs none.
SERVICE_UID = 61338

# [database] write_limit_seconds: 10 is the default, what users run. The CI smoke run
# sets a shorter one (main.py): its numbers are not figures, and each wait for the
# history to settle is a few write periods.
WRITE_PERIOD = 10

# Rows the primary may still hold for the writer when the history counts as settled.
SETTLED_QUEUE = 1000


def service_user():
    try:
        pwd.getpwnam("picosnitch")
        grp.getgrnam("picosnitch")
        return "picosnitch"
    except KeyError:
        return str(SERVICE_UID)


class Daemon:
    def __init__(self, binary, workdir, extra_config=""):
        self.binary = str(binary)
        self.dir = Path(tempfile.mkdtemp(prefix="picosnitch-bench-", dir=workdir))
        # The roles, as the service user, reach the history and runtime directories
        # through it (they own those; the supervisor makes them).
        os.chmod(self.dir, 0o755)
        self.db = self.dir / "db" / "picosnitch.db"
        self.config = self.dir / "config.toml"
        self.status_path = self.dir / "run" / "status.json"
        extra = extra_config.strip()
        user = service_user()
        self.period = WRITE_PERIOD
        period = f"write_limit_seconds = {self.period}\n" if self.period != 10 else ""
        self.config.write_text(f'[database]\npath = "{self.db}"\n{period}[data]\nruntime_dir = "{self.dir / "run"}"\n'
                               f'owner = "{user}"\ngroup = "{user}"\n'
                               + (extra + "\n" if extra else ""))
        self.proc = None

    def start(self, timeout=60, env=None):
        """Starts it and waits until its status says ready; `env` replaces the environment."""
        self.proc = Background([self.binary, "daemon", "--config", self.config], self.dir / "daemon.out",
                               self.dir / "daemon.log", env=env)
        try:
            wait_until("the daemon to report ready", lambda: self.exited_early() or self.status().get("ready"), timeout)
        except CommandFailed:
            self.stop()
            raise
        if self.proc.exited():
            raise CommandFailed(f"picosnitch daemon {self.proc.exited()}")
        return self

    def exited_early(self):
        if self.proc and self.proc.exited():
            raise CommandFailed(f"picosnitch daemon {self.proc.exited()}")
        return False

    def status(self):
        try:
            return json.loads(self.status_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def status_cli(self):
        """What `picosnitch status --json` says: the command users read losses from."""
        return json.loads(run([self.binary, "status", "--json", "--config", self.config], timeout=30).stdout)

    def pids(self):
        st = self.status()
        return [self.proc.pid] + [r["pid"] for r in st.get("roles", []) if r.get("pid")]

    def cpu_seconds(self):
        return sum(cpu_seconds(p) for p in self.pids())

    def pss_kib(self):
        return sum(pss_kib(p) for p in self.pids())

    def stop(self):
        if self.proc:
            code = self.proc.stop(grace=60)
            self.proc = None
            return code
        return None

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- what it recorded ---------------------------------------------------------
    def connect(self):
        return sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)

    def rows(self, exe_path):
        """Every row of one executable, with its side-table values."""
        if not self.db.exists():
            return []
        sql = """SELECT c.contime, c.send, c.recv, c.events, e.exe, e.name, e.sha256, p.exe, c.family, c.protocol,
                        c.lport, c.rport, la.addr, ra.addr, c.netns
                 FROM connections c JOIN executables e ON e.id = c.exe_id JOIN executables p ON p.id = c.pexe_id
                 JOIN addresses la ON la.id = c.laddr_id JOIN addresses ra ON ra.id = c.raddr_id
                 WHERE e.exe = ?"""
        keys = ["contime", "send", "recv", "events", "exe", "name", "sha256", "pexe", "family", "protocol",
                "lport", "rport", "laddr", "raddr", "netns"]
        with self.connect() as c:
            return [dict(zip(keys, r)) for r in c.execute(sql, (str(exe_path),))]

    def totals_by_exe(self, prefix):
        """(events, send, recv) per executable path starting with `prefix`."""
        if not self.db.exists():
            return {}
        sql = """SELECT e.exe, SUM(c.events), SUM(c.send), SUM(c.recv) FROM connections c
                 JOIN executables e ON e.id = c.exe_id WHERE e.exe LIKE ? GROUP BY e.exe"""
        with self.connect() as c:
            return {r[0]: {"events": r[1], "send": r[2], "recv": r[3]} for r in c.execute(sql, (prefix + "%",))}

    def row_count(self):
        if not self.db.exists():
            return 0
        with self.connect() as c:
            return c.execute("SELECT COUNT(*) FROM connections").fetchone()[0]

    def fingerprint(self):
        """Rows, flows and bytes of the benchmark's own executables (all under its working
        directory) in the history: what changes while any of them is still being written.
        The rest of the machine's traffic is recorded too and never stops changing."""
        if not self.db.exists():
            return (0, 0, 0)
        prefix = str(self.dir.parent) + "/"
        with self.connect() as c:
            return tuple(c.execute("SELECT COUNT(*), COALESCE(SUM(c.events), 0), COALESCE(SUM(c.send + c.recv), 0) "
                                   "FROM connections c JOIN executables e ON e.id = c.exe_id "
                                   "WHERE substr(e.exe, 1, ?) = ?", (len(prefix), prefix)).fetchone())

    def settle(self, timeout=90, periods=12):
        """Waits until everything seen so far is in the database: the benchmark's rows in
        the history unchanged over a whole write period (under load the capture runs
        behind the traffic, and what it reads late goes into a later period). Returns
        the seconds from the call until the history stopped changing."""
        t0 = time.monotonic()
        self._quiet(timeout)
        last = self.fingerprint()
        for _ in range(periods):
            self._quiet(timeout)
            now = self.fingerprint()
            # Nothing of ours yet is not settled: the daemon may be that far behind. Nor
            # is a history that stood still while the primary still held a backlog for
            # the writer (measured: unchanged over a period at 10,000 conn/s with 33,000
            # rows still queued, dropped later when the queue filled). The machine's
            # other traffic keeps a few rows queued at any time, never thousands.
            queued = (self.status().get("primary") or {}).get("rows_queued", 0)
            if now == last and now[0] > 0 and queued < SETTLED_QUEUE:
                return round(time.monotonic() - t0, 1)
            last = now
        return None  # still changing: the caller reports what is there as missing

    def _quiet(self, timeout):
        time.sleep(self.period + 1)
        # A status written before the wait says nothing about what came after it (on a
        # loaded machine the file can lag by seconds): only a newer one counts.
        since = time.time()

        # Only freshness: the queue counters are the whole machine's, and other programs'
        # traffic can keep them above zero forever; the caller compares the benchmark's
        # own rows over a whole period instead.
        wait_until("the daemon to report after the wait", lambda: self.status().get("updated_unix", 0) > since,
                   timeout, interval=0.5)


def losses(status):
    """Every counter in the status that means an event, a byte or a row was lost."""
    out = {}
    m = status.get("monitor") or {}
    for k, v in (m.get("kernel") or {}).items():
        if k not in NOT_A_LOSS:
            out[f"kernel.{k}"] = v
    out["monitor.records_undecodable"] = m.get("records_undecodable", 0)
    out["monitor.counter_read_failures"] = m.get("counter_read_failures", 0)
    p = status.get("primary") or {}
    out["primary.rows_dropped_queue_full"] = p.get("rows_dropped_queue_full", 0)
    # What those rows held: the flows (connections opened) among the flows missing.
    out["primary.events_dropped_queue_full"] = p.get("events_dropped_queue_full", 0)
    out["primary.bytes_unattributed"] = p.get("bytes_unattributed", 0)
    return out


def loss_delta(before, after):
    a, b = losses(after), losses(before)
    return {k: a[k] - b.get(k, 0) for k in a}


def version(binary):
    return run([binary, "version"], timeout=30).stdout.strip()
