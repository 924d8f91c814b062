"""Overhead: what a watching tool costs the programs it watches, on the lab host's
loopback. For each tool and round: the same three workloads with the tool stopped and
with it running, in alternating order (off-on, then on-off), so slow drift of the
machine's load cancels out; the ratio on/off per round, then the median and spread of
the ratios. The tool is started afresh for each of its "on" runs."""
from ..load import Loopback
from ..markdown import Footnotes, num, pct, table
from ..observers.base import Unavailable
from ..proc import CommandFailed
from ..stats import median, spread

GiB = 1024**3

# Higher is better for rates, lower for times: ratios are "on / off" either way.
METRICS = [
    ("connect_rate", "connect and close (per s)", "higher"),
    ("rr_p50_us", "request/response p50 (µs)", "lower"),
    ("rr_p99_us", "request/response p99 (µs)", "lower"),
    ("bulk_bytes_per_s", "bulk throughput (MB/s)", "higher"),
]


def measure(wl, p):
    """Each workload `repeat` times, interleaved; the median of each."""
    got = {k: [] for k, _, _ in METRICS}
    for _ in range(p["repeat"]):
        got["connect_rate"].append(wl.connect_rate(p["connect_seconds"]))
        rt = wl.round_trips(p["rr_count"])
        got["rr_p50_us"].append(rt["p50"])
        got["rr_p99_us"].append(rt["p99"])
        got["bulk_bytes_per_s"].append(wl.bulk(p["bulk_bytes"]))
    return {k: median(v) for k, v in got.items()}


def run(env, binaries, lab, observers, rounds, smoke, workdir):
    p = ({"connect_seconds": 1, "rr_count": 2000, "bulk_bytes": GiB // 8, "repeat": 1} if smoke else
         {"connect_seconds": 2, "rr_count": 20000, "bulk_bytes": GiB, "repeat": 3})
    wl = Loopback(binaries.traffic, workdir / "overhead", lab.exec_prefix(lab.host), "o")
    runs = []
    skipped = {o.name: env.unavailable[o.name] for o in observers if o.name in env.unavailable}
    tools = [o for o in observers if o.name not in skipped]
    for r in range(1, rounds + 1):
        for o in list(tools):
            order = ["off", "on"] if r % 2 else ["on", "off"]
            pair = {}
            for state in order:
                env.log(f"overhead: round {r}/{rounds}, {o.name} {state}")
                if state == "on":
                    d = workdir / f"overhead-{o.name}-{r}"
                    d.mkdir(parents=True, exist_ok=True)
                    try:
                        o.start(lab, d)
                    except Unavailable as e:
                        skipped[o.name] = f"could not start: {e}"
                        tools.remove(o)
                        break
                try:
                    pair[state] = measure(wl, p)
                finally:
                    if state == "on":
                        why = o.failure()
                        o.stop()
                        if hasattr(o, "cleanup"):
                            o.cleanup()
                if state == "on" and why:
                    raise CommandFailed(f"{o.name} stopped while it was measured: {why}")
            if len(pair) == 2:
                runs.append({"tool": o.name, "round": r, "order": order, **{s: pair[s] for s in pair},
                             "ratio": {k: pair["on"][k] / pair["off"][k] for k, _, _ in METRICS if pair["off"][k]}})
    summary = {}
    for o in observers:
        mine = [x for x in runs if x["tool"] == o.name]
        if not mine:
            continue
        summary[o.name] = {k: {"median": median([x["ratio"].get(k) for x in mine]),
                               "spread": spread([x["ratio"].get(k) for x in mine]),
                               "off_median": median([x["off"][k] for x in mine]),
                               "on_median": median([x["on"][k] for x in mine])} for k, _, _ in METRICS}
    return {"parameters": p, "rounds": rounds, "runs": runs, "summary": summary, "skipped": skipped}


def fmt(k, v):
    if k == "bulk_bytes_per_s":
        return num(v / 1e6)
    if k == "connect_rate":
        return num(v)
    return num(v, 1)


def render(result):
    notes = Footnotes()
    rows = []
    for name, s in result["summary"].items():
        for k, label, better in METRICS:
            m = s[k]
            lo, hi = m["spread"]
            rows.append([name, label, fmt(k, m["off_median"]), fmt(k, m["on_median"]),
                         f"{m['median']:.3f}", f"{lo:.3f}–{hi:.3f}", f"{'+' if m['median'] >= 1 else '−'}"
                         f"{pct(abs(m['median'] - 1), 1)} ({'better' if (m['median'] > 1) == (better == 'higher') else 'worse'})"])
    for name, why in result["skipped"].items():
        rows.append([name, "not measured " + notes.ref(why), "", "", "", "", ""])
    p = result["parameters"]
    out = [f"Loopback in the lab's host namespace; {result['rounds']} rounds per tool, each tool off and on in "
           f"alternating order. Workloads, each run {p['repeat']} times per measurement (median): connect-and-close "
           f"for {p['connect_seconds']} s, {p['rr_count']:,} round trips of 64 bytes on one connection (TCP_NODELAY), "
           f"one {p['bulk_bytes'] / GiB:g} GiB transfer.",
           "",
           table(["tool", "workload", "off (median)", "on (median)", "on/off (median)", "on/off (min–max)", "change"],
                 rows)]
    if notes.notes:
        out += ["", notes.render()]
    return "\n".join(out)


def targets(result):
    s = result["summary"].get("picosnitch")
    if not s:
        return [("connect rate within 3% of no daemon", "not measured", None),
                ("throughput within 1% of no daemon", "not measured", None)]
    c, b = s["connect_rate"], s["bulk_bytes_per_s"]
    return [
        ("connect rate within 3% of no daemon", f"{c['median']:.3f} of it (rounds {c['spread'][0]:.3f}–{c['spread'][1]:.3f})",
         c["median"] >= 0.97),
        ("throughput within 1% of no daemon", f"{b['median']:.3f} of it (rounds {b['spread'][0]:.3f}–{b['spread'][1]:.3f})",
         b["median"] >= 0.99),
    ]
