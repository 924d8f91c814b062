"""Footprint: CPU and memory (PSS: shared pages split among their sharers) of all of
picosnitch's processes together, idle and under a steady rate of new connections, plus
the time its BPF programs run in the kernel (charged to the processes that make the
traffic, not to the daemon). Formerly scripts/bench-footprint.py."""
import os
import threading
import time
from pathlib import Path

from ..daemon import Daemon, loss_delta
from ..load import Loopback
from ..markdown import num, table

STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def bpf_prog_fds(pids):
    """(pid, fd) of every BPF program the daemon's processes hold."""
    out = []
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf-prog":
                        out.append((pid, fd))
                except OSError:
                    continue
        except OSError:
            continue
    return out


def bpf_time(fds):
    """Total run time (ns) and runs of the programs, from their fdinfo (counted while
    kernel.bpf_stats_enabled is 1). Each program once, however many fds point to it."""
    seen = {}
    for pid, fd in fds:
        try:
            info = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines()
                        if ":" in line)
        except OSError:
            continue
        prog_id = info.get("prog_id", "").strip()
        if prog_id:
            seen[prog_id] = (int(info.get("run_time_ns", "0")), int(info.get("run_cnt", "0")))
    return sum(v[0] for v in seen.values()), sum(v[1] for v in seen.values()), len(seen)


class PssSampler:
    """Largest PSS of all the daemon's processes, sampled every half second."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.max_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            self.max_kib = max(self.max_kib, self.daemon.pss_kib())
            self._stop.wait(0.5)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.max_kib = max(self.max_kib, self.daemon.pss_kib())


def phase(daemon, fds, name, seconds, work=None):
    before_status = daemon.status()
    cpu0, bpf0, t0 = daemon.cpu_seconds(), bpf_time(fds), time.monotonic()
    with PssSampler(daemon) as pss:
        made = work() if work else time.sleep(seconds)
    elapsed = time.monotonic() - t0
    cpu1, bpf1 = daemon.cpu_seconds(), bpf_time(fds)
    return {"phase": name, "seconds": elapsed, "cpu_percent_of_one_core": 100 * (cpu1 - cpu0) / elapsed,
            "pss_kib_end": daemon.pss_kib(), "pss_kib_max": pss.max_kib,
            "bpf_ms_per_s": (bpf1[0] - bpf0[0]) / elapsed / 1e6, "bpf_runs_per_s": (bpf1[1] - bpf0[1]) / elapsed,
            "bpf_programs": bpf1[2], "achieved_rate": made.achieved if made else None,
            "losses": {k: v for k, v in loss_delta(before_status, daemon.status()).items() if v}}


def run(env, binaries, lab, rates, smoke, workdir):
    seconds = 3 if smoke else 20
    wl = Loopback(binaries.traffic, workdir / "footprint", lab.exec_prefix(lab.host), "f")
    stats_before = STATS.read_text().strip()
    STATS.write_text("1")
    daemon = Daemon(binaries.picosnitch, workdir).start()
    phases = []
    try:
        time.sleep(2)
        fds = bpf_prog_fds(daemon.pids())
        hook_set = (daemon.status().get("monitor") or {}).get("hook_set")
        env.log("footprint: idle")
        phases.append(phase(daemon, fds, "idle", seconds))
        wl.rate("pfw", 200, 2)  # warm-up: hashes the generator once, fills caches
        for rate in rates:
            env.log(f"footprint: {rate:g} new connections/s")
            phases.append(phase(daemon, fds, f"{rate:g} new connections/s", seconds,
                                lambda: wl.rate(f"pf{int(rate)}", rate, seconds)))
            phases[-1]["requested_rate"] = rate
    finally:
        daemon.stop()
        STATS.write_text(stats_before)
    return {"seconds_per_phase": seconds, "hook_set": hook_set, "phases": phases,
            "config": f"write_limit_seconds = {daemon.period}" + (" (the default)" if daemon.period == 10 else "")}


def render(result):
    rows = [[p["phase"], num(p.get("achieved_rate")), f"{p['cpu_percent_of_one_core']:.2f}",
             f"{p['pss_kib_max'] / 1024:.1f} MiB", f"{p['bpf_ms_per_s']:.2f}", num(p["bpf_runs_per_s"]),
             ", ".join(f"{k} {v}" for k, v in p["losses"].items()) or "none"] for p in result["phases"]]
    return "\n".join([
        f"Default configuration, hook set {result['hook_set']}, {result['seconds_per_phase']} s per phase on "
        "loopback; every connection sends and answers 100 bytes (two flows). CPU is the supervisor and all "
        "roles together; PSS the largest sum seen during the phase.",
        "",
        table(["phase", "made (conn/s)", "daemon CPU (% of one core)", "PSS, all processes", "BPF in kernel (ms/s)",
               "BPF runs/s", "losses"], rows),
    ])


def targets(result):
    out = []
    worst = max((p["pss_kib_max"] for p in result["phases"]), default=None)
    if worst is not None:
        out.append(("PSS of all roles under 30 MB", f"{worst / 1024:.1f} MiB at most ({worst * 1024 / 1e6:.1f} MB)",
                    worst * 1024 < 30e6))
    at1000 = [p for p in result["phases"] if p.get("requested_rate") == 1000]
    if at1000:
        cpu = at1000[0]["cpu_percent_of_one_core"]
        out.append(("CPU under 2% of one core at 1,000 new connections/s", f"{cpu:.2f}%", cpu < 2))
    else:
        out.append(("CPU under 2% of one core at 1,000 new connections/s", "not measured", None))
    return out
