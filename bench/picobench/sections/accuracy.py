"""Accuracy: does each tool see every kind of traffic, blame the right executable, and
count the right bytes? Every scenario runs several trials, each under executable names
of its own, while all tools watch at once; each tool is then asked what it recorded
for each trial's executables and scored against the generators' own counts (and, for
tools that count packets, against the peer's interface counters)."""
import time
from dataclasses import dataclass, field

from ..netlab import wire_delta
from ..observers.base import Unavailable
from ..proc import CommandFailed
from ..scenarios import Context, settle_gap
from ..stats import median, ratio, spread

# The target for bulk transfers: payload bytes within 1%.
BULK_TOLERANCE = 0.01


@dataclass
class Trial:
    scenario: object
    index: int
    subjects: list = field(default_factory=list)
    wire: dict | None = None
    marks: dict = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def run(env, binaries, lab, observers, scenarios, sizes, trials, workdir):
    ctx = Context(lab, binaries.traffic, str(workdir / "generators"), sizes)
    state = {}  # observer name -> None (running) or why not
    running = []
    for o in observers:
        if o.name in env.unavailable:
            state[o.name] = env.unavailable[o.name]
            continue
        try:
            env.log(f"accuracy: starting {o.name}")
            o.start(lab, workdir)
            running.append(o)
            state[o.name] = None
        except Unavailable as e:
            state[o.name] = f"could not start: {e}"
    stopped_at = {}  # observer -> (trial number, why) when it died during the run
    done = []
    try:
        for t in range(1, trials + 1):
            for sc in scenarios:
                env.log(f"accuracy: {sc.id} trial {t}/{trials}")
                done.append(one_trial(ctx, lab, running, sc, t))
                for o in running:
                    why = o.failure()
                    if why and o.name not in stopped_at:
                        stopped_at[o.name] = (len(done), f"stopped during {sc.id} trial {t}: {why}")
        for o in running:
            if hasattr(o, "settle") and o.name not in stopped_at:
                env.log(f"accuracy: waiting for {o.name} to write what it saw")
                o.settle()
    finally:
        for o in running:
            o.stop()
    return score(done, observers, state, stopped_at, running)


def one_trial(ctx, lab, running, sc, t):
    trial = Trial(sc, t)
    counters = (lambda: lab.counters(lab.host, "lo")) if sc.wire == "loopback" else lab.counters
    marks = {o.name: o.mark() for o in running if hasattr(o, "mark")}
    before = counters()
    started = time.monotonic()
    try:
        trial.subjects = sc.run(ctx, t)
    except CommandFailed as e:
        trial.error = str(e)
    trial.seconds = time.monotonic() - started
    trial.wire = wire_delta(before, counters(), loopback=sc.wire == "loopback")
    settle_gap()
    trial.marks = {name: (start, o.mark()) for o in running if hasattr(o, "mark") for name, start in [(o.name, marks[o.name])]}
    return trial


def wire_truth(trial, subject):
    """What the wire carried for this subject, by the peer's (or loopback's) counters."""
    w = trial.wire
    if not w:
        return None
    if len(trial.subjects) == 1:
        return {"frames": w["frames"], "ip": w["ip"]}
    # Loopback with both ends watched: every packet is one end's send and the other's
    # receive, so each end's total is the whole wire.
    return {"frames": {"up": None, "down": None, "total": w["frames"]["total"]},
            "ip": {"up": None, "down": None, "total": w["ip"]["total"]}}


def judge(o, obs, subject, trial):
    truth_total = subject.sent + subject.received
    cell = {"seen": obs.seen, "right": obs.seen and not obs.wrong, "wrong": obs.wrong, "notes": obs.notes,
            "sent": obs.sent, "received": obs.received, "connections": obs.connections,
            "unattributed": obs.unattributed,
            "truth": {"sent": subject.sent, "received": subject.received, "connections": subject.connections}}
    if obs.sent is not None:
        total = obs.sent + obs.received
        cell["payload_ratio"] = ratio(total, truth_total)
        cell["sent_ratio"] = ratio(obs.sent, subject.sent)
        cell["received_ratio"] = ratio(obs.received, subject.received)
        wt = wire_truth(trial, subject)
        if wt:
            cell["wire"] = wt
            cell["frames_ratio"] = ratio(total, wt["frames"]["total"])
            cell["ip_ratio"] = ratio(total, wt["ip"]["total"])
        # Each tool against what it claims to count.
        basis = {"payload": cell.get("payload_ratio"), "frames": cell.get("frames_ratio")}.get(o.counts)
        cell["ratio"] = basis
        cell["bytes_ok"] = basis is not None and abs(basis - 1) <= BULK_TOLERANCE
    return cell


