//! Every role, started by the real daemon, is asked (from inside its confinement) to do
//! what it must not: read /etc/shadow, write outside its directory, connect to the
//! network, execve, ptrace another process, load a BPF program, become root again.
//! Every attempt fails; a call its seccomp policy forbids stops the role, the
//! supervisor names the call and restarts it, and the role's job still works after.
mod common;
#[path = "../../picosnitch-tui/tests/common/tmux_driver.rs"]
mod tmux_driver;

use common::*;
use std::time::Duration;

/// The roles Landlock confines (files and network).
const LANDLOCKED: [&str; 6] = ["monitor", "primary", "hasher", "writer", "remote", "rdns"];
/// Every role of a daemon with a remote database and reverse DNS: the opener has no
/// Landlock (see its policy), its seccomp list stands in for it.
const ROLES: [&str; 7] = ["monitor", "primary", "hasher", "writer", "remote", "opener", "rdns"];

/// A remote database nothing answers for (the discard port), so that the remote role
/// runs too: it keeps trying, confined like the others. Reverse DNS is on (toward the
/// discard port, where nothing answers), so the rdns role runs as well.
fn with_remote(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let pw = dir.join("remote-password");
    std::fs::write(&pw, "secret\n").expect("password file");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    format!(
        "[monitoring]\nreverse_dns = true\nreverse_dns_resolver = \"127.0.0.1:9\"\n[database.remote]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"disable\"\npassword_file = \"{}\"\n",
        pw.display()
    )
}

fn start(env: &[(&str, &str)]) -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = with_remote(dir.path());
    let db = dir.path().join("db/picosnitch.db");
    Daemon::start_in_env(dir, db, &extra, env)
}

/// The job works: a new executable's connection is recorded with its sha256, which
/// takes every role (monitor sees it, primary resolves it, hasher hashes it, writer
/// writes it).
fn job_still_works(d: &Daemon, tag: &str) {
    let server = Traffic::new(&format!("{tag}srv"));
    let client = Traffic::new(&format!("{tag}cli"));
    let srv = server.serve(&["tcp-server", "--send", "5"]);
    let c = client.run(&["tcp-client", "--to", &format!("127.0.0.1:{}", srv.port), "--send", "7"]);
    srv.finish();
    let rows = d.wait_rows(&client.path, Duration::from_secs(60), |r| sums(r).0 >= c.sent);
    assert_eq!(sums(&rows), (7, 5, 1));
    assert_eq!(rows[0].sha256, client.sha256(), "hashed by the (confined) hasher");
}

#[test]
fn roles_run_as_the_service_user_with_only_their_capabilities() {
    if !root_or_skip("roles_run_as_the_service_user_with_only_their_capabilities") {
        return;
    }
    let d = start(&[]);
    // CAP_DAC_READ_SEARCH is bit 2, CAP_SYS_PTRACE bit 19.
    for (role, caps) in [
        ("monitor", "0000000000000000"),
        ("primary", "0000000000000004"),
        ("hasher", "0000000000000000"),
        ("writer", "0000000000000000"),
        ("remote", "0000000000000000"),
        ("opener", "0000000000080004"),
        ("rdns", "0000000000000000"),
    ] {
        let pid = d.role_pid(role);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("role status");
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_string();
        assert!(field("Uid:").split_whitespace().all(|u| u == SERVICE_UID.to_string()), "{role} uids: {}", field("Uid:"));
        assert!(field("Gid:").split_whitespace().all(|g| g == SERVICE_UID.to_string()), "{role} gids: {}", field("Gid:"));
        for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
            assert_eq!(field(set), caps, "{role} {set}");
        }
        assert_eq!(field("CapInh:"), "0000000000000000", "{role} CapInh");
        assert_eq!(field("CapAmb:"), "0000000000000000", "{role} CapAmb");
        assert_eq!(field("NoNewPrivs:"), "1", "{role} no_new_privs");
        assert_eq!(field("Seccomp:"), "2", "{role} seccomp filter mode");
        assert!(d.log().contains(&format!("confined role=\"{role}\"")), "{role} logged its confinement");
    }
    assert!(d.log().contains("landlock=fully enforced"), "{}", d.log());
}

