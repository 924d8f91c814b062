"""picosnitch itself, read from the history it writes (what its users query)."""
from ..daemon import Daemon, loss_delta, version
from .base import Observation, Observer, Unavailable


class Picosnitch(Observer):
    name = "picosnitch"
    counts = "payload"
    names_by = "path"

    def __init__(self, binaries):
        self.binary = binaries.picosnitch
        self.daemon = None
        self.status_before = {}
        self.status_after = {}

    def install(self, env):
        return version(self.binary)

    def start(self, lab, workdir):
        try:
            self.daemon = Daemon(self.binary, workdir).start()
        except Exception as e:  # noqa: BLE001 (any failure to start is reported as the reason)
            raise Unavailable(f"the daemon did not start: {e}") from e
        self.status_before = self.daemon.status()

    def failure(self):
        if self.daemon and self.daemon.proc and self.daemon.proc.exited():
            return f"the daemon {self.daemon.proc.exited()}"
        return None

    def settle(self):
        """Before reading: everything seen is written."""
        self.daemon.settle()
        self.status_after = self.daemon.status_cli()

    def stop(self):
        if self.daemon:
            self.daemon.stop()

    def losses(self):
        return loss_delta(self.status_before, self.status_after)

    def observe(self, subject, trial):
        rows = self.daemon.rows(subject.gen.path)
        if not rows:
            return Observation(seen=False)
        o = Observation(seen=True, sent=sum(r["send"] for r in rows), received=sum(r["recv"] for r in rows),
                        connections=sum(r["events"] for r in rows))
        # Blaming the right program is more than the name: the binary's hash, and the
        # kind of traffic, its peer and its namespace as the kernel saw them.
        wrong = []
        if any(r["sha256"] != subject.gen.sha256 for r in rows):
            wrong.append("sha256 " + ",".join(sorted({r["sha256"][:12] for r in rows})))
        e = subject.expect
        for key in ("family", "protocol", "netns"):
            if key in e and any(r[key] != e[key] for r in rows):
                wrong.append(f"{key} {sorted({r[key] for r in rows})} (want {e[key]})")
        if "raddr" in e and not any(r["raddr"] == e["raddr"] for r in rows):
            wrong.append(f"remote {sorted({r['raddr'] for r in rows})} (want {e['raddr']})")
        if "rport" in e and not any(r["rport"] == e["rport"] for r in rows):
            wrong.append(f"remote port {sorted({r['rport'] for r in rows})} (want {e['rport']})")
        o.wrong = wrong
        return o

    def cleanup(self):
        if self.daemon:
            self.daemon.remove()

    def pids(self):
        return self.daemon.pids() if self.daemon else []
