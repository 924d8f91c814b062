//! End-to-end test harness: a real daemon on a temporary database, real traffic from
//! copies of `picosnitch-traffic` under names unique to each test, and queries on the
//! SQLite file the daemon wrote. Tests that need root say so and are skipped without
//! it, except under CI=true where they fail instead (CI runs as root).
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod netns;
pub mod webui;
pub mod session_bus;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::os::unix::process::CommandExt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DAEMON: &str = env!("CARGO_BIN_EXE_picosnitch");

/// The service user and group the tests' daemons run their roles as: a number needs no
/// account on the machine.
pub const SERVICE_UID: u32 = 61337;

/// True when the test may run; otherwise prints why and returns false (or panics in CI).
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN) and CI runs as root: this must not be skipped");
    }
    eprintln!("SKIPPED {test}: needs root to load BPF programs; run the tests with sudo");
    false
}

/// The `picosnitch-traffic` binary built alongside this test.
pub fn traffic_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("picosnitch-traffic");
    assert!(bin.exists(), "{} is missing: build the workspace first (`cargo build --workspace --all-targets`)", bin.display());
    bin
}

pub fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("sha256sum output").to_string()
}

/// A daemon on its own temporary database and runtime directory.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub db: PathBuf,
    env: Vec<(String, String)>,
    /// A command the daemon is started through (empty: none).
    wrapper: Vec<String>,
    child: Option<Child>,
}

