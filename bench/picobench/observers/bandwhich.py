"""bandwhich (crates.io), installed with `cargo install --locked` into the benchmark's
cache, run as root in its machine-friendly mode (`--raw`) with cumulative totals
(`--total-utilization`), processes only, no DNS lookups. It names processes by their
kernel name (`comm`, 15 characters), maps captured packets to sockets through /proc."""
import re
from pathlib import Path

from ..proc import CommandFailed, run
from .base import Observation, Unavailable
from .refreshes import RefreshingObserver, growth_in_window, max_totals

VERSION = "0.23.1"
UNKNOWN = "<UNKNOWN>"
# process: <1795572864> "python3" up/down Bps: 172158/622 connections: 0
ROW = re.compile(r'^process: <\d+> "(.*)" up/down Bps: (\d+)/(\d+) connections: (\d+)$')


def parse_row(line):
    m = ROW.match(line)
    if not m:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3))


class Bandwhich(RefreshingObserver):
    name = "bandwhich"
    counts = "frames"
    names_by = "comm"

    parse_row = staticmethod(parse_row)

    def __init__(self, cache):
        super().__init__()
        self.binary = Path(cache) / "bin" / "bandwhich"
        self.cache = Path(cache)

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
        self.run_tool(lab, workdir, [self.binary, "--raw", "--total-utilization", "--processes", "--no-resolve"], 15)

    def observe(self, subject, trial):
        comm = subject.gen.name[:15]
        mine = max_totals(self.refreshes(), lambda k: k == comm)
        window = trial.marks.get(self.name)
        unknown = growth_in_window(self.refreshes(), window, lambda k: k == UNKNOWN) if window else None
        if not mine:
            return Observation(seen=False, unattributed=unknown)
        sent, received = mine[comm]
        return Observation(seen=True, sent=sent, received=received, unattributed=unknown)