#[test]
fn no_role_can_read_secrets_or_write_outside_its_directory() {
    if !root_or_skip("no_role_can_read_secrets_or_write_outside_its_directory") {
        return;
    }
    let mut spec: Vec<String> =
        LANDLOCKED.iter().flat_map(|r| [format!("{r}:read-shadow"), format!("{r}:write-outside")]).collect();
    // The remote role read its password file before confining itself; now it cannot.
    spec.push("remote:read-file=PASSWORD".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = with_remote(dir.path());
    let spec = spec.join(",").replace("PASSWORD", &dir.path().join("remote-password").display().to_string());
    let db = dir.path().join("db/picosnitch.db");
    let d = Daemon::start_in_env(dir, db, &extra, &[("PICOSNITCH_SANDBOX_PROBE", &spec)]);
    for role in LANDLOCKED {
        for probe in ["read-shadow", "write-outside"] {
            let line = d.wait_log(&["sandbox probe result", &format!("role={role}"), &format!("probe={probe}")], Duration::from_secs(30));
            assert!(line.contains("refused: Permission denied"), "{role} {probe}: {line}");
        }
    }
    let line = d.wait_log(&["sandbox probe result", "role=remote", "probe=read-file"], Duration::from_secs(30));
    assert!(line.contains("refused: Permission denied"), "remote read-file: {line}");
    job_still_works(&d, "afterfs");
}

/// The opener has no Landlock and may open any file (CAP_DAC_READ_SEARCH): what stops
/// it reading /etc/shadow is that it has no call to read with. It opens the file (with
/// the one set of flags it may use) and is stopped at the read; an open for writing
/// stops it at the open. It is restarted each time and still opens what the primary asks.
#[test]
fn the_opener_can_open_but_never_read_or_write_a_file() {
    if !root_or_skip("the_opener_can_open_but_never_read_or_write_a_file") {
        return;
    }
    for (probe, syscall) in [("read-contents=/etc/shadow", "read"), ("write-outside", "open")] {
        let d = Daemon::start_env("", &[("PICOSNITCH_SANDBOX_PROBE", &format!("opener:{probe}"))]);
        let line = d.wait_log(&["forbids", "role=opener", &format!("syscall={syscall}")], Duration::from_secs(30));
        assert!(line.contains("stopped before the call ran"), "{probe}: {line}");
        assert!(!d.log().contains("outcome=ALLOWED"), "{probe}: {}", d.log());
        d.wait_status("the opener restarted", Duration::from_secs(30), |st| {
            st["roles"].as_array().is_some_and(|rs| rs.iter().any(|r| r["role"] == "opener" && r["restarts"] == 1 && r["ready"] == true))
        });
        job_still_works(&d, &format!("opener{syscall}"));
        opener_still_works(&d, &format!("opener{syscall}"));
    }
}

/// The opener's job: a server whose binary was deleted after it started is recorded
/// with that binary's sha256.
fn opener_still_works(d: &Daemon, tag: &str) {
    let server = Traffic::new(&format!("{tag}del"));
    let sha = server.sha256();
    let srv = server.serve(&["tcp-server", "--accepts", "2", "--send", "5"]);
    std::fs::remove_file(&server.path).expect("deleting the running server");
    let client = Traffic::new(&format!("{tag}cli"));
    client.run(&["tcp-client", "--to", &format!("127.0.0.1:{}", srv.port), "--send", "7"]);
    let rows = d.wait_rows(&server.path, Duration::from_secs(30), |r| sums(r).1 >= 7);
    assert_eq!(rows[0].sha256, sha, "opened through /proc by the restarted opener");
    client.run(&["tcp-client", "--to", &format!("127.0.0.1:{}", srv.port), "--send", "7"]);
    srv.finish();
}

/// Each forbidden call, attempted by every role at once in one daemon.
fn forbidden_call_stops_every_role(probe: &str, arg: Option<&str>, syscall: &str) {
    let spec: Vec<String> = ROLES
        .iter()
        .map(|r| match arg {
            Some(a) => format!("{r}:{probe}={a}"),
            None => format!("{r}:{probe}"),
        })
        .collect();
    let d = start(&[("PICOSNITCH_SANDBOX_PROBE", &spec.join(","))]);
    for role in ROLES {
        let line = d.wait_log(&["forbids", &format!("role={role}"), &format!("syscall={syscall}")], Duration::from_secs(30));
        assert!(line.contains("stopped before the call ran"), "{line}");
        assert!(!d.log().contains(&format!("role={role} probe={probe} outcome=ALLOWED")), "{role} {probe} was allowed");
    }
    let st = d.wait_status("every role restarted once", Duration::from_secs(30), |st| {
        st["roles"].as_array().is_some_and(|rs| rs.iter().all(|r| r["restarts"] == 1 && r["ready"] == true))
    });
    for r in st["roles"].as_array().expect("roles") {
        if r["role"] != "supervisor" {
            let exit = r["last_exit"].as_str().unwrap_or_default();
            assert!(exit.contains(&format!("forbidden system call {syscall}")), "{}: {exit}", r["role"]);
        }
    }
    job_still_works(&d, &format!("after{}", probe.replace('-', "")));
}

#[test]
fn no_role_can_connect_to_the_network() {
    if !root_or_skip("no_role_can_connect_to_the_network") {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port().to_string();
    forbidden_call_stops_every_role("connect", Some(&port), "socket");
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(listener.accept().is_err(), "nothing reached the listener");
}

#[test]
fn the_rdns_role_sends_only_to_its_resolver() {
    if !root_or_skip("the_rdns_role_sends_only_to_its_resolver") {
        return;
    }
    // A datagram to another address on the socket connected to the resolver is stopped
    // by seccomp before it leaves (sendto with a destination on fd 5).
    let elsewhere = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp listener");
    let port = elsewhere.local_addr().expect("addr").port().to_string();
    let d = start(&[("PICOSNITCH_SANDBOX_PROBE", &format!("rdns:send-elsewhere={port}"))]);
    let line = d.wait_log(&["forbids", "role=rdns", "syscall=sendto"], Duration::from_secs(30));
    assert!(line.contains("stopped before the call ran"), "{line}");
    elsewhere.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let mut buf = [0u8; 16];
    assert!(elsewhere.recv_from(&mut buf).is_err(), "a datagram reached the other address");
    d.wait_status("the rdns role restarted", Duration::from_secs(30), |st| {
        st["roles"].as_array().is_some_and(|rs| rs.iter().any(|r| r["role"] == "rdns" && r["restarts"] == 1 && r["ready"] == true))
    });
}

#[test]
fn no_role_can_execute_a_program() {
    if !root_or_skip("no_role_can_execute_a_program") {
        return;
    }
    forbidden_call_stops_every_role("execve", None, "execve");
}

#[test]
fn no_role_can_ptrace_another_process() {
    if !root_or_skip("no_role_can_ptrace_another_process") {
        return;
    }
    forbidden_call_stops_every_role("ptrace", None, "ptrace");
}

#[test]
fn no_role_can_load_a_bpf_program() {
    if !root_or_skip("no_role_can_load_a_bpf_program") {
        return;
    }
    forbidden_call_stops_every_role("bpf-load", None, "bpf");
}

#[test]
fn no_role_can_become_root_again() {
    if !root_or_skip("no_role_can_become_root_again") {
        return;
    }
    forbidden_call_stops_every_role("regain-root", None, "setuid");
}

/// The capabilities the shipped systemd unit leaves the daemon (its
/// CapabilityBoundingSet lines), as setpriv arguments.
fn unit_bounding_set() -> String {
    let unit = include_str!("../dist/picosnitch.service");
    let caps: Vec<String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .flat_map(str::split_whitespace)
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    assert!(caps.len() >= 10, "the unit names its capabilities: {caps:?}");
    format!("-all,{}", caps.join(","))
}

#[test]
fn the_daemon_works_within_the_service_units_capabilities() {
    if !root_or_skip("the_daemon_works_within_the_service_units_capabilities") {
        return;
    }
    // What systemd would do with the unit's CapabilityBoundingSet and NoNewPrivileges:
    // a capability a role keeps but the unit lacks stops the daemon at start (CAP_KILL
    // was missing once).
    let wrapper = ["setpriv", "--bounding-set", &unit_bounding_set(), "--inh-caps", "-all", "--no-new-privs", "--"].map(String::from);
    let d = Daemon::start_through(&wrapper);
    job_still_works(&d, "unit");
    // Restarting a role that runs as the service user takes CAP_KILL and CAP_SETUID.
    let pid = d.role_pid("hasher");
    // SAFETY: a signal to our own daemon's role.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    d.wait_status("the hasher to come back", Duration::from_secs(20), |s| {
        s["roles"].as_array().is_some_and(|r| r.iter().any(|r| r["role"] == "hasher" && r["restarts"] == 1 && r["ready"] == true))
    });
    job_still_works(&d, "unit2");
}

