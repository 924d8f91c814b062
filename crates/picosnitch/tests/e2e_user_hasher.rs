//! Hashing as the desktop user, end to end: a real FUSE mount (bindfs, without
//! `allow_other`) made by a desktop test user holds an executable only that user may
//! read; root is refused it (checked here), so the daemon's user-hasher role, running
//! as that user, hashes it. A second test stops the FUSE server (SIGSTOP) so that the
//! read hangs, and checks the `[desktop] hash_timeout_seconds` marker, the counters,
//! that the abandoned read is let go of once the server answers again (the file is then
//! hashed for a new process), and that the mount and its processes are gone
//! afterwards.
mod common;

use common::session_bus::ensure_account;
use common::*;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The desktop users of these tests (accounts: fusermount needs one). One per test:
/// every daemon sees the whole machine, and a daemon of the one user may not read the
/// other's mount, so neither test's hasher touches the other's files.
const FUSE_USER: (&str, u32) = ("picosnitch-fuse-test", 61350);
const HUNG_USER: (&str, u32) = ("picosnitch-fuse-hung", 61351);

fn bindfs_or_skip(test: &str) -> bool {
    let have = |p: &str| Path::new(p).exists();
    if have("/usr/bin/bindfs") && (have("/usr/bin/fusermount") || have("/bin/fusermount")) && have("/dev/fuse") {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs bindfs, fusermount and /dev/fuse (scripts/install-deps.sh installs bindfs and fuse)");
    }
    eprintln!("SKIPPED {test}: needs bindfs and fusermount (apt-get install bindfs fuse) and /dev/fuse");
    false
}

fn mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = path.display().to_string();
    info.lines().any(|l| l.split_whitespace().nth(4) == Some(p.as_str()))
}

fn as_user(cmd: &mut Command, (uid, gid): (u32, u32)) -> &mut Command {
    // Real, effective and saved ids all the user's: FUSE admits nobody else.
    cmd.uid(uid).gid(gid)
}

/// A bindfs mount of a directory only the desktop test user may read, made by that
/// user, with no `allow_other`: the shape of a user's sshfs or AppImage mount.
struct FuseMount {
    _dir: tempfile::TempDir,
    src: PathBuf,
    mnt: PathBuf,
    user: (u32, u32),
    server: Option<Child>,
}

