#!/usr/bin/env python3
"""Where flows go under overload, in a few minutes (as root, after `cargo build
--release -p picosnitch -p picosnitch-traffic`):

    sudo scripts/overload-repro.py --rates 10000,15000

One fresh release daemon; per step, client/server pairs of `picosnitch-traffic` in a
private network namespace make `rate` connections a second for `--seconds`, each
sending and answering 100 bytes (the benchmark's capacity load, bench/picobench/load.py).
Printed per step: the generators' own counts against the flows in the history; the
runs of each of the daemon's BPF programs (bpftool; needs kernel.bpf_stats_enabled=1);
the kernel's loss counters read directly from the map; when the announcements were lost,
with what the monitor, primary and writer were doing (/proc/PID/wchan); and the
daemon's status counters. The working directory (config, log, database) is kept.

The benchmark ran with a grandparent whose /proc/PID/exe nobody may read (the session's
PID 1); `setsid -f` gives this script's generators the same (it is re-parented to PID 1).
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=str(Path(__file__).resolve().parents[1] / "target" / "release"))
ap.add_argument("--rates", type=lambda x: [float(r) for r in x.split(",")], default=[10000])
ap.add_argument("--seconds", type=float, default=10)
ap.add_argument("--pairs", type=int, default=0, help="client/server pairs (default: one per 5,000/s, as the benchmark)")
ap.add_argument("--extra", default="", help="TOML appended to the config")
ap.add_argument("--settle", type=float, default=25, help="seconds to wait at least for the history to settle")
a = ap.parse_args()

work = Path(tempfile.mkdtemp(prefix="picosnitch-overload-"))
# The roles, as the service user, reach the history and runtime directories through it.
os.chmod(work, 0o755)
ns = f"ovl{os.getpid()}"
cfg = work / "config.toml"
db = work / "db" / "picosnitch.db"
cfg.write_text(f'[database]\npath = "{db}"\n[data]\nruntime_dir = "{work/"run"}"\nowner = "61338"\ngroup = "61338"\n{a.extra}\n')
gen = work / "gen"; gen.mkdir(); os.chmod(gen, 0o755)

# The `stats` map's slots (crates/picosnitch-bpf/src/events.rs, STAT_NAMES).
STATS = ["ringbuf_full_flow", "ringbuf_full_close", "ringbuf_full_exec", "flow_map_full", "path_truncated",
         "bytes_lost", "storage_open", "storage_peer", "storage_fin"]


def status():
    try: return json.loads((work / "run" / "status.json").read_text())
    except Exception: return {}

def cpu():
    out = {}
    for r in status().get("roles", []):
        try:
            f = open(f"/proc/{r['pid']}/stat").read().rsplit(")", 1)[1].split()
            out[r["role"]] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except Exception: pass
    return out

def bpf_ids(pids):
    progs, maps = set(), set()
    for pid in pids:
        try: fds = os.listdir(f"/proc/{pid}/fdinfo")
        except OSError: continue
        for fd in fds:
            try: t = open(f"/proc/{pid}/fdinfo/{fd}").read()
            except OSError: continue
            for k, v in re.findall(r"^(prog_id|map_id):\s*(\d+)", t, re.M):
                (progs if k == "prog_id" else maps).add(int(v))
    return progs, maps

def progs(pids):
    ids = bpf_ids(pids)[0]
    out = json.loads(subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True).stdout)
    r = {}
    for p in out:
        if p["id"] in ids:
            r[p.get("name", "?")] = (p.get("run_cnt", 0), p.get("recursion_misses", 0))
    return r

def stats_map(pids):
    out = json.loads(subprocess.run(["bpftool", "map", "show", "-j"], capture_output=True, text=True).stdout)
    for m in out:
        if m.get("name") == "stats" and m["id"] in bpf_ids(pids)[1]:
            d = json.loads(subprocess.run(["bpftool", "map", "dump", "id", str(m["id"]), "-j"], capture_output=True, text=True).stdout)
            def val(v): return int(v) if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little")
            return [sum(val(v["value"]) for v in e["values"]) if "values" in e else val(e["value"]) for e in d]
    return None

subprocess.run(["ip", "netns", "add", ns], check=True)
daemon = None
try:
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    log = open(work / "daemon.log", "w")
    daemon = subprocess.Popen([f"{a.bin}/picosnitch", "daemon", "--config", str(cfg)], stdout=log, stderr=log)
    t0 = time.time()
    while not status().get("ready"):
        if daemon.poll() is not None or time.time() - t0 > 60: sys.exit("daemon not ready")
        time.sleep(0.5)
    time.sleep(3)
    allpids = [daemon.pid] + [r["pid"] for r in status().get("roles", []) if r.get("pid")]
    pre = ["ip", "netns", "exec", ns]
    for i, rate in enumerate(a.rates):
        cli, srv = gen / f"ovlc{i}", gen / f"ovls{i}"
        shutil.copy2(f"{a.bin}/picosnitch-traffic", cli); shutil.copy2(f"{a.bin}/picosnitch-traffic", srv)
        p0 = progs(allpids); s0 = stats_map(allpids); st0 = status(); c0 = cpu()
        pairs = a.pairs or max(1, min(8, int(rate // 5000) + 1))
        n = int(rate * a.seconds / pairs)
        servers = []
        for _ in range(pairs):
            p = subprocess.Popen(pre + [str(srv), "tcp-server", "--accepts", str(n), "--send", "100"], stdout=subprocess.PIPE, text=True)
            port = json.loads(p.stdout.readline())["listening"]; servers.append((p, port))
        stop = threading.Event(); timeline = []
        rp = {r["role"]: r["pid"] for r in status().get("roles", [])}
        def sample():
            while not stop.is_set():
                sm = stats_map(allpids) or [0]
                w = {}
                for role in ("monitor", "primary", "writer"):
                    try:
                        w[role] = open(f"/proc/{rp[role]}/wchan").read() + ":" + open(f"/proc/{rp[role]}/stat").read().rsplit(")", 1)[1].split()[0]
                    except Exception: pass
                timeline.append((round(time.time() - t1, 2), sm[0], w))
                time.sleep(0.1)
        t1 = time.time()
        th = threading.Thread(target=sample); th.start()
        clients = [subprocess.Popen(pre + [str(cli), "tcp-client", "--to", f"127.0.0.1:{port}", "--send", "100", "--repeat", str(n), "--rate", str(rate / pairs)], stdout=subprocess.PIPE, text=True) for _, port in servers]
        made = acc = 0
        for c in clients:
            out, _ = c.communicate(timeout=a.seconds * 5 + 60); made += json.loads(out.strip().splitlines()[-1])["connections"]
        el = time.time() - t1
        stop.set(); th.join()
        for p, _ in servers:
            out, _ = p.communicate(timeout=60); acc += json.loads(out.strip().splitlines()[-1])["connections"]
        p1 = progs(allpids); s1 = stats_map(allpids); c1 = cpu()
        print(f"== step {i}: {rate}/s asked, made {made} accepted {acc} in {el:.1f}s = {made/el:.0f}/s", flush=True)
        for k in sorted(p1):
            d = p1[k][0] - p0.get(k, (0, 0))[0]; m = p1[k][1] - p0.get(k, (0, 0))[1]
            if d: print(f"  prog {k:28s} runs {d:9d} misses {m}")
        prev = None
        for t, lost, w in timeline:
            if prev is not None and lost != prev:
                print(f"    t={t} s: {lost - prev} flow announcements lost; (wchan:state) {w}")
            prev = lost
        print("    monitor states", Counter(w.get("monitor") for _, _, w in timeline).most_common(6))
        print("    primary states", Counter(w.get("primary") for _, _, w in timeline).most_common(6))
        print("  cpu s during traffic", {k: round(v - c0.get(k, 0), 2) for k, v in c1.items()})
        if s0 is not None and s1 is not None:
            print("  kernel counters, delta", {n: y - x for n, x, y in zip(STATS, s0, s1) if y != x})
        last = None; t2 = time.time()
        while time.time() - t2 < a.settle + 120:
            time.sleep(11)
            if not db.exists(): continue
            c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
            fp = c.execute("SELECT e.exe, SUM(c.events), SUM(c.send), SUM(c.recv), COUNT(*) FROM connections c JOIN executables e ON e.id=c.exe_id WHERE e.exe IN (?, ?) GROUP BY e.exe", (str(cli), str(srv))).fetchall()
            c.close()
            q = (status().get("primary") or {}).get("rows_queued", 0)
            print(f"  t+{time.time()-t2:.0f}s history {[(x[0][-5:],) + x[1:] for x in fp]} queued {q}", flush=True)
            if fp == last and q < 1000 and time.time() - t2 >= a.settle: break
            last = fp
        st = status()
        rec = sum(r[1] for r in (last or []))
        print(f"  flows truth {made + acc} recorded {rec} missing {made + acc - rec}")
        m = st.get("monitor", {}); p = st.get("primary", {}); m0 = st0.get("monitor", {}); q0 = st0.get("primary", {})
        print("  monitor delta", {k: v - m0.get(k, 0) for k, v in m.items() if isinstance(v, int)}, {k: v for k, v in m["kernel"].items() if v})
        print("  primary delta", {k: v - q0.get(k, 0) for k, v in p.items() if isinstance(v, int) and v - q0.get(k, 0)}, flush=True)
finally:
    if daemon:
        daemon.terminate()
        try: daemon.wait(60)
        except subprocess.TimeoutExpired: daemon.kill(); daemon.wait()
    subprocess.run(["ip", "netns", "del", ns])
    print("workdir", work)
