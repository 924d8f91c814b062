"""What every watched tool (picosnitch and its peers) offers the benchmark.

A tool is installed (or found), started watching the lab's host namespace, asked what it
saw for each trial's executable, and stopped. A tool that cannot be installed or
started raises `Unavailable` with the exact reason; the report shows that reason in
place of its numbers, never zeros.
"""
import time
from dataclasses import dataclass, field


class Unavailable(Exception):
    """The tool cannot run here; the message is the reason shown in the report."""


@dataclass
class Observation:
    """What one tool reported for one trial's executable.

    `seen`: the tool named the executable at all. `wrong`: what it got wrong about it
    when it did (another binary's hash, another protocol, ...). `sent`/`received`:
    bytes it attributed to it (None when the tool does not count bytes).
    `connections`: how many connections it listed (None when it does not say).
    `unattributed`: traffic of this trial it saw but could not name (bytes, or
    connections for tools without byte counts), when that can be told apart.
    """
    seen: bool
    sent: int | None = None
    received: int | None = None
    connections: int | None = None
    unattributed: int | None = None
    wrong: list = field(default_factory=list)
    notes: list = field(default_factory=list)


class Observer:
    name = "?"
    # What its byte counts mean: "payload" (what the application wrote and read),
    # "ip" (IP packets), "frames" (Ethernet frames), or None (no byte counts).
    counts = None
    # How it names a program: "path" (the executable's path) or "comm" (the
    # kernel's 15-character process name).
    names_by = "path"

    def install(self, env):
        """Makes the tool available (apt-get, cargo install into the cache); returns its
        version string. Raises Unavailable."""
        raise NotImplementedError

    def start(self, lab, workdir):
        raise NotImplementedError

    def failure(self):
        """None while the tool runs, else why it stopped."""
        return None

    def stop(self):
        raise NotImplementedError

    def observe(self, gen, trial):
        """What it reported for generator `gen` (after `stop`, or after settling)."""
        raise NotImplementedError

    def pids(self):
        """Its processes, for CPU and memory."""
        return []

    def diagnostics(self):
        """What it said besides its data (errors, warnings), for results.json."""
        return None


def wait_for_output(proc, path, needle, timeout, tool):
    """Waits until a tool started in the background has printed `needle`; raises
    Unavailable with its own last words if it exits or stays silent."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.exited():
            raise Unavailable(f"{tool} {proc.exited()}")
        try:
            if needle in path.read_text(errors="replace"):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    raise Unavailable(f"{tool} printed no {needle!r} within {timeout} s of starting")


def other_lines(path, is_data, limit=20):
    """Distinct lines of a tool's output that are not data rows: its own messages."""
    seen = []
    try:
        text = path.read_text(errors="replace")
    except (FileNotFoundError, AttributeError):
        return seen
    for line in text.splitlines():
        s = line.strip()
        if s and not is_data(s) and s not in seen:
            seen.append(s)
            if len(seen) >= limit:
                break
    return seen
