"""The machine a run measured: kernel, CPUs, memory, load, and the versions of every
program involved. Load matters here: ratios within one run are comparable, absolute
numbers only on a quiet machine."""
import datetime
import os
import platform
import sqlite3
import sys
from pathlib import Path

from .build import ROOT
from .proc import run


def first_line(args):
    try:
        p = run(args, check=False, timeout=30)
    except Exception:  # noqa: BLE001 (a missing tool is reported as such)
        return None
    return (p.stdout.strip() or p.stderr.strip()).splitlines()[0] if (p.stdout.strip() or p.stderr.strip()) else None


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def mem_total_mib():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def load():
    one, five, fifteen = os.getloadavg()
    return {"1min": one, "5min": five, "15min": fifteen, "at": now()}


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def facts():
    debian = Path("/etc/debian_version")
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "kernel_build": platform.version(),
        "arch": platform.machine(),
        "os": f"Debian {debian.read_text().strip()}" if debian.exists() else platform.platform(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "memory_mib": mem_total_mib(),
    }


def versions(binaries):
    commit = first_line(["git", "-C", ROOT, "describe", "--always", "--dirty", "--abbrev=12"])
    return {
        "picosnitch": first_line([binaries.picosnitch, "version"]),
        "picosnitch_commit": commit,
        "binaries": binaries.origin,
        "rustc": first_line(["rustc", "--version"]),
        "python": sys.version.split()[0],
        "sqlite (python)": sqlite3.sqlite_version,
        "iproute2": first_line(["ip", "-V"]),
    }
