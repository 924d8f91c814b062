"""`bench/run`: builds the release binaries, runs every section of the benchmark suite
against picosnitch and its peers, and writes `report.md` and `results.json`.

    sudo bench/run --out bench/results/            # the whole suite (about 40 minutes on 2 cores)
    sudo bench/run --smoke --binaries target/debug --out target/bench-smoke   # CI's short run
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import daemon, machine, report
from .build import ROOT, build, from_dir, target_dir
from .env import Env
from .netlab import Lab
from .observers.bandwhich import Bandwhich
from .observers.base import Unavailable
from .observers.nethogs import NetHogs
from .observers.opensnitch import OpenSnitch
from .observers.picosnitch import Picosnitch
from .proc import CommandFailed
from .scenarios import Sizes, scenarios
from .sections import accuracy, capacity, footprint, overhead, sandbox, storage

SECTIONS = ["accuracy", "overhead", "capacity", "footprint", "storage", "sandbox"]
PEERS = ["nethogs", "bandwhich", "opensnitch"]


def parse(argv):
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="directory for report.md and results.json")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}, or none")
    ap.add_argument("--scenarios", default="all", help="comma-separated accuracy scenario ids, or all")
    ap.add_argument("--trials", type=int, default=3, help="trials per accuracy scenario")
    ap.add_argument("--rounds", type=int, default=5, help="daemon-off/daemon-on rounds in the overhead section")
    ap.add_argument("--rates", default="100,1000,10000", help="new connections per second in the footprint section")
    ap.add_argument("--sandbox-rounds", type=int, default=5,
                    help="confined/unconfined daemon pairs in the sandbox section (cost of confinement)")
    ap.add_argument("--storage-rows", type=int, default=10_000_000, help="rows of the history the TUI queries")
    ap.add_argument("--smoke", action="store_true",
                    help="CI's version: a few scenarios, one trial, short phases, small history; no timing targets")
    ap.add_argument("--binaries", help="take picosnitch and picosnitch-traffic from this directory instead of building")
    ap.add_argument("--cache", default=str(target_dir() / "bench-peers"), help="where peers are installed (bandwhich, "
                    "the unpacked OpenSnitch package)")
    ap.add_argument("--keep", action="store_true", help="keep the working directory (logs, databases, generator copies)")
    ap.add_argument("--render", metavar="RESULTS_JSON",
                    help="measure nothing: write report.md again from a results.json (into --out)")
    a = ap.parse_args(argv)
    a.sections = [s for s in a.sections.split(",") if s]
    bad = [s for s in a.sections if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section {', '.join(bad)}: choose from {', '.join(SECTIONS)}")
    a.peers = [] if a.peers in ("", "none") else a.peers.split(",")
    bad = [p for p in a.peers if p not in PEERS]
    if bad:
        ap.error(f"unknown peer {', '.join(bad)}: choose from {', '.join(PEERS)} or none")
    if a.smoke:
        a.trials = 1
        a.rounds = 1
        a.rates = "100,1000"
        a.storage_rows = min(a.storage_rows, 20_000)
        a.sandbox_rounds = 1
    return a


def observers_for(args, binaries):
    obs = [Picosnitch(binaries)]
    table = {"nethogs": lambda: NetHogs(), "bandwhich": lambda: Bandwhich(args.cache),
             "opensnitch": lambda: OpenSnitch(args.cache)}
    obs += [table[p]() for p in args.peers]
    return obs


def interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.render:
        return rerender(Path(args.render), Path(args.out))
    if args.smoke:
        daemon.WRITE_PERIOD = 2
    if os.geteuid() != 0:
        print("bench/run: run as root (sudo bench/run ...): the daemon loads BPF programs and the benchmark makes "
              "network namespaces", file=sys.stderr)
        return 2
    for tool in ["ip", "unshare"]:
        if not shutil.which(tool):
            print(f"bench/run: {tool} is missing: run scripts/install-deps.sh", file=sys.stderr)
            return 2
    # SIGTERM ends the run like ^C: every finally below stops what it started.
    signal.signal(signal.SIGTERM, interrupt)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="picosnitch-bench-work-"))
    os.chmod(workdir, 0o755)
    env = Env(workdir, args.cache)
    env.unavailable = {}
    results = {"format": 1, "smoke": args.smoke, "command": " ".join(["bench/run", *(argv or sys.argv[1:])]),
               "started": machine.now(), "machine": machine.facts(), "load_start": machine.load(), "sections": {}}
    started = time.monotonic()
    lab = Lab()
    try:
        binaries = from_dir(args.binaries, f"given: {args.binaries}") if args.binaries else build(env)
        results["versions"] = machine.versions(binaries)
        observers = observers_for(args, binaries)
        for o in observers:
            try:
                env.log(f"setup: {o.name}")
                results["versions"][o.name] = o.install(env)
            except (Unavailable, CommandFailed) as e:
                env.unavailable[o.name] = f"not installed: {e}"
                results["versions"][o.name] = f"not available: {e}"
        env.log("setup: network namespaces")
        lab.create()
        chosen = scenarios()
        if args.smoke:
            chosen = [s for s in chosen if s.smoke]
        if args.scenarios != "all":
            want = args.scenarios.split(",")
            chosen = [s for s in chosen if s.id in want]
        sizes = Sizes.smoke() if args.smoke else Sizes()
        results["parameters"] = {"trials": args.trials, "rounds": args.rounds, "rates": args.rates, "sizes": vars(sizes),
                                 "storage_rows": args.storage_rows, "scenarios": [s.id for s in chosen]}
        runners = {
            "accuracy": lambda: accuracy.run(env, binaries, lab, observers, chosen, sizes, args.trials, workdir),
            "overhead": lambda: overhead.run(env, binaries, lab, observers, args.rounds, args.smoke, workdir),
            "capacity": lambda: capacity.run(env, binaries, lab, args.smoke, workdir),
            "footprint": lambda: footprint.run(env, binaries, lab, [float(r) for r in args.rates.split(",")], args.smoke,
                                               workdir),
            "storage": lambda: storage.run(env, binaries, args.storage_rows, workdir),
            "sandbox": lambda: sandbox.run(env, binaries, lab, args.sandbox_rounds, args.smoke, workdir),
        }
        for name in args.sections:
            t0 = time.monotonic()
            env.log(f"section {name}")
            try:
                results["sections"][name] = runners[name]()
            except (CommandFailed, Unavailable, OSError) as e:
                env.log(f"section {name} failed: {e}")
                results["sections"][name] = {"error": str(e), "traceback": traceback.format_exc()}
            results["sections"][name]["seconds"] = round(time.monotonic() - t0, 1)
            # Each section is written as soon as it is done: a long run interrupted
            # later keeps what it measured.
            write(out, results, chosen)
    except KeyboardInterrupt:
        results["interrupted"] = True
        env.log("interrupted: cleaning up")
    finally:
        lab.destroy()
        results["load_end"] = machine.load()
        results["seconds"] = round(time.monotonic() - started, 1)
        if args.keep:
            env.log(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    write(out, results, scenarios())
    env.log(f"wrote {out / 'report.md'} and {out / 'results.json'}")
    failed = [n for n, s in results["sections"].items() if "error" in s]
    return 1 if failed or results.get("interrupted") else 0


def write(out, results, chosen):
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "report.md").write_text(report.render(results, chosen))


def rerender(results_json, out):
    """report.md from a results.json already written (after a change to the report only)."""
    try:
        results = json.loads(results_json.read_text())
    except (OSError, json.JSONDecodeError) as e:
        print(f"bench/run: cannot read {results_json}: {e}", file=sys.stderr)
        return 2
    acc = results.get("sections", {}).get("accuracy") or {}
    if "trials" in acc:
        # The summary as this version makes it from the trials' raw scores.
        acc["summary"] = accuracy.summarize(acc["trials"], [])
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(report.render(results, scenarios()))
    print(f"bench/run: wrote {out / 'report.md'}", file=sys.stderr)
    return 0
