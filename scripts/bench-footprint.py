#!/usr/bin/env python3
"""Footprint of picosnitch (CPU and PSS of all its processes, idle and at rates of new
connections). Now a section of the benchmark suite; this runs only that section:

    sudo scripts/bench-footprint.py [--rates 100,1000,10000] [--out target/bench]

The whole suite: `sudo bench/run` (see the README's Benchmarks section).
"""
import os
import sys
from pathlib import Path

bench = Path(__file__).resolve().parent.parent / "bench" / "run"
args = sys.argv[1:]
if "--out" not in args:
    args += ["--out", str(Path(__file__).resolve().parent.parent / "target" / "bench")]
os.execv(sys.executable, [sys.executable, str(bench), "--sections", "footprint", "--peers", "none", *args])