def score(done, observers, state, stopped_at, running):
    rows = []
    for n, trial in enumerate(done, start=1):
        for subject in trial.subjects or [None]:
            row = {"scenario": trial.scenario.id + (f":{subject.role}" if subject and subject.role != "client" else ""),
                   "title": trial.scenario.title, "trial": trial.index,
                   "bulk": trial.scenario.bulk, "seconds": round(trial.seconds, 2), "error": trial.error,
                   "executable": str(subject.gen.path) if subject else None, "wire": trial.wire, "tools": {}}
            for o in observers:
                if state.get(o.name):
                    row["tools"][o.name] = {"status": "unavailable", "reason": state[o.name]}
                elif o.name in stopped_at and stopped_at[o.name][0] <= n:
                    row["tools"][o.name] = {"status": "stopped", "reason": stopped_at[o.name][1]}
                elif subject is None:
                    row["tools"][o.name] = {"status": "no traffic", "reason": trial.error}
                else:
                    row["tools"][o.name] = {"status": "ok", **judge(o, o.observe(subject, trial), subject, trial)}
            rows.append(row)
    extra = {o.name: o.losses() for o in running if hasattr(o, "losses")}
    return {"trials": rows, "tools": {o.name: {"counts": o.counts, "names_by": o.names_by, "state": state.get(o.name),
                                               "stopped": stopped_at.get(o.name, (None, None))[1],
                                               "diagnostics": o.diagnostics() if o in running else None}
                                      for o in observers},
            "losses": extra, "summary": summarize(rows, observers)}


def summarize(rows, observers):
    """Per scenario and tool: attribution over trials, byte ratios and their spread, and
    whether the trials disagree."""
    out = {}
    failed = {}  # scenario -> why each trial whose traffic failed did (it is not scored)
    for r in rows:
        if r.get("error"):
            failed.setdefault(r["scenario"], []).append(f"trial {r.get('trial')}: {r['error']}")
        for name, cell in r["tools"].items():
            out.setdefault(r["scenario"], {}).setdefault(name, []).append(cell)
    summary = {}
    for sid, tools in out.items():
        summary[sid] = {}
        for name, cells in tools.items():
            ok = [c for c in cells if c.get("status") == "ok"]
            if not ok:
                summary[sid][name] = {"status": cells[0].get("status"), "reason": cells[0].get("reason"),
                                      "failed_trials": failed.get(sid, [])}
                continue
            ratios = [c.get("ratio") for c in ok]
            payload = [c.get("payload_ratio") for c in ok]
            rights = [c["right"] for c in ok]
            sp = spread(ratios)
            summary[sid][name] = {
                "status": "ok",
                "right": sum(rights), "of": len(ok),
                "ratio_median": median(ratios), "ratio_spread": sp,
                "payload_ratio_median": median(payload),
                "bytes_ok": all(c.get("bytes_ok") for c in ok) if ratios and ratios[0] is not None else None,
                "connections": [c.get("connections") for c in ok],
                "connections_truth": [c["truth"]["connections"] for c in ok],
                "unattributed": [c.get("unattributed") for c in ok],
                "wrong": sorted({w for c in ok for w in c.get("wrong", [])}),
                # A direction the tool reported nothing for although the program moved
                # bytes that way (NetHogs on loopback counts each packet for its sender only).
                "silent": [d for d, k in (("sent", "sent"), ("received", "received"))
                           if any(c.get(k) == 0 and c["truth"][k] > 0 for c in ok)],
                "disagree": len(set(rights)) > 1 or (sp is not None and sp[1] - sp[0] > BULK_TOLERANCE),
                "failed_trials": failed.get(sid, []),
            }
    return summary


