"""Storage: bytes per connection row on disk, how many rows per second the writer's
insert path stores, and how long the TUI's queries take on a big history.

All three come from the TUI's own benchmark (`crates/picosnitch-tui/examples/
bench_history`): it builds a synthetic 30-day history shaped like a busy desktop's
through `Store::insert_batch` (the writer's path, one hour of rows per batch) and then
times every query the TUI makes. This section runs it, reads its output, and measures
the file it built (total, and the `connections` table with its indexes via SQLite's
dbstat)."""
import re
import sqlite3

from ..markdown import num, table
from ..proc import CommandFailed, run as run_cmd


def parse(stdout, stderr):
    out = {}
    m = re.search(r"generated in (\d+) s \((\d+) rows/s\)", stderr)
    if m:
        out["generate_seconds"], out["insert_rows_per_s"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"open \+ first view: p50 ([\d.]+)\s+p95 ([\d.]+)", stdout)
    if m:
        out["open_ms"] = {"p50": float(m.group(1)), "p95": float(m.group(2))}
    m = re.search(r"every view and window \((\d+) queries\): p50 ([\d.]+)\s+p95 ([\d.]+)\s+max ([\d.]+)", stdout)
    if m:
        out["views_ms"] = {"queries": int(m.group(1)), "p50": float(m.group(2)), "p95": float(m.group(3)),
                           "max": float(m.group(4))}
    m = re.search(r"^filtered: p50 ([\d.]+)\s+p95 ([\d.]+)\s+max ([\d.]+)", stdout, re.M)
    if m:
        out["filtered_ms"] = {"p50": float(m.group(1)), "p95": float(m.group(2)), "max": float(m.group(3))}
    return out


def on_disk(db):
    """Bytes of the whole file, and of `connections` with its indexes, per row."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = c.execute("SELECT COUNT(*) FROM connections").fetchone()[0]
        pages = c.execute("PRAGMA page_count").fetchone()[0] * c.execute("PRAGMA page_size").fetchone()[0]
        conn = c.execute("SELECT SUM(pgsize) FROM dbstat WHERE name = 'connections' OR name IN "
                         "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'connections')").fetchone()[0]
        table_only = c.execute("SELECT SUM(pgsize) FROM dbstat WHERE name = 'connections'").fetchone()[0]
    finally:
        c.close()
    return {"rows": rows, "file_bytes": pages, "connections_bytes": conn, "connections_table_bytes": table_only,
            "bytes_per_row_file": pages / rows if rows else None,
            "bytes_per_row_connections": conn / rows if rows else None,
            "bytes_per_row_table": table_only / rows if rows else None}


def run(env, binaries, rows, workdir):
    if not binaries.bench_history:
        raise CommandFailed("the TUI's bench_history example is not built: cargo build --release -p picosnitch-tui "
                            "--example bench_history")
    db = workdir / "history.db"
    days = 30 if rows >= 1_000_000 else 1
    repeat = 10 if rows >= 1_000_000 else 2
    env.log(f"storage: building a {rows:,}-row history and timing the TUI's queries (several minutes at 10 million)")
    p = run_cmd([binaries.bench_history, "--rows", rows, "--days", days, "--db", db, "--regenerate", "--repeat", repeat],
                timeout=7200)
    result = {"rows_requested": rows, "days": days, "repeat": repeat, **parse(p.stdout, p.stderr), **on_disk(db),
              "output": p.stdout[-4000:]}
    for suffix in ("", "-wal", "-shm"):
        (workdir / f"history.db{suffix}").unlink(missing_ok=True)
    return result


def render(r):
    rows = [
        ["rows in the history", num(r["rows"]), f"{r['days']} days, synthetic desktop-like traffic"],
        ["file size", f"{r['file_bytes'] / 1e6:,.0f} MB", "with the hour/day/week summaries the TUI reads"],
        ["bytes per row, whole file", num(r["bytes_per_row_file"], 1), ""],
        ["bytes per row, connections table + its indexes", num(r["bytes_per_row_connections"], 1), ""],
        ["bytes per row, connections table alone", num(r["bytes_per_row_table"], 1), ""],
        ["writer insert path (rows/s)", num(r.get("insert_rows_per_s")),
         "Store::insert_batch, one hour of rows per transaction, summaries kept up to date"],
    ]
    if "open_ms" in r:
        rows.append(["TUI: open + first view (ms)", f"p50 {r['open_ms']['p50']}, p95 {r['open_ms']['p95']}", ""])
    if "views_ms" in r:
        v = r["views_ms"]
        rows.append(["TUI: every view and time window (ms)", f"p50 {v['p50']}, p95 {v['p95']}, max {v['max']}",
                     f"{v['queries']:,} queries"])
    if "filtered_ms" in r:
        f = r["filtered_ms"]
        rows.append(["TUI: filtered views, busiest executable (ms)", f"p50 {f['p50']}, p95 {f['p95']}, max {f['max']}",
                     "raw rows through an index"])
    return table(["what", "measured", "how"], rows)