impl FuseMount {
    fn new(user: (u32, u32)) -> FuseMount {
        let dir = tempfile::Builder::new().prefix("picosnitch-fuse-").tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let root = dir.path().canonicalize().expect("canonical");
        let (src, mnt) = (root.join("src"), root.join("mnt"));
        for d in [&src, &mnt] {
            std::fs::create_dir(d).expect("mkdir");
            std::os::unix::fs::chown(d, Some(user.0), Some(user.1)).expect("chown");
        }
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o700)).expect("chmod src");
        FuseMount { _dir: dir, src, mnt, user, server: None }
    }

    /// Copies `from` in as an executable only the user may read; returns its source
    /// path and its path on the mount.
    fn add(&self, from: &Path, name: &str) -> (PathBuf, PathBuf) {
        let f = self.src.join(name);
        std::fs::copy(from, &f).expect("copying into the mount's source");
        std::os::unix::fs::chown(&f, Some(self.user.0), Some(self.user.1)).expect("chown");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        (f, self.mnt.join(name))
    }

    /// Mounts, as the user. libfuse opens /dev/fuse itself before it hands the mount to
    /// fusermount; where no udev made /dev/fuse 0666, as on a desktop, it is made so for
    /// the moment of the mount only, under a lock shared by the tests.
    fn mount(&mut self) {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/picosnitch-test-dev-fuse.lock")
            .expect("lock file");
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0, "flock");
        let mode = std::fs::metadata("/dev/fuse").expect("/dev/fuse").mode() & 0o7777;
        let opened = mode & 0o006 != 0o006;
        if opened {
            std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(0o666)).expect("chmod /dev/fuse");
        }
        // -f: in the foreground, so the test owns the server's process.
        let server = as_user(&mut Command::new("bindfs"), self.user)
            .args(["-f", "--no-allow-other"])
            .arg(&self.src)
            .arg(&self.mnt)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting bindfs");
        self.server = Some(server);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !mounted(&self.mnt) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if opened {
            std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(mode)).expect("restoring /dev/fuse");
        }
        drop(lock);
        assert!(mounted(&self.mnt), "bindfs did not mount {}", self.mnt.display());
    }

    fn server_pid(&self) -> i32 {
        self.server.as_ref().map(|c| c.id() as i32).expect("mounted")
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling the server this test started.
        unsafe { libc::kill(self.server_pid(), sig) };
    }

    /// Unmounts and ends the server; Err says what was left.
    fn unmount(&mut self) -> Result<(), String> {
        let Some(mut server) = self.server.take() else { return Ok(()) };
        // SAFETY: signalling the server this test started (it may be stopped).
        unsafe { libc::kill(server.id() as i32, libc::SIGCONT) };
        let fusermount = if Path::new("/usr/bin/fusermount").exists() { "/usr/bin/fusermount" } else { "/bin/fusermount" };
        // Busy while some process still reads a file on it: tried again for a while.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = String::new();
        while mounted(&self.mnt) && Instant::now() < deadline {
            match as_user(&mut Command::new(fusermount), self.user).arg("-u").arg(&self.mnt).output() {
                Ok(out) if out.status.success() => break,
                Ok(out) => last = String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut problems = Vec::new();
        if mounted(&self.mnt) {
            problems.push(format!("fusermount -u failed for 10 s ({last}); unmounted lazily"));
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        let ended = |server: &mut Child, within: Duration| {
            let deadline = Instant::now() + within;
            while Instant::now() < deadline && server.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            server.try_wait().ok().flatten().is_some()
        };
        // The server ends when the filesystem does, which is not at the unmount when a
        // mount namespace made meanwhile (`ip netns exec`, anywhere on the machine) holds
        // a copy of the mount: then it is told to end, which ends the copies' filesystem.
        if !ended(&mut server, Duration::from_secs(2)) {
            // SAFETY: signalling the server this test started.
            unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
        }
        if !ended(&mut server, Duration::from_secs(10)) {
            let state = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap_or_default();
            let state = state.lines().find(|l| l.starts_with("State:")).unwrap_or_default().to_string();
            let stack = std::fs::read_to_string(format!("/proc/{}/stack", server.id())).unwrap_or_default();
            problems.push(format!("bindfs did not end after the unmount ({state}; {stack}); killed"));
            let _ = server.kill();
            let _ = server.wait();
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// Ends a child on every path out of the test.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn desktop(uid: u32, extra: &str) -> String {
    format!("[desktop]\nuser = \"{uid}\"\nnotifications = false\n{extra}")
}

fn account((name, uid): (&str, u32)) -> (u32, u32) {
    (uid, ensure_account(name, uid))
}

#[test]
fn an_executable_only_the_desktop_user_can_read_on_fuse_is_hashed_as_that_user() {
    let test = "an_executable_only_the_desktop_user_can_read_on_fuse_is_hashed_as_that_user";
    if !root_or_skip(test) || !bindfs_or_skip(test) {
        return;
    }
    let user = account(FUSE_USER);
    let mut fuse = FuseMount::new(user);
    let (source, on_mount) = fuse.add(&traffic_binary(), "userhash-fuse-app");
    fuse.mount();
    // Root (this test, with every capability) may not open it: the service cannot either.
    let refused = std::fs::File::open(&on_mount).expect_err("root must be refused on a FUSE mount without allow_other");
    assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied, "{refused}");

    let d = Daemon::start(&desktop(user.0, ""));
    let out = as_user(&mut Command::new(&on_mount), user)
        .args(["udp-client", "--to", "127.0.0.1:9", "--count", "1", "--size", "8"])
        .output()
        .expect("running the program on the mount as the desktop user");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let rows = d.wait_rows(&on_mount, Duration::from_secs(60), |r| !r.is_empty());
    assert_eq!(rows[0].exe, on_mount.display().to_string());
    assert_eq!(rows[0].sha256, sha256_of(&source), "the real sha256, hashed by the desktop user");
    assert_eq!(rows[0].uid, i64::from(user.0));
    // Each role reports its counts on its own schedule: wait for both. At least one
    // request: the primary also asks about the other test's files, which this user may
    // not read (so only this file is hashed).
    let st = d.wait_status("the user-hasher's and the primary's counts", Duration::from_secs(10), |st| {
        st["user_hasher"]["files_hashed"].as_u64() >= Some(1) && st["primary"]["user_hash_requests"].as_u64() >= Some(1)
    });
    assert_eq!(st["user_hasher"]["bytes_hashed"], std::fs::metadata(&source).expect("size").len(), "{st:#}");

    // The role runs as the desktop user, with nothing else.
    let pid = d.role_pid("user-hasher");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("role status");
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_string();
    assert!(field("Uid:").split_whitespace().all(|u| u == user.0.to_string()), "{}", field("Uid:"));
    assert!(field("Gid:").split_whitespace().all(|g| g == user.1.to_string()), "{}", field("Gid:"));
    assert_eq!(field("CapEff:"), "0000000000000000");
    assert_eq!(field("CapPrm:"), "0000000000000000");
    assert_eq!(field("Seccomp:"), "2");
    drop(d);
    if let Err(e) = fuse.unmount() {
        panic!("the mount and its server are not gone: {e}");
    }
}

#[test]
fn a_hung_fuse_server_is_recorded_as_a_hash_timeout_and_let_go_of() {
    let test = "a_hung_fuse_server_is_recorded_as_a_hash_timeout_and_let_go_of";
    if !root_or_skip(test) || !bindfs_or_skip(test) {
        return;
    }
    let user = account(HUNG_USER);
    let mut fuse = FuseMount::new(user);
    // A shell on the mount is the parent of the connecting program: it is hashed as the
    // parent once the server is stopped, while it waits (a program on the mount could
    // not itself run on with its server stopped).
    let (shell_source, shell) = fuse.add(Path::new("/bin/dash"), "userhash-fuse-shell");
    fuse.mount();
    let child = Traffic::new("userhash-hang-child");
    let child_dir = child.path.parent().expect("dir");
    std::fs::set_permissions(child_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let d = Daemon::start(&desktop(user.0, "hash_timeout_seconds = 2\n"));
    let script = format!("read go; {} udp-client --to 127.0.0.1:9 --count 1 --size 8; read done", child.path.display());
    let mut sh = Reaped(
        as_user(&mut Command::new(&shell), user)
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the shell on the mount"),
    );
    // Every page of the shell into the page cache, so that it runs on once its server
    // is stopped; then stop the server.
    let st = as_user(&mut Command::new("cat"), user).arg(&shell).stdout(Stdio::null()).status().expect("cat");
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(300));
    fuse.signal(libc::SIGSTOP);
    let mut stdin = sh.0.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("starting the child");

    let rows = d.wait_rows(&child.path, Duration::from_secs(60), |r| r.first().is_some_and(|r| !r.psha256.is_empty()));
    assert_eq!(rows[0].pexe, shell.display().to_string());
    assert_eq!(rows[0].psha256, "!hash-timeout", "{rows:#?}");
    assert_eq!(rows[0].sha256, child.sha256(), "the child itself is hashed as usual");
    let st = d.wait_status("the timeout counted", Duration::from_secs(10), |st| {
        st["user_hasher"]["timeouts"] == 1 && st["user_hasher"]["reads_hung"] == 1 && st["primary"]["user_hash_timeouts"] == 1
    });
    assert_eq!(st["user_hasher"]["files_hashed"], 0, "the shell was never read: {st:#}");
    let shown = Command::new(DAEMON).arg("status").arg("--config").arg(&d.config).output().expect("picosnitch status");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("timed out 1") && shown.contains("reads hung now 1"), "{shown}");

    // The server answers again: the abandoned read returns and is counted off.
    fuse.signal(libc::SIGCONT);
    d.wait_status("the hung read returned", Duration::from_secs(20), |st| st["user_hasher"]["reads_hung"] == 0);
    d.wait_log(&["a hung read returned"], Duration::from_secs(5));
    // And the filesystem is hashed again: a new shell from the mount, parent of a new
    // connection, is recorded with its real sha256 (`; true`: the program is not the
    // last command, which the shell would exec in its own place).
    let again = format!("{} udp-client --to 127.0.0.1:9 --count 1 --size 8; true", child.path.display());
    let st = as_user(&mut Command::new(&shell), user).args(["-c", &again]).stdout(Stdio::null()).status().expect("shell again");
    assert!(st.success());
    let dash = sha256_of(&shell_source);
    d.wait_rows(&child.path, Duration::from_secs(30), |r| r.iter().any(|r| r.psha256 == dash));

    stdin.write_all(b"done\n").expect("ending the shell");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sh.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = fuse.server_pid();
    if let Err(e) = fuse.unmount() {
        panic!("the mount and its server are not gone: {e}");
    }
    assert!(!Path::new(&format!("/proc/{server}")).exists(), "bindfs ended");
    assert!(!mounted(&fuse.mnt));
}
