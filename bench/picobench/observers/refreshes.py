"""Tools that print their whole table again every second (NetHogs' and bandwhich's
trace modes): the output cut into refreshes, each remembered with where it ends in the
file, so a trial's window (file offsets taken when it started and ended) picks out the
refreshes printed during it."""
import os
from dataclasses import dataclass
from pathlib import Path

from ..proc import Background
from .base import Observer, other_lines, wait_for_output


@dataclass
class Refresh:
    end: int  # file offset just past this refresh
    rows: dict  # key -> (sent, received), cumulative since the tool started


def split_refreshes(text, parse_row, marker="Refreshing:"):
    """Refreshes in order. `parse_row(line)` returns (key, sent, received) or None."""
    out = []
    rows = None
    offset = 0
    for line in text.splitlines(keepends=True):
        offset += len(line.encode())
        s = line.strip()
        if s == marker:
            if rows is not None:
                out.append(Refresh(offset - len(line.encode()), rows))
            rows = {}
            continue
        if rows is None:
            continue
        row = parse_row(s)
        if row:
            key, sent, received = row
            rows[key] = (sent, received)
    if rows is not None:
        out.append(Refresh(offset, rows))
    return out


def max_totals(refreshes, keep):
    """Largest cumulative (sent, received) of every key that `keep` accepts: a process
    that went away keeps the last totals it had."""
    best = {}
    for r in refreshes:
        for key, (s, rcv) in r.rows.items():
            if keep(key):
                bs, br = best.get(key, (0, 0))
                best[key] = (max(bs, s), max(br, rcv))
    return best


def growth_in_window(refreshes, window, keep):
    """How much the cumulative totals of keys `keep` accepts grew during a window of
    file offsets: last refresh before the window against last refresh inside it."""
    start, end = window
    before = {}
    inside = {}
    for r in refreshes:
        target = before if r.end <= start else inside if r.end <= end else None
        if target is None:
            break
        for key, v in r.rows.items():
            if keep(key):
                target[key] = v
    total = 0
    for key, (s, rcv) in inside.items():
        bs, br = before.get(key, (0, 0))
        total += max(0, s - bs) + max(0, rcv - br)
    return total


class RefreshingObserver(Observer):
    """A peer that runs as one background process printing refreshes into a file.
    Subclasses set `parse_row` and call `run_tool` from `start`."""
    parse_row = None  # staticmethod: line -> (key, sent, received) or None

    def __init__(self):
        self.proc = None
        self.out = None
        self._refreshes = None

    def run_tool(self, lab, workdir, argv, ready_timeout):
        self.out = Path(workdir) / f"{self.name}.out"
        self.proc = Background([*lab.exec_prefix(lab.host), *argv], self.out)
        self._refreshes = None
        # It prints its first refresh once it has opened every device.
        wait_for_output(self.proc, self.out, "Refreshing:", ready_timeout, self.name)

    def failure(self):
        return self.proc and self.proc.exited() and f"{self.name} {self.proc.exited()}"

    def mark(self):
        return os.path.getsize(self.out) if self.out and self.out.exists() else 0

    def stop(self):
        if self.proc:
            self.proc.stop()

    def refreshes(self):
        if self._refreshes is None:
            self._refreshes = split_refreshes(self.out.read_text(errors="replace"), self.parse_row)
        return self._refreshes

    def is_data(self, line):
        """Lines of its output that are data (the rest go to diagnostics)."""
        return line == "Refreshing:" or self.parse_row(line) is not None

    def diagnostics(self):
        return {"output": other_lines(self.out, self.is_data),
                "stderr": other_lines(self.proc.err_path, lambda s: False) if self.proc else []}

    def pids(self):
        return [self.proc.pid] if self.proc and not self.proc.exited() else []