#[test]
fn the_history_belongs_to_the_service_user_with_the_configured_mode() {
    if !root_or_skip("the_history_belongs_to_the_service_user_with_the_configured_mode") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let d = Daemon::start("data.mode = \"0600\"");
    job_still_works(&d, "mode");
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", d.db.display()));
        let md = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!((md.uid(), md.gid()), (SERVICE_UID, SERVICE_UID), "{} belongs to the service user", file.display());
        assert_eq!(md.mode() & 0o777, 0o600, "{} has [data] mode", file.display());
    }
    let dir = std::fs::metadata(d.db.parent().expect("a directory")).expect("the history's directory");
    assert_eq!((dir.uid(), dir.mode() & 0o777), (SERVICE_UID, 0o750));
}

/// The optional virustotal role (started only with an API key): the service user, no
/// capabilities, no file but the name service's, TCP to the API's port only, and a
/// forbidden call stops it like any other role.
#[test]
fn the_virustotal_role_reaches_nothing_but_its_api() {
    if !root_or_skip("the_virustotal_role_reaches_nothing_but_its_api") {
        return;
    }
    let fake = picosnitch_virustotal::fake::FakeVirusTotal::start(VT_KEY).expect("fake VirusTotal");
    let secrets = tempfile::tempdir().expect("tempdir");
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let other_port = other.local_addr().expect("addr").port();
    // ptrace last: a role that dies with probes it never read resets its control link,
    // and the results it had sent would be lost with it.
    let probes = format!("virustotal:read-shadow,virustotal:write-outside,virustotal:connect={other_port},virustotal:ptrace");
    let d = Daemon::start_env(&virustotal_section(&fake, secrets.path(), true), &[("PICOSNITCH_SANDBOX_PROBE", &probes)]);
    for probe in ["read-shadow", "write-outside", "connect"] {
        let line = d.wait_log(&["sandbox probe result", "role=virustotal", &format!("probe={probe}")], Duration::from_secs(30));
        assert!(line.contains("refused: Permission denied"), "{probe}: {line}");
    }
    other.set_nonblocking(true).expect("nonblocking");
    assert!(other.accept().is_err(), "nothing reached the other port");
    // ptrace is outside its seccomp policy: the role is stopped at the call and restarted.
    let line = d.wait_log(&["forbids", "role=virustotal", "syscall=ptrace"], Duration::from_secs(30));
    assert!(line.contains("stopped before the call ran"), "{line}");
    d.wait_status("virustotal restarted", Duration::from_secs(30), |st| {
        st["roles"].as_array().is_some_and(|rs| rs.iter().any(|r| r["role"] == "virustotal" && r["restarts"] == 1 && r["ready"] == true))
    });
    // The replacement (no probes) is confined like the first.
    let pid = d.role_pid("virustotal");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("role status");
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_string();
    assert!(field("Uid:").split_whitespace().all(|u| u == SERVICE_UID.to_string()), "uids: {}", field("Uid:"));
    for set in ["CapEff:", "CapPrm:", "CapBnd:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000000000", "virustotal {set}");
    }
    assert_eq!((field("NoNewPrivs:").as_str(), field("Seccomp:").as_str()), ("1", "2"));
}

