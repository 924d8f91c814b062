"""NetHogs (Debian package `nethogs`) in trace mode: every second, one line per process
with the bytes it sent and received so far (`-v 2`: total bytes), over TCP and UDP
(`-C`), on every device of the watched namespace including loopback (`-a`). It maps
packets it captures with libpcap to sockets it finds under /proc."""
import shutil

from ..proc import run
from .base import Observation, Unavailable
from .refreshes import RefreshingObserver, growth_in_window, max_totals

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


class NetHogs(RefreshingObserver):
    name = "nethogs"
    # libpcap hands it whole frames; which length it adds up is measured, not assumed:
    # the report compares its numbers with the payload and with the wire.
    counts = "frames"
    names_by = "path"

    parse_row = staticmethod(parse_row)

    def install(self, env):
        if not shutil.which("nethogs"):
            env.apt_install(["nethogs"], why="NetHogs, a peer in the benchmark")
        if not shutil.which("nethogs"):
            raise Unavailable("nethogs is not installed and apt-get could not install it")
        # `nethogs -V` prints "version 0.8.7-2" on stdout and exits 0.
        return run(["nethogs", "-V"], check=False).stdout.strip() or "nethogs (version unknown)"

    def start(self, lab, workdir):
        self.run_tool(lab, workdir, ["nethogs", "-t", "-v", "2", "-C", "-a", "-d", "1"], 10)

    def observe(self, subject, trial):
        path = str(subject.gen.path)
        mine = max_totals(self.refreshes(), lambda k: program_of(k) == path)
        window = trial.marks.get(self.name)
        unknown = growth_in_window(self.refreshes(), window, lambda k: k.startswith(UNKNOWN)) if window else None
        if not mine:
            return Observation(seen=False, unattributed=unknown)
        return Observation(seen=True, sent=sum(s for s, _ in mine.values()), received=sum(r for _, r in mine.values()),
                           connections=None, unattributed=unknown, notes=[f"{len(mine)} pid(s)"])

    def is_data(self, line):
        return super().is_data(line) or line.startswith("Unknown connection")
