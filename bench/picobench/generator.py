"""Copies of `picosnitch-traffic` under names unique to one trial, and running them.

The name is the whole point: everything any tool reports for that name is that trial's
traffic. Names stay within 15 characters, because the kernel's process name (`comm`,
what bandwhich shows) is the executable's name cut to 15.
"""
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from .proc import CommandFailed

COMM_LEN = 15


class Generator:
    def __init__(self, source, directory, name):
        if len(name) > COMM_LEN:
            raise ValueError(f"generator name {name!r} is longer than {COMM_LEN} characters")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.path = (d / name).resolve()
        shutil.copy2(source, self.path)
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()

    def command(self, args, prefix=()):
        return [*prefix, str(self.path), *[str(a) for a in args]]

    def run(self, args, prefix=(), timeout=120):
        """Runs to completion; returns its own report (the last JSON line)."""
        cmd = self.command(args, prefix)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise CommandFailed(f"{self.name} {' '.join(map(str, args))}: no end within {timeout} s") from e
        if p.returncode != 0:
            raise CommandFailed(f"{self.name} {' '.join(map(str, args))}: exit status {p.returncode}: {p.stderr.strip()[-500:]}")
        return last_report(p.stdout, self.name)

    def start(self, args, prefix=()):
        """Starts without waiting (a burst of many processes at once)."""
        return subprocess.Popen(self.command(args, prefix), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def serve(self, args, prefix=()):
        return Server(self, args, prefix)


class Server:
    """A generator server: started, its port read from its first line, finished later."""

    def __init__(self, gen, args, prefix=()):
        self.gen = gen
        self.args = args
        self.popen = subprocess.Popen(gen.command(args, prefix), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.popen.stdout.readline()
        try:
            self.port = int(json.loads(first)["listening"])
        except (ValueError, KeyError, TypeError) as e:
            self.kill()
            raise CommandFailed(f"server {gen.name} did not say where it listens: {first!r} {self.popen.stderr.read()[-400:]}") from e

    def finish(self, timeout=120):
        try:
            out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            self.kill()
            raise CommandFailed(f"server {self.gen.name} did not finish within {timeout} s") from e
        if self.popen.returncode != 0:
            raise CommandFailed(f"server {self.gen.name}: exit status {self.popen.returncode}: {err.strip()[-500:]}")
        return last_report(out, self.gen.name)

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.communicate()


def last_report(stdout, name):
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise CommandFailed(f"{name} printed no report: {stdout[-300:]!r}")
    return json.loads(lines[-1])


def finish_started(popen, name, timeout=120):
    """Waits for a generator started with `start` and returns its report."""
    try:
        out, err = popen.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as e:
        popen.kill()
        popen.communicate()
        raise CommandFailed(f"{name}: no end within {timeout} s") from e
    if popen.returncode != 0:
        raise CommandFailed(f"{name}: exit status {popen.returncode}: {err.strip()[-500:]}")
    return last_report(out, name)