/// The uid of `name` from /etc/passwd.
fn uid_of(name: &str) -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| f.get(2).and_then(|u| u.parse().ok())).flatten()
        })
        .unwrap_or_else(|| panic!("no user {name} in /etc/passwd"))
}

/// `picosnitch webui` started by root becomes the named user with the history's group
/// only, keeps no capability, and from inside its confinement can neither read secrets,
/// write a file, connect over TCP nor execute a program; it still answers from the
/// history the daemon wrote.
#[test]
fn the_web_ui_runs_unprivileged_and_confined() {
    if !root_or_skip("the_web_ui_runs_unprivileged_and_confined") {
        return;
    }
    use common::webui::{WebUiProcess, WEBUI_USER};
    let d = Daemon::start("");
    job_still_works(&d, "webui");
    let w = WebUiProcess::start(&d, &[("PICOSNITCH_WEBUI_PROBE", "read-shadow,write-outside")]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", w.pid())).expect("web UI status");
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_string();
    let nobody = uid_of(WEBUI_USER).to_string();
    assert!(field("Uid:").split_whitespace().all(|u| u == nobody), "uids: {}", field("Uid:"));
    assert!(field("Gid:").split_whitespace().all(|g| g == SERVICE_UID.to_string()), "gids: {}", field("Gid:"));
    assert_eq!(field("Groups:"), SERVICE_UID.to_string(), "the history's group is its only group");
    for set in ["CapEff:", "CapPrm:", "CapBnd:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000000000", "{set}");
    }
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
    assert!(w.log().contains("landlock=fully enforced"), "{}", w.log());
    for probe in ["read-shadow", "write-outside"] {
        let line = w.wait_log(&["sandbox probe result", probe], Duration::from_secs(10));
        assert!(line.contains("refused: Permission denied"), "{probe}: {line}");
    }
    // Still does its job: the totals are the database's (which grows meanwhile: the
    // machine's other traffic is recorded too).
    let sum = || count(&d.db(), "SELECT coalesce(sum(recv), 0) FROM connections");
    let before = sum();
    let v = w.get_json("/api/overview?range=all");
    let after = sum();
    let shown = v["totals"]["recv"].as_i64().unwrap_or(-1);
    assert!((before..=after).contains(&shown), "web UI {shown}, database {before}..{after}: {v}");
    assert!(before >= 5, "the job's bytes are in the history");
    drop(w);

    // Calls outside its seccomp list end it at once (status 159), before they run.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    for probe in [format!("connect={port}"), "execve".to_string()] {
        let mut w = WebUiProcess::spawn(&d, &[], &[("PICOSNITCH_WEBUI_PROBE", &probe)]);
        assert_eq!(w.wait_exit(Duration::from_secs(30)), 159, "{probe}: {}", w.log());
        assert!(!w.log().contains("outcome=ALLOWED"), "{probe}: {}", w.log());
    }
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(listener.accept().is_err(), "nothing reached the listener");
}

