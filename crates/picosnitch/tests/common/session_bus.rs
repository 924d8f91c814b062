//! A real session bus for a desktop user that has no account (a bare uid), at the
//! place the notify role looks: /run/user/UID/bus; and a real notification server on
//! it that records exactly what arrived, and from which uid.
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One notification as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrived {
    pub app: String,
    pub summary: String,
    pub body: String,
    pub category: String,
    pub urgency: u8,
    pub expire_timeout: i32,
    /// The uid of the connection that sent it, asked from the bus.
    pub sender_uid: u32,
}

struct Recorder {
    got: Arc<Mutex<Vec<Arrived>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Recorder {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        hints: HashMap<String, zbus::zvariant::OwnedValue>,
        expire_timeout: i32,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> u32 {
        let mut sender_uid = u32::MAX;
        if let Some(sender) = header.sender() {
            if let Ok(proxy) = zbus::fdo::DBusProxy::new(conn).await {
                if let Ok(uid) = proxy.get_connection_unix_user(zbus::names::BusName::from(sender.to_owned())).await {
                    sender_uid = uid;
                }
            }
        }
        let category = hints.get("category").and_then(|v| String::try_from(v.try_clone().ok()?).ok()).unwrap_or_default();
        let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok()).unwrap_or(255);
        let mut got = self.got.lock().expect("recorder lock");
        got.push(Arrived { app: app_name, summary, body, category, urgency, expire_timeout, sender_uid });
        got.len() as u32
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("picosnitch-test".into(), "picosnitch".into(), "1".into(), "1.2".into())
    }

    fn close_notification(&self, _id: u32) {}
}

/// dbus-daemon as `uid` on /run/user/UID/bus, and the recording server on it.
pub struct SessionBus {
    pub uid: u32,
    pub socket: PathBuf,
    daemon: Child,
    runtime_dir: PathBuf,
    created_dir: bool,
    _config_dir: tempfile::TempDir,
    _server: zbus::blocking::Connection,
    got: Arc<Mutex<Vec<Arrived>>>,
}

/// Whether dbus-daemon is installed; prints SKIPPED (or panics under CI) when not.
pub fn dbus_or_skip(test: &str) -> bool {
    if Command::new("dbus-daemon").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs dbus-daemon (Debian package dbus-daemon, installed by scripts/install-deps.sh)");
    }
    eprintln!("SKIPPED {test}: dbus-daemon is not installed (apt-get install dbus-daemon)");
    false
}

/// Accounts this test process created, removed when it exits.
static CREATED_ACCOUNTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Removes the accounts this process created (`atexit`: the test harness exits
/// normally after a test, passed or failed, and no test holds a guard object long
/// enough: the bus and its processes are gone by then).
extern "C" fn remove_created_accounts() {
    let names = std::mem::take(&mut *CREATED_ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner()));
    for name in names {
        match Command::new("userdel").arg(&name).stderr(Stdio::null()).status() {
            Ok(st) if st.success() => {}
            other => eprintln!("could not remove the test account {name} ({other:?}): remove it with `userdel {name}`"),
        }
    }
}

/// A system account `name` with `uid`, created if missing (and then removed when the
/// test process exits): dbus-daemon refuses to run as a uid without one. Returns its
/// primary gid.
pub fn ensure_account(name: &str, uid: u32) -> u32 {
    let lookup = || {
        let out = Command::new("getent").args(["passwd", &uid.to_string()]).output().expect("running getent");
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!line.is_empty()).then(|| line.split(':').nth(3).and_then(|g| g.parse::<u32>().ok()).expect("gid in passwd line"))
    };
    if let Some(gid) = lookup() {
        return gid;
    }
    let st = Command::new("useradd")
        .args(["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "--user-group"])
        .args(["--uid", &uid.to_string(), name])
        .stderr(Stdio::null())
        .status()
        .expect("running useradd (Debian package passwd)");
    assert!(st.success() || lookup().is_some(), "useradd {name} failed: {st}");
    if st.success() {
        let mut created = CREATED_ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        if created.is_empty() {
            // SAFETY: registers a plain function without arguments; it runs once, at exit.
            unsafe { libc::atexit(remove_created_accounts) };
        }
        created.push(name.to_string());
    }
    lookup().expect("the account just created")
}

impl SessionBus {
    /// Starts the bus as `uid` (which must have an account: see [`ensure_account`]).
    pub fn start(uid: u32, gid: u32) -> SessionBus {
        let runtime_dir = PathBuf::from(format!("/run/user/{uid}"));
        let created_dir = !runtime_dir.exists();
        std::fs::create_dir_all(&runtime_dir).expect("creating /run/user/UID");
        std::os::unix::fs::chown(&runtime_dir, Some(uid), Some(gid)).expect("chown runtime dir");
        std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700)).expect("chmod runtime dir");
        let socket = runtime_dir.join("bus");
        let _ = std::fs::remove_file(&socket);
        let config_dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(config_dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let config = config_dir.path().join("session.conf");
        // A session bus like Debian's session.conf, except that other users may connect:
        // the recording server runs in this (root) test process.
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .expect("writing the bus config");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg(format!("--config-file={}", config.display())).arg("--nofork").arg("--nopidfile");
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let groups = [gid];
                if libc::setgroups(1, groups.as_ptr()) != 0 || libc::setresgid(gid, gid, gid) != 0 || libc::setresuid(uid, uid, uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // After the change of uid, which clears it: the bus goes with the test.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut daemon = cmd.spawn().expect("starting dbus-daemon");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if let Ok(Some(st)) = daemon.try_wait() {
                panic!("dbus-daemon exited: {st}");
            }
            assert!(Instant::now() < deadline, "dbus-daemon did not create {} in 10 s", socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = Arc::new(Mutex::new(Vec::new()));
        let server = zbus::blocking::connection::Builder::address(format!("unix:path={}", socket.display()).as_str())
            .expect("bus address")
            .serve_at("/org/freedesktop/Notifications", Recorder { got: Arc::clone(&got) })
            .expect("serving the recorder")
            .name("org.freedesktop.Notifications")
            .expect("name")
            .build()
            .expect("connecting the notification server to the session bus");
        SessionBus { uid, socket, daemon, runtime_dir, created_dir, _config_dir: config_dir, _server: server, got }
    }

    pub fn arrived(&self) -> Vec<Arrived> {
        self.got.lock().expect("recorder lock").clone()
    }

    /// Waits until a notification whose body contains `text` arrived.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> Arrived {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(a) = self.arrived().into_iter().find(|a| a.body.contains(text)) {
                return a;
            }
            assert!(Instant::now() < deadline, "no notification with {text:?} in {timeout:?}; arrived: {:#?}", self.arrived());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_file(&self.socket);
        if self.created_dir {
            let _ = std::fs::remove_dir(&self.runtime_dir);
        }
    }
}
