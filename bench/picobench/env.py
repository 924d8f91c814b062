"""What the benchmark needs from the machine beyond its own binaries: Debian packages
for the peers (installed with apt-get only when missing), and a log for progress."""
import shutil
import subprocess
import sys
import time

from .proc import CommandFailed, run


class Env:
    def __init__(self, workdir, cache, quiet=False):
        self.workdir = workdir
        self.cache = cache
        self.quiet = quiet
        self.started = time.monotonic()
        self._apt_updated = False

    def log(self, msg):
        if not self.quiet:
            print(f"[bench {time.monotonic() - self.started:6.0f}s] {msg}", file=sys.stderr, flush=True)

    def installed(self, package):
        p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        return p.returncode == 0 and "install ok installed" in p.stdout

    def apt_install(self, packages, why):
        if not shutil.which("apt-get"):
            raise CommandFailed(f"{' '.join(packages)} ({why}): no apt-get on this machine")
        missing = [p for p in packages if not self.installed(p)]
        if not missing:
            return
        self.log(f"apt-get install {' '.join(missing)} ({why})")
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
        if run(cmd, timeout=600, check=False, env=env).returncode != 0:
            self.apt_update()
            run(cmd, timeout=600, env=env)

    def apt_download(self, package, dest):
        cmd = ["apt-get", "download", "-qq", package]
        if run(cmd, timeout=300, check=False, cwd=dest).returncode != 0:
            self.apt_update()
            run(cmd, timeout=300, cwd=dest)

    def apt_update(self):
        if not self._apt_updated:
            run(["apt-get", "update", "-qq"], timeout=600)
            self._apt_updated = True
