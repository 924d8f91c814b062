"""NetHogs (Debian package `nethogs`) in trace mode: every second, one line per process
with the bytes it sent and received so far (`-v 2`: total bytes), over TCP and UDP
(`-C`), on every device of the watched namespace including loopback (`-a`). It maps
packets it captures with libpcap to sockets it finds under /proc."""
import os
import shutil
from pathlib import Path

from ..proc import Background, run
from .base import Observation, Observer, Unavailable, other_lines, wait_for_output
from .refreshes import growth_in_window, max_totals, split_refreshes

UNKNOWN = "unknown "


def parse_row(line):
    """`PROGRAM/PID/UID<TAB>SENT<TAB>RECEIVED` (PROGRAM may itself contain slashes)."""
    parts = line.split("\t")
    if len(parts) != 3:
        return None
    try:
        return parts[0], int(float(parts[1])), int(float(parts[2]))
    except ValueError:
        return None


def program_of(key):
    return key.rsplit("/", 2)[0]


class NetHogs(Observer):
    name = "nethogs"
    # libpcap hands it whole frames; which length it adds up is measured, not assumed:
    # the report compares its numbers with the payload and with the wire.
    counts = "frames"
    names_by = "path"

    def __init__(self):
        self.proc = None
        self.out = None
        self._refreshes = None

    def install(self, env):
        if not shutil.which("nethogs"):
            env.apt_install(["nethogs"], why="NetHogs, a peer in the benchmark")
        if not shutil.which("nethogs"):
            raise Unavailable("nethogs is not installed and apt-get could not install it")
        # `nethogs -V` prints "version 0.8.7-2" on stdout and exits 0.
        return run(["nethogs", "-V"], check=False).stdout.strip() or "nethogs (version unknown)"

    def start(self, lab, workdir):
        self.out = Path(workdir) / "nethogs.out"
        self.proc = Background([*lab.exec_prefix(lab.host), "nethogs", "-t", "-v", "2", "-C", "-a", "-d", "1"], self.out)
        self._refreshes = None
        # It prints its first refresh once it has opened every device.
        wait_for_output(self.proc, self.out, "Refreshing:", 10, "nethogs")

    def failure(self):
        return self.proc and self.proc.exited() and f"nethogs {self.proc.exited()}"

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
        path = str(subject.gen.path)
        mine = max_totals(self.refreshes(), lambda k: program_of(k) == path)
        window = trial.marks.get(self.name)
        unknown = growth_in_window(self.refreshes(), window, lambda k: k.startswith(UNKNOWN)) if window else None
        if not mine:
            return Observation(seen=False, unattributed=unknown)
        return Observation(seen=True, sent=sum(s for s, _ in mine.values()), received=sum(r for _, r in mine.values()),
                           connections=None, unattributed=unknown, notes=[f"{len(mine)} pid(s)"])

    def diagnostics(self):
        return {"output": other_lines(self.out, lambda s: s == "Refreshing:" or parse_row(s) is not None or s.startswith("Unknown connection")),
                "stderr": other_lines(self.proc.err_path, lambda s: False) if self.proc else []}

    def pids(self):
        return [self.proc.pid] if self.proc and not self.proc.exited() else []