/// `picosnitch top` or `picosnitch tui` started by root in a terminal of its own (tmux),
/// with the probes in `probes`; its stderr, and then `EXIT=status`, go to a file.
struct TerminalUi {
    tmux: tmux_driver::Tmux,
    err: std::path::PathBuf,
}

impl TerminalUi {
    fn start(d: &Daemon, ui: &str, probes: &str) -> TerminalUi {
        let err = d.dir.path().join(format!("{ui}-{}.err", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.as_nanos()).unwrap_or(0)));
        let command = format!(
            "PICOSNITCH_TERMINAL_UI_PROBE='{probes}' {DAEMON} {ui} --config {} 2>{}; echo EXIT=$? >>{}",
            d.config.display(),
            err.display(),
            err.display()
        );
        // A tmux server of its own each time: one just killed under the same name may
        // still be going away.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmux = tmux_driver::Tmux::start(&format!("sandbox-{ui}-{n}"), 160, 40, &command);
        TerminalUi { tmux, err }
    }

    fn err(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The line with the outcome of `probe`.
    fn probe_result(&self, probe: &str) -> String {
        wait_log_line("the terminal UI", || self.err(), &[&format!("sandbox probe {probe} result: ")], Duration::from_secs(20))
    }

    fn wait_exit(&self) -> i32 {
        let line = wait_log_line("the terminal UI", || self.err(), &["EXIT="], Duration::from_secs(30));
        line.trim().trim_start_matches("EXIT=").parse().unwrap_or(-1)
    }

    /// The UI's process: the one whose command line is `picosnitch UI --config ...`.
    fn pid(&self, d: &Daemon, ui: &str) -> u32 {
        let want = [DAEMON.to_string(), ui.to_string(), "--config".to_string(), d.config.display().to_string()];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            for entry in std::fs::read_dir("/proc").expect("/proc").filter_map(Result::ok) {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
                let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
                let args: Vec<String> = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
                if args == want {
                    return pid;
                }
            }
            assert!(std::time::Instant::now() < deadline, "no process `{}`", want.join(" "));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The UI's identity and confinement, from /proc: `nobody` with the history's group
/// as its only group (it was started by root), no capability, no_new_privs, seccomp.
fn assert_confined_as_nobody(pid: u32, ui: &str) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the UI's status");
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_string();
    assert!(field("Uid:").split_whitespace().all(|u| u == "65534"), "{ui} uids: {}", field("Uid:"));
    assert!(field("Gid:").split_whitespace().all(|g| g == SERVICE_UID.to_string()), "{ui} gids: {}", field("Gid:"));
    assert_eq!(field("Groups:"), SERVICE_UID.to_string(), "{ui}: the history's group is its only group");
    for set in ["CapEff:", "CapPrm:", "CapBnd:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000000000", "{ui} {set}");
    }
    assert_eq!(field("NoNewPrivs:"), "1", "{ui} no_new_privs");
    assert_eq!(field("Seccomp:"), "2", "{ui} seccomp filter mode");
}

