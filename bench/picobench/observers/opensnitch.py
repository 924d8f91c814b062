"""The OpenSnitch daemon (Debian package `opensnitch`), an application firewall: it
queues every new outgoing connection to itself through netfilter (NFQUEUE), finds the
process behind it, and asks its UI what to do. Here no UI runs; a rule that allows
everything (the same verdict as its `DefaultAction: allow`, but one that it logs) makes
it write one line per connection with the executable it found, which is what it knows.
It has no byte counts.

The package is unpacked into the benchmark's cache (`apt-get download`, `dpkg-deb -x`)
instead of installed: installing it would enable its service, which would then filter
the whole machine's connections. It reads its configuration from the fixed path
/etc/opensnitchd, so it runs in a private mount namespace where an overlay puts the
benchmark's configuration there; the real /etc is untouched. It runs in the lab's host
namespace, so its netfilter rules exist only there and go with it.
"""
import glob
import json
import os
import re
import shutil
from pathlib import Path

from ..proc import Background, CommandFailed, run
from .base import Observation, Observer, Unavailable, wait_for_output

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# ✔ /tmp/x/pb-tcpup-1 -> 10.251.0.2:40123 (000-allow-all)      (the path is empty when not found)
VERDICT = re.compile(r"([✔✘])\s+(\S*)\s+->\s+(\S+):(\d+)\s+\((.*)\)\s*$")
RUNTIME_PACKAGES = ["libnetfilter-queue1", "libnfnetlink0", "iptables"]

ALLOW_ALL_RULE = {
    "created": "2026-01-01T00:00:00Z",
    "updated": "2026-01-01T00:00:00Z",
    "name": "000-allow-all",
    "enabled": True,
    "precedence": False,
    "action": "allow",
    "duration": "always",
    "operator": {"type": "simple", "operand": "true", "sensitive": False, "data": "", "list": []},
}


def verdicts(text):
    """(offset just past the line, path, address, port) of every connection it decided."""
    out = []
    offset = 0
    for line in text.splitlines(keepends=True):
        offset += len(line.encode())
        m = VERDICT.search(ANSI.sub("", line))
        if m:
            out.append((offset, m.group(2), m.group(3), int(m.group(4))))
    return out


class OpenSnitch(Observer):
    name = "opensnitch"
    counts = None
    names_by = "path"

    def __init__(self, cache):
        self.root = Path(cache) / "opensnitch"
        self.binary = self.root / "usr" / "bin" / "opensnitchd"
        self.proc = None
        self.log = None
        self._verdicts = None
        self.monitor_method = None

    def install(self, env):
        env.apt_install(RUNTIME_PACKAGES, why="what the unpacked opensnitchd needs at run time")
        if not self.binary.exists():
            deb_dir = self.root.parent / "debs"
            deb_dir.mkdir(parents=True, exist_ok=True)
            try:
                env.apt_download("opensnitch", deb_dir)
            except CommandFailed as e:
                raise Unavailable(f"apt-get download opensnitch failed: {e}") from e
            debs = sorted(glob.glob(str(deb_dir / "opensnitch_*.deb")))
            if not debs:
                raise Unavailable(f"apt-get download opensnitch left no package in {deb_dir}")
            shutil.rmtree(self.root, ignore_errors=True)
            run(["dpkg-deb", "-x", debs[-1], self.root])
        try:
            out = run([self.binary, "-version"], check=False)
        except CommandFailed as e:
            raise Unavailable(f"opensnitchd does not run: {e}") from e
        return "opensnitchd " + (out.stdout.strip() or out.stderr.strip())

    def start(self, lab, workdir):
        w = Path(workdir) / "opensnitch"
        shutil.rmtree(w, ignore_errors=True)
        upper, overlay_work, rules = w / "upper", w / "overlay-work", w / "rules"
        for d in (upper / "opensnitchd", overlay_work, rules):
            d.mkdir(parents=True)
        packaged = self.root / "etc" / "opensnitchd"
        config = json.loads((packaged / "default-config.json").read_text())
        self.log = w / "opensnitchd.log"
        config["Server"]["Address"] = f"unix://{w / 'ui.sock'}"  # nobody listens: no UI
        config["Server"]["LogFile"] = str(self.log)
        config["DefaultAction"] = "allow"
        config["LogLevel"] = 0  # debug: the level its per-connection lines are written at
        (upper / "opensnitchd" / "default-config.json").write_text(json.dumps(config, indent=2))
        shutil.copy(packaged / "system-fw.json", upper / "opensnitchd" / "system-fw.json")
        (rules / "000-allow-all.json").write_text(json.dumps(ALLOW_ALL_RULE, indent=2))
        script = ('mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc && '
                  'exec "$3" -rules-path "$4" -debug -log-file "$5"')
        self.proc = Background([*lab.exec_prefix(lab.host), "unshare", "--mount", "--propagation", "private",
                                "sh", "-c", script, "sh", upper, overlay_work, self.binary, rules, self.log],
                               w / "stdout")
        self._verdicts = None
        wait_for_output(self.proc, self.log, "Running on netfilter queue", 20, "opensnitchd")
        text = ANSI.sub("", self.log.read_text(errors="replace"))
        m = re.search(r"(?i)process monitor method[^\n]*", text)
        self.monitor_method = m.group(0).strip() if m else None

    def failure(self):
        return self.proc and self.proc.exited() and f"opensnitchd {self.proc.exited()}"

    def mark(self):
        return os.path.getsize(self.log) if self.log and self.log.exists() else 0

    def stop(self):
        if self.proc:
            # SIGTERM: it removes its netfilter rules on the way out.
            self.proc.stop()

    def decided(self):
        if self._verdicts is None:
            self._verdicts = verdicts(self.log.read_text(errors="replace")) if self.log else []
        return self._verdicts

    def observe(self, subject, trial):
        path = str(subject.gen.path)
        mine = [v for v in self.decided() if v[1] == path]
        window = trial.marks.get(self.name)
        others = None
        if window:
            # Connections of this trial it could not name (or named wrongly): in the
            # trial's window, with no subject of the trial as their executable.
            start, end = window
            subjects = {str(s.gen.path) for s in trial.subjects}
            others = sum(1 for off, p, _, _ in self.decided() if start < off <= end and p not in subjects)
        return Observation(seen=bool(mine), connections=len(mine), unattributed=others)

    def diagnostics(self):
        """Its warnings and errors (the lines at those levels), and the process monitor
        method it says it uses."""
        if not self.log or not self.log.exists():
            return None
        lines = [ANSI.sub("", x).strip() for x in self.log.read_text(errors="replace").splitlines()]
        return {"monitor_method": self.monitor_method,
                "warnings": [x for x in lines if " WAR " in x or " ERR " in x][:20]}

    def pids(self):
        return [self.proc.pid] if self.proc and not self.proc.exited() else []
