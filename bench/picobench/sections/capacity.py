"""Capacity: the highest steady rate of new connections picosnitch records without
losing one, and what happens above it.

Rates go up in steps, each held for a while on the lab host's loopback by several
client/server pairs (every connection sends and answers 100 bytes, so both ends are
flows: two per connection). After each step the daemon writes what it saw; the
connections and bytes in the history are compared with the generators' own counts, and
what is missing with what the daemon itself reports as lost (`picosnitch status`).
If the default configuration loses nothing at the highest rate this machine can make,
one more run with the smallest ring buffer (16 pages) forces losses, to check that
every one is counted."""
from ..daemon import Daemon, loss_delta
from ..load import Loopback
from ..markdown import num, table

RATES = [1000, 2000, 5000, 10000, 15000, 20000, 30000, 40000]
SMALL_RING = "[monitoring]\nperf_ring_buffer_pages = 16"


def step(env, daemon, wl, name, rate, seconds):
    before = daemon.status_cli()
    run = wl.rate(name, rate, seconds)
    settled = daemon.settle()
    after = daemon.status_cli()
    rec = daemon.totals_by_exe(str(run.client.path.parent) + "/")
    c = rec.get(str(run.client.path), {"events": 0, "send": 0, "recv": 0})
    s = rec.get(str(run.server.path), {"events": 0, "send": 0, "recv": 0})
    truth_flows = run.connections + run.accepted
    recorded_flows = (c["events"] or 0) + (s["events"] or 0)
    # Payload of every flow, both ends: what the clients sent is what the servers
    # received and the other way round.
    truth_bytes = 2 * (run.sent + run.received)
    recorded_bytes = sum((x["send"] or 0) + (x["recv"] or 0) for x in (c, s))
    reported = {k: v for k, v in loss_delta(before, after).items() if v}
    r = {"requested": rate, "achieved": run.achieved, "seconds": run.elapsed, "connections": run.connections,
         "accepted": run.accepted, "flows": truth_flows, "flows_recorded": recorded_flows,
         "flows_missing": truth_flows - recorded_flows, "bytes": truth_bytes, "bytes_recorded": recorded_bytes,
         "bytes_missing": truth_bytes - recorded_bytes, "reported_losses": reported,
         "rows_written": (after.get("writer") or {}).get("rows_written", 0) - (before.get("writer") or {}).get("rows_written", 0)}
    # Seconds from the end of the traffic until the history stopped changing (None: it
    # never did within the wait): how far the daemon ran behind.
    r["settle_seconds"] = settled
    r["clean"] = r["flows_missing"] == 0 and r["bytes_missing"] == 0 and not reported
    env.log(f"capacity: {rate:g}/s asked, {r['achieved']:.0f}/s made, flows missing {r['flows_missing']}, "
            f"bytes missing {r['bytes_missing']}, reported {reported or 'nothing'}, history "
            + (f"settled after {settled} s" if settled is not None else "still changing at the end of the wait"))
    return r


def run(env, binaries, lab, smoke, workdir):
    rates, seconds = ([1000, 3000], 3) if smoke else (RATES, 10)
    wl = Loopback(binaries.traffic, workdir / "capacity", lab.exec_prefix(lab.host), "c")
    steps = []
    daemon = Daemon(binaries.picosnitch, workdir).start()
    try:
        for i, rate in enumerate(rates):
            r = step(env, daemon, wl, f"pc{i}", rate, seconds)
            steps.append(r)
            # The machine cannot make more: higher steps would measure the generator.
            if r["achieved"] < 0.8 * rate and len(steps) >= 2 and steps[-2]["achieved"] >= r["achieved"] * 0.95:
                break
            if not r["clean"] and len(steps) >= 2 and not steps[-2]["clean"]:
                break
    finally:
        daemon.stop()
    forced = None
    if not smoke and all(s["clean"] for s in steps):
        env.log("capacity: no loss with the defaults; forcing losses with a 16-page ring buffer")
        d = Daemon(binaries.picosnitch, workdir, SMALL_RING).start()
        try:
            top = max(steps, key=lambda s: s["achieved"])["requested"]
            forced = step(env, d, wl, "pcf", top, seconds)
            forced["config"] = SMALL_RING
        finally:
            d.stop()
    clean = []
    for s in steps:
        if not s["clean"]:
            break
        clean.append(s)
    return {"seconds_per_step": seconds, "steps": steps, "forced": forced,
            "highest_clean": max((s["achieved"] for s in clean), default=None),
            "highest_made": max((s["achieved"] for s in steps), default=None)}


def settled(step):
    if "settle_seconds" not in step:
        return "–"
    return "still changing" if step["settle_seconds"] is None else f"{step['settle_seconds']:g}"


def render(result):
    rows = []
    for s in result["steps"] + ([result["forced"]] if result.get("forced") else []):
        label = f"{s['requested']:,}" + (" (16-page ring)" if s.get("config") else "")
        rows.append([label, num(s["achieved"]), num(s["flows"]), num(s["rows_written"]), num(s["flows_missing"]),
                     num(s["bytes_missing"]),
                     ", ".join(f"{k} {v}" for k, v in s["reported_losses"].items()) or "none",
                     settled(s), "yes" if s["clean"] else "**no**"])
    hc = result["highest_clean"]
    return "\n".join([
        f"Each step {result['seconds_per_step']} s on loopback, default configuration; two flows per connection "
        "(client and server). Missing = generators' own counts minus what the history holds once it stopped "
        "changing for a whole write period. \"Stable after\" is the time from the end of the traffic to then: at "
        "least two write periods (22 s by default); more means the daemon ran behind the traffic.",
        "",
        table(["asked (conn/s)", "made (conn/s)", "flows", "rows written", "flows missing", "bytes missing",
               "daemon reports lost", "history stable after (s)", "nothing lost"], rows),
        "",
        f"Highest rate recorded without any loss: {num(hc)} connections/s"
        + (f"; the highest this machine made was {num(result['highest_made'])}/s." if result["highest_made"] else "."),
    ])


def targets(result):
    hc = result.get("highest_clean")
    if hc is None:
        return [("zero lost events at 20,000 new connections/s", "losses at the lowest rate", False)]
    if hc >= 20000 * 0.98:
        return [("zero lost events at 20,000 new connections/s", f"none lost up to {hc:,.0f}/s", True)]
    made = result.get("highest_made") or 0
    if made < 20000 * 0.98 and all(s["clean"] for s in result["steps"]):
        return [("zero lost events at 20,000 new connections/s",
                 f"not reached: this machine made at most {made:,.0f}/s, none lost up to there", None)]
    return [("zero lost events at 20,000 new connections/s", f"losses above {hc:,.0f}/s", False)]