impl Daemon {
    /// Starts with `write_limit_seconds = 1` plus `extra` TOML (sections appended), and
    /// waits until it reports ready.
    pub fn start(extra: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db/picosnitch.db");
        Self::start_in(dir, db, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, db: PathBuf, extra: &str) -> Daemon {
        Self::start_with(dir, db, extra, &[])
    }

    pub fn start_in_env(dir: tempfile::TempDir, db: PathBuf, extra: &str, env: &[(&str, &str)]) -> Daemon {
        Self::start_with(dir, db, extra, env)
    }

    /// Starts with extra environment variables for the daemon.
    pub fn start_env(extra: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db/picosnitch.db");
        Self::start_with(dir, db, extra, env)
    }

    fn start_with(dir: tempfile::TempDir, db: PathBuf, extra: &str, env: &[(&str, &str)]) -> Daemon {
        Self::start_wrapped(dir, db, extra, env, &[])
    }

    /// Starts the daemon through `wrapper` (a command that ends by executing its
    /// arguments, such as setpriv with the service unit's limits).
    pub fn start_through(wrapper: &[String]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db/picosnitch.db");
        Self::start_wrapped(dir, db, "", &[], wrapper)
    }

    fn start_wrapped(dir: tempfile::TempDir, db: PathBuf, extra: &str, env: &[(&str, &str)], wrapper: &[String]) -> Daemon {
        // The roles run as SERVICE_UID: it must be able to reach the history's directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod tempdir");
        let config = dir.path().join("config.toml");
        let mut text = format!(
            "[database]\npath = \"{}\"\nwrite_limit_seconds = 1\n{}\n[data]\nruntime_dir = \"{}\"\nowner = \"{SERVICE_UID}\"\ngroup = \"{SERVICE_UID}\"\n{}",
            db.display(),
            extra_in_section(extra, "database"),
            dir.path().join("run").display(),
            extra_in_section(extra, "data"),
        );
        text.push_str(&strip_section(&strip_section(extra, "database"), "data"));
        std::fs::write(&config, text).expect("write config");
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let wrapper = wrapper.to_vec();
        let mut d = Daemon { dir, config, db, env, wrapper, child: None };
        d.spawn();
        d.wait_ready();
        d
    }

    /// Starts the daemon process on this configuration; its log is appended to
    /// `daemon.log`.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("log file");
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(DAEMON);
                c
            }
            None => Command::new(DAEMON),
        };
        // If the test process is killed (a timeout, ^C) its Drop never runs: the daemon
        // must still go, or it keeps BPF programs attached and a state directory busy.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .arg("daemon")
            .arg("--config")
            .arg(&self.config)
            .env("PICOSNITCH_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting picosnitch daemon");
        self.child = Some(child);
    }

    /// Stops the daemon (SIGTERM, asserting a clean exit) and starts it again on the
    /// same configuration, database and state; waits until it is ready.
    pub fn restart(&mut self) {
        assert_eq!(self.stop(), Some(0), "the daemon stops cleanly before its restart; log:\n{}", self.log());
        // The status file of the stopped daemon must not count as the new one's.
        let _ = std::fs::remove_file(self.dir.path().join("run/status.json"));
        self.spawn();
        self.wait_ready();
    }

    /// Waits until the daemon's log has a line containing every one of `parts`.
    pub fn wait_log(&self, parts: &[&str], timeout: Duration) -> String {
        wait_log_line("daemon", || self.log(), parts, timeout)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn status(&self) -> serde_json::Value {
        let path = self.dir.path().join("run/status.json");
        std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(serde_json::Value::Null)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.status()["ready"] == true {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the daemon did not become ready in 30 s; its log:\n{}", self.log());
    }

    /// Waits until `cond` holds for the status file, or panics with `what`.
    pub fn wait_status(&self, what: &str, timeout: Duration, cond: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.status();
            if cond(&st) {
                return st;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; status: {st:#}\nlog:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid of a role's process.
    pub fn role_pid(&self, role: &str) -> u32 {
        let st = self.status();
        st["roles"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["role"] == role))
            .and_then(|r| r["pid"].as_u64())
            .unwrap_or_else(|| panic!("no pid for role {role} in {st:#}")) as u32
    }

    /// Stops with SIGTERM and waits; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the daemon did not stop within 60 s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn db(&self) -> Connection {
        Connection::open_with_flags(&self.db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open the database read-only")
    }

    /// Waits until the rows of executable `exe` satisfy `done`, then returns them.
    pub fn wait_rows(&self, exe: &Path, timeout: Duration, done: impl Fn(&[Row]) -> bool) -> Vec<Row> {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = if self.db.exists() { rows_of(&self.db(), exe) } else { Vec::new() };
            if done(&rows) {
                return rows;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for the rows of {}; have {rows:#?}\nstatus: {:#}\nlog:\n{}",
                    exe.display(),
                    self.status(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(30));
        }
    }
}

/// Stops a child of the test: SIGTERM, then SIGKILL if it has not exited in `grace`.
pub fn terminate(child: &mut Child, grace: Duration) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Keys of `extra` that belong in `[database]` (given as "database.key = value" lines).
fn extra_in_section(extra: &str, section: &str) -> String {
    let prefix = format!("{section}.");
    extra.lines().filter_map(|l| l.strip_prefix(&prefix)).map(|l| format!("{l}\n")).collect()
}

fn strip_section(extra: &str, section: &str) -> String {
    let prefix = format!("{section}.");
    extra.lines().filter(|l| !l.starts_with(&prefix)).map(|l| format!("{l}\n")).collect()
}

/// One stored row with its side-table values.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub contime: i64,
    pub send: i64,
    pub recv: i64,
    pub events: i64,
    pub exe: String,
    pub name: String,
    pub cmdline: String,
    pub sha256: String,
    pub pexe: String,
    pub pname: String,
    pub psha256: String,
    pub gpexe: String,
    pub gpsha256: String,
    pub uid: i64,
    pub family: i64,
    pub protocol: i64,
    pub lport: i64,
    pub rport: i64,
    pub laddr: String,
    pub raddr: String,
    pub netns: i64,
}

pub fn rows_of(db: &Connection, exe: &Path) -> Vec<Row> {
    let sql = "SELECT c.contime, c.send, c.recv, c.events, e.exe, e.name, e.cmdline, e.sha256, p.exe, p.name, p.sha256,
                      g.exe, g.sha256, c.uid, c.family, c.protocol, c.lport, c.rport, la.addr, ra.addr, c.netns
               FROM connections c JOIN executables e ON e.id = c.exe_id JOIN executables p ON p.id = c.pexe_id
               JOIN executables g ON g.id = c.gpexe_id JOIN addresses la ON la.id = c.laddr_id
               JOIN addresses ra ON ra.id = c.raddr_id WHERE e.exe = ?1 ORDER BY c.contime";
    let Ok(mut stmt) = db.prepare(sql) else { return Vec::new() };
    let rows = stmt.query_map([exe.display().to_string()], |r| {
        Ok(Row {
            contime: r.get(0)?,
            send: r.get(1)?,
            recv: r.get(2)?,
            events: r.get(3)?,
            exe: r.get(4)?,
            name: r.get(5)?,
            cmdline: r.get(6)?,
            sha256: r.get(7)?,
            pexe: r.get(8)?,
            pname: r.get(9)?,
            psha256: r.get(10)?,
            gpexe: r.get(11)?,
            gpsha256: r.get(12)?,
            uid: r.get(13)?,
            family: r.get(14)?,
            protocol: r.get(15)?,
            lport: r.get(16)?,
            rport: r.get(17)?,
            laddr: r.get(18)?,
            raddr: r.get(19)?,
            netns: r.get(20)?,
        })
    });
    match rows {
        Ok(rows) => rows.filter_map(Result::ok).collect(),
        Err(_) => Vec::new(),
    }
}

pub fn sums(rows: &[Row]) -> (i64, i64, i64) {
    rows.iter().fold((0, 0, 0), |(s, r, e), x| (s + x.send, r + x.recv, e + x.events))
}

pub fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).optional().ok().flatten().unwrap_or(0)
}

/// A copy of the traffic generator under a name unique to one test, so everything
/// recorded for that path is this test's traffic.
pub struct Traffic {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

/// What the generator reported about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: i64,
    pub received: i64,
    pub pid: u32,
}

impl Traffic {
    pub fn new(name: &str) -> Traffic {
        let dir = tempfile::Builder::new().prefix("picosnitch-e2e-").tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::copy(traffic_binary(), &path).expect("copying picosnitch-traffic");
        // The canonical path is what the kernel reports (no symlinks in /tmp here).
        let path = path.canonicalize().expect("canonical path");
        Traffic { path, _dir: dir }
    }

    /// A copy of the traffic generator with its own sha256 (bytes appended after the
    /// ELF image change the hash, not what runs).
    pub fn distinct(name: &str) -> Traffic {
        use std::io::Write;
        let t = Traffic::new(name);
        let mut f = std::fs::OpenOptions::new().append(true).open(&t.path).expect("open copy");
        f.write_all(format!("picosnitch-e2e-{name}-{}", std::process::id()).as_bytes()).expect("append");
        t
    }

    pub fn sha256(&self) -> String {
        sha256_of(&self.path)
    }

    /// Runs to completion and returns its own counts.
    pub fn run(&self, args: &[&str]) -> Counts {
        let out = Command::new(&self.path).args(args).output().expect("running picosnitch-traffic");
        assert!(out.status.success(), "{} {args:?} failed: {}", self.path.display(), String::from_utf8_lossy(&out.stderr));
        parse_counts(String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or(""))
    }

    /// Starts a server; returns it and the port it listens on.
    pub fn serve(&self, args: &[&str]) -> Server {
        self.serve_with(Command::new(&self.path).args(args))
    }

    pub fn serve_with(&self, cmd: &mut Command) -> Server {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("starting a server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("server said nothing").expect("server output");
        let v: serde_json::Value = serde_json::from_str(&first).expect("listening line");
        let port = v["listening"].as_u64().expect("port") as u16;
        Server { child, port, lines }
    }
}

pub struct Server {
    pub child: Child,
    pub port: u16,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Server {
    /// Waits for the server to finish and returns its counts.
    pub fn finish(mut self) -> Counts {
        let last = self.lines.by_ref().map_while(Result::ok).last().unwrap_or_default();
        let st = self.child.wait().expect("server exit");
        assert!(st.success(), "server failed");
        parse_counts(&last)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_counts(line: &str) -> Counts {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad generator output {line:?}: {e}"));
    Counts {
        sent: v["sent"].as_i64().expect("sent"),
        received: v["received"].as_i64().expect("received"),
        pid: v["pid"].as_u64().expect("pid") as u32,
    }
}

/// The executable of this test process and of its parent, as the kernel would name them.
pub fn own_lineage() -> (PathBuf, PathBuf) {
    let me = std::fs::read_link("/proc/self/exe").expect("own exe");
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let ppid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("PPid");
    let parent = std::fs::read_link(format!("/proc/{ppid}/exe")).expect("parent exe");
    (me, parent)
}

/// The API key the tests' local VirusTotal accepts.
pub const VT_KEY: &str = "e2e-test-key";

/// Writes the API key and the test CA where only root may read them, as systemd
/// credentials would be, and returns the `[virustotal]` section for `fake`.
pub fn virustotal_section(fake: &picosnitch_virustotal::fake::FakeVirusTotal, dir: &Path, upload: bool) -> String {
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("vt-key");
    let ca = dir.join("vt-ca.pem");
    std::fs::write(&key, format!("{VT_KEY}\n")).expect("key file");
    std::fs::write(&ca, fake.ca_pem()).expect("ca file");
    for f in [&key, &ca] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    }
    // "localhost": the confined role resolves the name itself (/etc/hosts).
    format!(
        "[virustotal]\napi_key_file = \"{}\"\nca_file = \"{}\"\napi_url = \"https://localhost:{}\"\nrequest_limit_seconds = 1\nfile_upload = {upload}\n",
        key.display(),
        ca.display(),
        fake.port()
    )
}

/// Waits until `log()` has a line containing every one of `parts`; `who` names the
/// program in the failure message.
pub fn wait_log_line(who: &str, log: impl Fn() -> String, parts: &[&str], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = log();
        if let Some(line) = text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_string();
        }
        if Instant::now() > deadline {
            panic!("no {who} log line with {parts:?} within {timeout:?}; log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
