"""Sandbox: what confinement costs (issue 3). In one run, the daemon is started
alternately confined (as always) and unconfined (PICOSNITCH_UNCONFINED_FOR_BENCHMARK=1:
every role skips its user change, capabilities, no_new_privs, Landlock and seccomp),
on a fresh history each time; per round the order flips (confined first, then
unconfined first), so a drift of the machine's load cancels out. Measured per daemon:

- start-up: from starting `picosnitch daemon` to its READY=1 on the sd_notify socket
  (what systemd waits for: the BPF programs are attached and every role is up);
- per-event cost: CPU time of all the daemon's processes per 1,000 connections at a
  steady rate (each connection sends and answers 100 bytes: two flows), from the start
  of the load until one write period after it, so the rows' writing is included.

Reported: the ratio confined/unconfined of each round, then their median and spread."""
import os
import socket
import threading
import time

from ..daemon import Daemon
from ..load import Loopback
from ..markdown import num, table
from ..proc import CommandFailed
from ..stats import median, ratio, spread

UNCONFINED_ENV = "PICOSNITCH_UNCONFINED_FOR_BENCHMARK"


class ReadyListener:
    """The sd_notify socket the daemon is given; notes when READY=1 arrives."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.ready_at = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.is_set() and self.ready_at is None:
            try:
                msg = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if b"READY=1" in msg.split(b"\n"):
                self.ready_at = time.monotonic()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def confinement_of(daemon):
    """What the running daemon's roles really are, from /proc: (uids, seccomp modes),
    so the report shows each mode was what it claims."""
    uids, seccomp = set(), set()
    for r in daemon.status().get("roles", []):
        pid = r.get("pid")
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except (OSError, TypeError):
            continue
        uids.add(fields.get("Uid", "").split()[0] if fields.get("Uid") else "?")
        seccomp.add(fields.get("Seccomp", "?").strip())
    return sorted(uids), sorted(seccomp)


def one_daemon(env, binaries, wl, workdir, mode, rate, seconds, tag):
    daemon = Daemon(binaries.picosnitch, workdir)
    listener = ReadyListener(daemon.dir / "notify.sock")
    child_env = dict(os.environ, NOTIFY_SOCKET=str(listener.path))
    child_env.pop(UNCONFINED_ENV, None)
    if mode == "unconfined":
        child_env[UNCONFINED_ENV] = "1"
    try:
        t0 = time.monotonic()
        daemon.start(env=child_env)
        deadline = time.monotonic() + 30
        while listener.ready_at is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if listener.ready_at is None:
            raise CommandFailed("the daemon's status says ready but no READY=1 reached the notify socket in 30 s")
        startup = listener.ready_at - t0
        said = bool(daemon.status().get("unconfined"))
        if said != (mode == "unconfined"):
            raise CommandFailed(f"a daemon started {mode} reports unconfined={said}")
        uids, seccomp = confinement_of(daemon)
        # Warm-up: the generators' executables are hashed once, caches filled.
        wl.rate(f"sw{tag}", 200, 2)
        cpu0 = daemon.cpu_seconds()
        made = wl.rate(f"sb{tag}", rate, seconds)
        # The rows of the load are written at the next write period.
        time.sleep(daemon.period + 1)
        cpu = daemon.cpu_seconds() - cpu0
        per_1000 = cpu / made.connections * 1000 if made.connections else None
        return {"mode": mode, "startup_s": startup, "cpu_s": cpu, "connections": made.connections,
                "achieved_rate": made.achieved, "cpu_ms_per_1000_connections": per_1000 * 1000 if per_1000 else None,
                "role_uids": uids, "role_seccomp_modes": seccomp}
    finally:
        daemon.stop()
        listener.close()
        daemon.remove()


def run(env, binaries, lab, rounds, smoke, workdir):
    rate, seconds = (200.0, 3) if smoke else (1000.0, 20)
    wl = Loopback(binaries.traffic, workdir / "sandbox", lab.exec_prefix(lab.host), "s")
    runs = []
    for r in range(1, rounds + 1):
        order = ["confined", "unconfined"] if r % 2 else ["unconfined", "confined"]
        pair = {}
        for mode in order:
            env.log(f"sandbox: round {r}/{rounds}, {mode}")
            pair[mode] = one_daemon(env, binaries, wl, workdir, mode, rate, seconds, f"{r}{mode[0]}")
        runs.append({"round": r, "order": order, **pair,
                     "startup_ratio": ratio(pair["confined"]["startup_s"], pair["unconfined"]["startup_s"]),
                     "cpu_ratio": ratio(pair["confined"]["cpu_ms_per_1000_connections"],
                                        pair["unconfined"]["cpu_ms_per_1000_connections"])})
    summary = {}
    for key, ratio_key in [("startup_s", "startup_ratio"), ("cpu_ms_per_1000_connections", "cpu_ratio")]:
        summary[key] = {
            "confined_median": median([x["confined"][key] for x in runs]),
            "unconfined_median": median([x["unconfined"][key] for x in runs]),
            "ratio_median": median([x[ratio_key] for x in runs]),
            "ratio_spread": spread([x[ratio_key] for x in runs]),
        }
    return {"rounds": rounds, "rate": rate, "load_seconds": seconds, "runs": runs, "summary": summary}


def fmt_ratio(s):
    if s["ratio_median"] is None:
        return "–", "–"
    lo, hi = s["ratio_spread"]
    return f"{s['ratio_median']:.3f}", f"{lo:.3f} – {hi:.3f}"


def render(result):
    s = result["summary"]
    st, cpu = s["startup_s"], s["cpu_ms_per_1000_connections"]
    rows = [
        ["start-up to READY=1 (s)", f"{st['confined_median']:.3f}", f"{st['unconfined_median']:.3f}", *fmt_ratio(st)],
        ["daemon CPU per 1,000 connections (ms)", num(cpu["confined_median"], 1), num(cpu["unconfined_median"], 1),
         *fmt_ratio(cpu)],
    ]
    per_round = [[x["round"], " then ".join(x["order"]), f"{x['confined']['startup_s']:.3f}",
                  f"{x['unconfined']['startup_s']:.3f}", num(x["confined"]["cpu_ms_per_1000_connections"], 1),
                  num(x["unconfined"]["cpu_ms_per_1000_connections"], 1),
                  num(x["confined"]["achieved_rate"]), num(x["unconfined"]["achieved_rate"])] for x in result["runs"]]
    first = result["runs"][0] if result["runs"] else None
    checked = ""
    if first:
        checked = (f"Checked in /proc each time: confined roles ran as uid {', '.join(first['confined']['role_uids'])} "
                   f"with seccomp mode {', '.join(first['confined']['role_seccomp_modes'])}; unconfined ones as uid "
                   f"{', '.join(first['unconfined']['role_uids'])} with seccomp mode "
                   f"{', '.join(first['unconfined']['role_seccomp_modes'])}.")
    return "\n".join([
        f"The default configuration in {result['rounds']} round(s), each starting one confined and one unconfined "
        f"(`PICOSNITCH_UNCONFINED_FOR_BENCHMARK=1`) daemon in alternating order, each on a fresh history; load "
        f"{num(result['rate'])} new connections/s for {result['load_seconds']} s on loopback (each sends and answers "
        "100 bytes), CPU counted from the load's start until one write period after it. Ratios are "
        "confined/unconfined within each round; the median and the spread (lowest – highest) over the rounds. "
        + checked,
        "",
        table(["measure", "confined (median)", "unconfined (median)", "ratio confined/unconfined (median)",
               "ratio spread"], rows),
        "",
        table(["round", "order", "start-up confined (s)", "start-up unconfined (s)", "CPU/1,000 conn confined (ms)",
               "CPU/1,000 conn unconfined (ms)", "rate confined", "rate unconfined"], per_round),
    ])
