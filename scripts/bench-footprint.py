#!/usr/bin/env python3
"""Footprint of picosnitch: CPU and memory (PSS) of all its processes together, idle
and under a steady rate of new TCP connections, plus the time its BPF programs spend
in the kernel (charged to the processes that make the traffic, not to the daemon).

Runs the release binaries with the default configuration (write_limit_seconds = 10)
on a temporary database, as root. Prints a markdown table and writes JSON beside it.

    sudo scripts/bench-footprint.py [--seconds 20] [--rates 1000] [--out target/bench]
"""
import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid):
    """utime + stime of one process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def pss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def daemon_pids(status_path, supervisor):
    st = json.loads(Path(status_path).read_text())
    return [supervisor] + [r["pid"] for r in st["roles"] if r.get("pid")]


def bpf_stats():
    """Total run time (ns) and runs of our BPF programs, from bpftool."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    ns = runs = 0
    for p in json.loads(out):
        if p.get("run_time_ns") is not None and p.get("name", "") in OUR_PROGS:
            ns += p["run_time_ns"]
            runs += p.get("run_cnt", 0)
    return ns, runs


# bpftool shows names cut to 15 characters.
OUR_PROGS = {n[:15] for n in [
    "sock_send_length", "sock_recv_length", "connect4", "connect6", "sendmsg4", "sendmsg6",
    "recvmsg4", "recvmsg6", "skb_egress", "sock_release", "inet_sock_set_state",
    "tcp_destroy_sock", "sched_process_exec", "sched_process_exec_unrolled",
]}


def wait_ready(status_path, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if json.loads(Path(status_path).read_text()).get("ready"):
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.1)
    raise SystemExit("the daemon did not become ready")


def measure(pids, seconds, during=None):
    """CPU % of one core (sum over pids) over `seconds`, and BPF time per second."""
    before = sum(cpu_seconds(p) for p in pids)
    bpf0 = bpf_stats()
    t0 = time.monotonic()
    if during:
        during()
    else:
        time.sleep(seconds)
    elapsed = time.monotonic() - t0
    after = sum(cpu_seconds(p) for p in pids)
    bpf1 = bpf_stats()
    return {
        "cpu_percent_of_one_core": 100.0 * (after - before) / elapsed,
        "bpf_ns_per_second": (bpf1[0] - bpf0[0]) / elapsed,
        "bpf_runs_per_second": (bpf1[1] - bpf0[1]) / elapsed,
        "seconds": elapsed,
    }


def load(traffic, rate, seconds):
    """Runs a server and a client making `rate` connections per second."""
    n = int(rate * seconds)
    srv = subprocess.Popen([traffic, "tcp-server", "--accepts", str(n), "--send", "100"], stdout=subprocess.PIPE, text=True)
    port = json.loads(srv.stdout.readline())["listening"]
    cli = subprocess.run([traffic, "tcp-client", "--to", f"127.0.0.1:{port}", "--send", "100", "--repeat", str(n),
                          "--rate", str(rate)], capture_output=True, text=True)
    srv.wait(timeout=60)
    if cli.returncode != 0:
        raise SystemExit(f"load client failed: {cli.stderr}")
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rates", default="1000", help="comma-separated new connections per second")
    ap.add_argument("--out", default=str(ROOT / "target/bench"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the daemon loads BPF programs")
    for tool in ["bpftool"]:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run scripts/install-deps.sh")
    subprocess.run(["cargo", "build", "--release", "-p", "picosnitch", "-p", "picosnitch-traffic"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    binary, traffic = str(target / "picosnitch"), str(target / "picosnitch-traffic")

    stats_before = Path("/proc/sys/kernel/bpf_stats_enabled").read_text().strip()
    Path("/proc/sys/kernel/bpf_stats_enabled").write_text("1")
    tmp = tempfile.mkdtemp(prefix="picosnitch-bench-")
    cfg = Path(tmp) / "config.toml"
    cfg.write_text(f'[database]\npath = "{tmp}/picosnitch.db"\n[data]\nruntime_dir = "{tmp}/run"\n')
    status_path = f"{tmp}/run/status.json"
    daemon = subprocess.Popen([binary, "daemon", "--config", str(cfg)], stderr=open(f"{tmp}/daemon.log", "w"))
    results = {"machine": {}, "phases": []}
    try:
        wait_ready(status_path)
        time.sleep(2)
        pids = daemon_pids(status_path, daemon.pid)
        results["machine"] = {
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "hook_set": json.loads(Path(status_path).read_text())["monitor"]["hook_set"],
            "picosnitch": subprocess.run([binary, "version"], capture_output=True, text=True).stdout.strip(),
        }
        idle = measure(pids, args.seconds)
        idle.update(phase="idle", pss_kib=sum(pss_kib(p) for p in pids))
        results["phases"].append(idle)
        load(traffic, 200, 2)  # warm-up: hashes the generator once, fills caches
        for rate in [float(r) for r in args.rates.split(",")]:
            made = {}
            m = measure(pids, args.seconds, during=lambda: made.setdefault("n", load(traffic, rate, args.seconds)))
            m.update(phase=f"{rate:g} new connections/s", pss_kib=sum(pss_kib(p) for p in pids), connections=made["n"])
            m["achieved_rate"] = made["n"] / m["seconds"]
            results["phases"].append(m)
        st = json.loads(Path(status_path).read_text())
        results["losses"] = {k: v for k, v in st["monitor"]["kernel"].items() if k != "path_truncated"}
        results["rows_dropped"] = st["primary"]["rows_dropped_queue_full"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        Path("/proc/sys/kernel/bpf_stats_enabled").write_text(stats_before)
        shutil.rmtree(tmp, ignore_errors=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "footprint.json").write_text(json.dumps(results, indent=2))
    m = results["machine"]
    lines = [
        f"Footprint of {m['picosnitch']} on Linux {m['kernel']} ({m['cpus']} CPUs), hook set {m['hook_set']}, "
        f"default config (write_limit_seconds = 10).",
        "",
        "| phase | daemon CPU (% of one core) | PSS, all processes | BPF in kernel (ms/s) | BPF runs/s |",
        "|---|---|---|---|---|",
    ]
    for p in results["phases"]:
        lines.append(f"| {p['phase']} | {p['cpu_percent_of_one_core']:.2f} | {p['pss_kib'] / 1024:.1f} MiB | "
                     f"{p['bpf_ns_per_second'] / 1e6:.2f} | {p['bpf_runs_per_second']:.0f} |")
    lines.append("")
    lines.append(f"Kernel losses during the run: {results['losses']}; rows dropped: {results['rows_dropped']}.")
    text = "\n".join(lines)
    (out / "footprint.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
