"""The binaries measured: built here in release mode, or taken from a directory (the CI
smoke run uses the debug build the tests already made)."""
import os
from dataclasses import dataclass
from pathlib import Path

from .proc import CommandFailed, run

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Binaries:
    picosnitch: Path
    traffic: Path
    bench_history: Path | None
    origin: str


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def build(env):
    env.log("building release binaries (cargo build --release)")
    run(["cargo", "build", "--release", "--locked", "-p", "picosnitch", "-p", "picosnitch-traffic"], timeout=3600, cwd=ROOT)
    run(["cargo", "build", "--release", "--locked", "-p", "picosnitch-tui", "--example", "bench_history"], timeout=3600,
        cwd=ROOT)
    return from_dir(target_dir() / "release", "release build (cargo build --release)")


def from_dir(d, origin=None):
    d = Path(d).resolve()
    b = Binaries(d / "picosnitch", d / "picosnitch-traffic", d / "examples" / "bench_history", origin or f"binaries in {d}")
    for p in (b.picosnitch, b.traffic):
        if not p.exists():
            raise CommandFailed(f"{p} is missing: build it first (cargo build -p picosnitch -p picosnitch-traffic)")
    if not b.bench_history.exists():
        b.bench_history = None
    return b