def render(result, scenarios):
    from ..markdown import Footnotes, pct, table
    tools = list(result["tools"])
    notes = Footnotes()
    titles = {s.id: (s.title, s.bulk) for s in scenarios}
    servers = {sid.split(":")[0] for sid in result["summary"] if sid.endswith(":server")}
    titles.update({s.id: (s.title + ", client end", s.bulk) for s in scenarios if s.id in servers})
    titles.update({f"{s.id}:server": (s.title + ", server end", s.bulk) for s in scenarios})
    rows = []
    for sid, per_tool in result["summary"].items():
        title, bulk = titles.get(sid, (sid, False))
        line = [title + (" (bulk)" if bulk else "")]
        for name in tools:
            s = per_tool.get(name, {})
            if s.get("status") != "ok":
                line.append(f"{s.get('status', '?')} {notes.ref(s.get('reason') or '')}")
                continue
            text = f"{s['right']}/{s['of']}"
            if s["ratio_median"] is not None:
                text += f" · {pct(s['ratio_median'])}"
                lo, hi = s["ratio_spread"]
                if hi - lo > 0.0001:
                    text += f" ({pct(lo)}–{pct(hi)})"
                if s["silent"]:
                    text += f" (nothing {' or '.join(s['silent'])})"
                counted = [(c, t) for c, t in zip(s["connections"], s["connections_truth"]) if c is not None and t]
                if any(c != t for c, t in counted):
                    text += f" · connections {'/'.join(str(c) for c, _ in counted)} of {counted[0][1]}"
            elif s["connections"] and s["connections"][0] is not None:
                truth = s["connections_truth"][0]
                text += f" · {'/'.join(str(c) for c in s['connections'])} conn" + (f" of {truth}" if truth else "")
            if s["wrong"]:
                text += f" wrong: {notes.ref('; '.join(s['wrong']))}"
            if s["disagree"]:
                text += " **trials disagree**"
            line.append(text)
        failures = next((s["failed_trials"] for s in per_tool.values() if s.get("failed_trials")), [])
        if failures:
            # Scored on the trials that ran; the others' traffic failed before any tool was asked.
            line[0] += f" ({len(failures)} trial(s) failed {notes.ref('; '.join(failures))})"
        rows.append(line)
    basis = {"payload": "application payload", "frames": "Ethernet frames on the wire", None: "no byte counts"}
    head = ["traffic"] + [f"{t} ({basis[result['tools'][t]['counts']]})" for t in tools]
    out = [table(head, rows)]
    if notes.notes:
        out += ["", notes.render()]
    # What each tool saw of the trials' traffic but could not name.
    unrows = []
    for sid, per_tool in result["summary"].items():
        line = [titles.get(sid, (sid,))[0]]
        for name in tools:
            s = per_tool.get(name, {})
            u = [x for x in s.get("unattributed", []) if x is not None] if s.get("status") == "ok" else []
            line.append("/".join(str(x) for x in u) if u else "–")
        unrows.append(line)
    out += ["", "Traffic of the trial seen but not named (bytes per trial; connections for OpenSnitch):", "",
            table(["traffic"] + tools, unrows)]
    for name, losses in result.get("losses", {}).items():
        lost = {k: v for k, v in losses.items() if v}
        out += ["", f"{name} losses during the accuracy runs: {lost or 'none'}."]
    return "\n".join(out)


def targets(result):
    """The issue's accuracy targets, for picosnitch."""
    s = {sid: t.get("picosnitch", {}) for sid, t in result["summary"].items()}
    ok = [x for x in s.values() if x.get("status") == "ok"]
    if not ok:
        return [("every traffic kind attributed to the right executable", "picosnitch did not run", None)]
    missed = [sid for sid, x in s.items() if x.get("status") != "ok" or x["right"] < x["of"]]
    failed = [f"{sid} ({len(x['failed_trials'])} trial(s))" for sid, x in s.items() if x.get("failed_trials")]
    bulk = {row["scenario"] for row in result["trials"] if row["bulk"]}
    off = [f"{sid} {100 * x['ratio_median']:.2f}%" for sid, x in s.items()
           if sid in bulk and x.get("status") == "ok" and not x.get("bytes_ok")]
    return [
        ("every traffic kind attributed to the right executable",
         ("all" if not missed else "not: " + ", ".join(missed))
         + ("; traffic failed, not scored: " + ", ".join(failed) if failed else ""), not missed),
        ("payload bytes within 1% on bulk transfers", "all within" if not off else "outside: " + ", ".join(off), not off),
    ]