/// `picosnitch top` and `picosnitch tui`, started by root in a real terminal, become
/// `nobody` with the history's group, keep no capability, and from inside their
/// confinement can neither read /etc/shadow nor write a file; they still show the rows
/// of real traffic (tui from the history, top from the live feed) afterwards.
#[test]
fn the_terminal_uis_run_unprivileged_and_confined() {
    if !root_or_skip("the_terminal_uis_run_unprivileged_and_confined") || !tmux_driver::tmux_available() {
        return;
    }
    let d = Daemon::start("");
    let server = Traffic::new("uisrv");
    let client = Traffic::new("uicli");
    let exchange = || {
        let srv = server.serve(&["tcp-server", "--send", "5"]);
        let c = client.run(&["tcp-client", "--to", &format!("127.0.0.1:{}", srv.port), "--send", "7"]);
        srv.finish();
        c
    };
    let c = exchange();
    d.wait_rows(&client.path, Duration::from_secs(60), |r| sums(r).0 >= c.sent);
    let probes = "read-shadow,write-outside";

    let tui = TerminalUi::start(&d, "tui", probes);
    for probe in ["read-shadow", "write-outside"] {
        let line = tui.probe_result(probe);
        assert!(line.contains("refused: Permission denied"), "tui {probe}: {line}");
    }
    assert_confined_as_nobody(tui.pid(&d, "tui"), "tui");
    let screen = tui.tmux.wait_for(&[&client.path.display().to_string()]);
    assert!(screen.contains("picosnitch tui"), "still the tui:\n{screen}");
    tui.tmux.keys(&["q"]);
    assert_eq!(tui.wait_exit(), 0, "tui quit cleanly: {}", tui.err());

    let top = TerminalUi::start(&d, "top", probes);
    for probe in ["read-shadow", "write-outside"] {
        let line = top.probe_result(probe);
        assert!(line.contains("refused: Permission denied"), "top {probe}: {line}");
    }
    assert_confined_as_nobody(top.pid(&d, "top"), "top");
    d.wait_status("top to subscribe", Duration::from_secs(20), |s| s["primary"]["feed_subscribers"].as_u64() == Some(1));
    exchange();
    let screen = top.tmux.wait_for(&["uicli", "uisrv", "live"]);
    assert!(screen.contains("picosnitch top"), "still top:\n{screen}");
    top.tmux.keys(&["q"]);
    assert_eq!(top.wait_exit(), 0, "top quit cleanly: {}", top.err());
}

