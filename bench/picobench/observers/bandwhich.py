"""bandwhich (crates.io), installed with `cargo install --locked` into the benchmark's
cache, run as root in its machine-friendly mode (`--raw`) with cumulative totals
(`--total-utilization`), processes only, no DNS lookups. It names processes by their
kernel name (`comm`, 15 characters), maps captured packets to sockets through /proc."""
import os
import re
from pathlib import Path

from ..proc import Background, CommandFailed, run
from .base import Observation, Observer, Unavailable, other_lines, wait_for_output
from .refreshes import growth_in_window, max_totals, split_refreshes

VERSION = "0.23.1"
UNKNOWN = "<UNKNOWN>"
# process: <1795572864> "python3" up/down Bps: 172158/622 connections: 0
ROW = re.compile(r'^process: <\d+> "(.*)" up/down Bps: (\d+)/(\d+) connections: (\d+)$')


def parse_row(line):
    m = ROW.match(line)
    if not m:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3))


class Bandwhich(Observer):
    name = "bandwhich"
    counts = "frames"
    names_by = "comm"

    def __init__(self, cache):
        self.binary = Path(cache) / "bin" / "bandwhich"
        self.cache = Path(cache)
        self.proc = None
        self.out = None
        self._refreshes = None

    def install(self, env):
        if not self.binary.exists():
            env.log(f"installing bandwhich {VERSION} with cargo into {self.cache} (a few minutes, once)")
            try:
                run(["cargo", "install", "--locked", "--version", VERSION, "--root", self.cache, "bandwhich"], timeout=1800)
            except CommandFailed as e:
                raise Unavailable(f"cargo install bandwhich {VERSION} failed: {e}") from e
        try:
            return run([self.binary, "--version"]).stdout.strip()
        except CommandFailed as e:
            raise Unavailable(f"bandwhich does not run: {e}") from e

    def start(self, lab, workdir):
        self.out = Path(workdir) / "bandwhich.out"
        self.proc = Background([*lab.exec_prefix(lab.host), self.binary, "--raw", "--total-utilization", "--processes",
                                "--no-resolve"], self.out)
        self._refreshes = None
        wait_for_output(self.proc, self.out, "Refreshing:", 15, "bandwhich")

    def failure(self):
        return self.proc and self.proc.exited() and f"bandwhich {self.proc.exited()}"

    def mark(self):
        return os.path.getsize(self.out) if self.out and self.out.exists() else 0

    def stop(self):
        if self.proc:
            self.proc.stop()

    def refreshes(self):
        if self._refreshes is None:
            self._refreshes = split_refreshes(self.out.read_text(errors="replace"), parse_row)
        return self._refreshes

    def observe(self, subject, trial):
        comm = subject.gen.name[:15]
        mine = max_totals(self.refreshes(), lambda k: k == comm)
        window = trial.marks.get(self.name)
        unknown = growth_in_window(self.refreshes(), window, lambda k: k == UNKNOWN) if window else None
        if not mine:
            return Observation(seen=False, unattributed=unknown)
        sent, received = mine[comm]
        return Observation(seen=True, sent=sent, received=received, unattributed=unknown)

    def diagnostics(self):
        return {"output": other_lines(self.out, lambda s: s == "Refreshing:" or parse_row(s) is not None),
                "stderr": other_lines(self.proc.err_path, lambda s: False) if self.proc else []}

    def pids(self):
        return [self.proc.pid] if self.proc and not self.proc.exited() else []
