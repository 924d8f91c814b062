"""report.md: where and what was measured, the issue's targets met or missed, then one
table per section."""
from .markdown import table
from .sections import accuracy, capacity, footprint, overhead, sandbox, storage

RENDER = {
    "accuracy": ("Accuracy", lambda r, sc: accuracy.render(r, sc)),
    "overhead": ("Overhead", lambda r, sc: overhead.render(r)),
    "capacity": ("Capacity", lambda r, sc: capacity.render(r)),
    "footprint": ("Footprint", lambda r, sc: footprint.render(r)),
    "storage": ("Storage", lambda r, sc: storage.render(r)),
    "sandbox": ("Cost of confinement", lambda r, sc: sandbox.render(r)),
}
TARGETS = {"accuracy": accuracy, "overhead": overhead, "capacity": capacity, "footprint": footprint}


def render(results, scenarios):
    m = results["machine"]
    ls, le = results["load_start"], results.get("load_end")
    lines = [
        "# picosnitch benchmark report",
        "",
        ("**Smoke run** (CI): a few scenarios, one trial, short phases. Its numbers say the suite works, "
         "not how fast anything is." if results.get("smoke") else "Full run."),
        "",
        f"- command: `{results.get('command')}`, started {results.get('started')}, took {results.get('seconds', '?')} s"
        + (" (**interrupted**)" if results.get("interrupted") else ""),
        f"- machine: {m['cpu_model']}, {m['cpus']} CPUs, {m['memory_mib']} MiB, {m['os']} ({m['arch']})",
        f"- kernel: Linux {m['kernel']} `{m['kernel_build']}`",
        f"- load average at start: {ls['1min']:.2f} / {ls['5min']:.2f} / {ls['15min']:.2f} (1/5/15 min)"
        + (f"; at end: {le['1min']:.2f} / {le['5min']:.2f} / {le['15min']:.2f}" if le else ""),
        "- other programs share this machine: absolute figures move with the load; ratios measured within one run "
        "(daemon on against off, alternated) are what compare.",
        "",
        "## Versions",
        "",
        table(["what", "version"], [[k, v] for k, v in (results.get("versions") or {}).items()]),
        "",
    ]
    rows = []
    for name, mod in TARGETS.items():
        r = results["sections"].get(name)
        if r is None:
            continue
        if "error" in r:
            rows.append([name, "section failed", r["error"], "not measured"])
            continue
        for target, measured, met in mod.targets(r):
            rows.append([name, target, measured, "met" if met else ("**MISSED**" if met is False else "not measured")])
    if rows:
        lines += ["## Targets (issue 8)", "", table(["section", "target", "measured", "verdict"], rows), ""]
    for name, (title, fn) in RENDER.items():
        r = results["sections"].get(name)
        if r is None:
            continue
        lines += [f"## {title}", ""]
        if "error" in r:
            lines += [f"The section failed: {r['error']}", ""]
            continue
        lines += [fn(r, scenarios), "", f"({r.get('seconds', '?')} s)", ""]
    return "\n".join(lines) + "\n"
