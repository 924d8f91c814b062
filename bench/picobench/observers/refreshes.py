"""Tools that print their whole table again every second (NetHogs' and bandwhich's
trace modes): the output cut into refreshes, each remembered with where it ends in the
file, so a trial's window (file offsets taken when it started and ended) picks out the
refreshes printed during it."""
from dataclasses import dataclass


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