/// A TCP connect or an execve from inside `top` or `tui` is outside their seccomp
/// lists: the process ends at once with status 159, before the call runs.
#[test]
fn the_terminal_uis_cannot_connect_or_execute() {
    if !root_or_skip("the_terminal_uis_cannot_connect_or_execute") || !tmux_driver::tmux_available() {
        return;
    }
    let d = Daemon::start("");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    for ui in ["top", "tui"] {
        for probe in [format!("connect={port}"), "execve".to_string()] {
            let t = TerminalUi::start(&d, ui, &probe);
            assert_eq!(t.wait_exit(), 159, "{ui} {probe}: {}", t.err());
            assert!(t.err().contains("started"), "{ui} {probe} ran: {}", t.err());
            assert!(!t.err().contains("ALLOWED"), "{ui} {probe}: {}", t.err());
        }
    }
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(listener.accept().is_err(), "nothing reached the listener");
}

/// PICOSNITCH_UNCONFINED_FOR_BENCHMARK=1 (for the benchmark's cost of confinement
/// only) turns every role's sandbox off, and nobody can miss it: each role warns in the
/// log, and `picosnitch status` says UNCONFINED. Without it, the status says nothing.
#[test]
fn the_unconfined_benchmark_mode_is_loud() {
    if !root_or_skip("the_unconfined_benchmark_mode_is_loud") {
        return;
    }
    let d = Daemon::start_env("", &[("PICOSNITCH_UNCONFINED_FOR_BENCHMARK", "1")]);
    job_still_works(&d, "unconf");
    for role in ["supervisor", "monitor", "primary", "hasher", "opener", "writer"] {
        let line = d.wait_log(&["UNCONFINED", &format!("role=\"{role}\"")], Duration::from_secs(10));
        assert!(line.contains("WARN"), "{role}: {line}");
    }
    let pid = d.role_pid("hasher");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("role status");
    assert!(status.lines().any(|l| l.starts_with("Seccomp:") && l.ends_with('0')), "the hasher has no filter:\n{status}");
    assert_eq!(d.status()["unconfined"], true);
    let text = std::process::Command::new(DAEMON).args(["status", "--config"]).arg(&d.config).output().expect("picosnitch status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.lines().next().unwrap_or_default().contains("running UNCONFINED"), "{text}");

    let confined = Daemon::start("");
    assert!(confined.status().get("unconfined").is_none(), "a confined daemon's status has no unconfined field");
    let text = std::process::Command::new(DAEMON).args(["status", "--config"]).arg(&confined.config).output().expect("picosnitch status");
    assert!(!String::from_utf8_lossy(&text.stdout).contains("UNCONFINED"));
}

#[test]
fn the_user_hasher_is_the_desktop_user_reads_only_and_refuses_the_rest() {
    let test = "the_user_hasher_is_the_desktop_user_reads_only_and_refuses_the_rest";
    if !root_or_skip(test) {
        return;
    }
    let uid = 61343; // a bare uid: the role needs no account
    // /etc/hostname is readable by every user: only Landlock refuses it.
    let probes = "user-hasher:read-shadow,user-hasher:read-file=/etc/hostname,user-hasher:write-outside,user-hasher:connect=9";
    let d = Daemon::start_env(&format!("[desktop]\nuser = \"{uid}\"\nnotifications = false\n"), &[("PICOSNITCH_SANDBOX_PROBE", probes)]);
    for probe in ["read-shadow", "read-file", "write-outside"] {
        let line = d.wait_log(&["sandbox probe result", "role=user-hasher", &format!("probe={probe}")], Duration::from_secs(30));
        assert!(line.contains("refused: Permission denied"), "{probe}: {line}");
    }
    // An inet socket is outside its policy: the role is stopped and restarted.
    let line = d.wait_log(&["forbids", "role=user-hasher", "syscall=socket"], Duration::from_secs(30));
    assert!(line.contains("stopped before the call ran"), "{line}");
    d.wait_status("the user-hasher restarted and ready", Duration::from_secs(30), |st| {
        st["roles"].as_array().is_some_and(|rs| rs.iter().any(|r| r["role"] == "user-hasher" && r["restarts"] == 1 && r["ready"] == true))
    });
    let pid = d.role_pid("user-hasher");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("role status");
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_string();
    assert!(field("Uid:").split_whitespace().all(|u| u == uid.to_string()), "the desktop user, never root: {}", field("Uid:"));
    for set in ["CapEff:", "CapPrm:", "CapBnd:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000000000", "user-hasher {set}");
    }
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
}
