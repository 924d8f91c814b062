"""Processes the benchmark starts: bounded waits, clean stops, and what each costs.

Every process started here is tracked by its pid and stopped by it; nothing is ever
killed by name, since other programs on the machine may share names with ours.
"""
import os
import signal
import subprocess
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


class CommandFailed(RuntimeError):
    """A command the benchmark needed failed; the message names it and says why."""


def run(args, timeout=120, check=True, **kw):
    """Runs to completion within `timeout` seconds; output captured as text."""
    try:
        p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise CommandFailed(f"{' '.join(map(str, args))}: no end within {timeout} s") from e
    except FileNotFoundError as e:
        raise CommandFailed(f"{args[0]}: not installed ({e})") from e
    if check and p.returncode != 0:
        raise CommandFailed(f"{' '.join(map(str, args))}: exit status {p.returncode}: {p.stderr.strip()[-800:]}")
    return p


class Background:
    """A long-running process with its output in files, stopped by pid."""

    def __init__(self, args, out_path, err_path=None, env=None, new_session=True):
        self.args = [str(a) for a in args]
        self.out_path = Path(out_path)
        self.err_path = Path(err_path) if err_path else self.out_path.with_suffix(".err")
        self._out = open(self.out_path, "w")
        self._err = open(self.err_path, "w")
        # Its own session: a stop signal can go to the whole group it may have started
        # (ip netns exec, unshare and sh exec in place, so the group is the tool itself).
        self.popen = subprocess.Popen(self.args, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                      env=env, start_new_session=new_session)
        self.pid = self.popen.pid

    def exited(self):
        """None while running, else a sentence on how it ended with the end of its stderr."""
        code = self.popen.poll()
        if code is None:
            return None
        return f"exited with status {code}: {tail(self.err_path) or tail(self.out_path) or 'no output'}"

    def stop(self, sig=signal.SIGTERM, grace=15):
        """Signals the process group, waits `grace` seconds, then SIGKILL."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=10)
        self._out.close()
        self._err.close()
        return self.popen.returncode


def tail(path, chars=600):
    try:
        text = Path(path).read_text(errors="replace").strip()
    except FileNotFoundError:
        return ""
    return text[-chars:].replace("\n", " | ")


def cpu_seconds(pid):
    """utime + stime of one process so far, 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def pss_kib(pid):
    """Proportional set size: shared pages split among the processes sharing them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def descendants(pid):
    """pid and every process below it (a tool started through ip netns exec, sudo, ...)."""
    children = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def wait_until(what, cond, timeout, interval=0.1):
    """Polls `cond` until it returns something true; raises with `what` after `timeout`."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise CommandFailed(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
