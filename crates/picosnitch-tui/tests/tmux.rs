//! End to end: the real binary in a real terminal (tmux), against a real SQLite file and
//! a real feed socket served by the feed hub. Keys go in with send-keys; the screen
//! comes back with capture-pane.
//!
//! Needs tmux (Debian package `tmux`) and, for the permission test as root, setpriv
//! (`util-linux`). Without tmux it prints SKIPPED, except under CI=true, where it fails.
mod common;
#[path = "common/tmux_driver.rs"]
mod tmux_driver;

use common::*;
use tmux_driver::*;
use picosnitch_feed::{FeedHub, FeedLimits, FeedServer, FlowUpdate, SocketAccess};
use picosnitch_store::Store;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_picosnitch-tui-dev");

/// Runs the program, then prints its exit status and whether the terminal is back in
/// cooked mode (icanon, echo), which raw mode turns off.
fn command_line(args: &[&str]) -> String {
    format!("{} {}; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo", BIN, args.join(" "))
}

fn unix_now() -> i64 {
    picosnitch_store::unix_now()
}

/// The fixture history, moved so its newest row is a minute old now.
fn history_now(dir: &Path) -> PathBuf {
    let path = dir.join("picosnitch.db");
    let shift = unix_now() - NOW;
    let rows: Vec<_> = history_rows().into_iter().map(|mut r| {
        r.contime += shift;
        r
    }).collect();
    let (mut store, _) = Store::open(&path).expect("open");
    store.insert_batch(&rows).expect("insert");
    path
}

/// A feed served by the real hub, with a thread publishing the fixture's live traffic
/// (fresh times and flow ids) every 150 ms.
struct Feed {
    hub: FeedHub,
    server: Option<std::thread::JoinHandle<()>>,
    publisher: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Feed {
    fn start(path: &Path, access: SocketAccess) -> Feed {
        let (server, hub) = FeedServer::bind(path, access, FeedLimits::default()).expect("bind feed");
        let server = std::thread::spawn(move || server.run_blocking().expect("feed server"));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hub.clone(), stop.clone());
        let publisher = std::thread::spawn(move || {
            let mut round = 0u64;
            while !s.load(Ordering::Relaxed) {
                round += 1;
                for u in live_updates() {
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                    h.publish(&FlowUpdate { time: now, flow: u.flow + 10 * round, ..u });
                }
                std::thread::sleep(Duration::from_millis(150));
            }
        });
        Feed { hub, server: Some(server), publisher: Some(publisher), stop }
    }

    /// As when the daemon stops: readers see end-of-file, the socket file goes.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(p) = self.publisher.take() {
            p.join().expect("publisher");
        }
        self.hub.close();
        if let Some(s) = self.server.take() {
            s.join().expect("server");
        }
    }
}

fn assert_terminal_restored(screen: &str, expected: i32) {
    assert!(screen.contains(&format!("EXIT={expected}")), "exit status {expected}:\n{screen}");
    assert!(screen.contains("icanon") && !screen.contains("-icanon") && !screen.contains("-echo"), "cooked mode again:\n{screen}");
}

#[test]
fn tui_browses_history_follows_the_feed_and_survives_the_daemon_stopping() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let db = history_now(dir.path());
    let sock = dir.path().join("events.sock");
    let feed = Feed::start(&sock, SocketAccess::default());
    let t = Tmux::start("tui", 120, 32, &command_line(&["tui", "--db", &db.display().to_string(), "--socket", &sock.display().to_string()]));
    t.wait_for(&["picosnitch tui | Process executable | all history", "/usr/bin/curl", "/usr/sbin/sshd", "row 1/5"]);
    t.keys(&["Right"]);
    t.wait_for(&["Process name", "firefox"]);
    t.keys(&["f"]);
    t.wait_for(&["filters: name = curl", "1 row,"]);
    t.keys(&["d"]);
    t.wait_for(&["Details connections", "2 connections", "example.com:443", "command: curl -sSL https://example.com"]);
    t.keys(&["BSpace"]);
    t.wait_for(&["Process name", "no filters", "wget"]);
    t.keys(&["t"]);
    t.wait_for(&["last 1 minute (since"]);
    t.keys(&["t", "t", "t", "t", "t", "t", "t", "t"]);
    t.wait_for(&["last 1 day (since", "curl", "sshd"]);
    t.keys(&["T", "T", "T", "T", "T", "T", "T", "T", "T"]);
    t.wait_for(&["all history"]);
    t.keys(&["?"]);
    t.wait_for(&["picosnitch tui: keys", "drill down"]);
    t.keys(&["x"]);
    t.wait_gone("picosnitch tui: keys");
    t.keys(&["l"]);
    t.wait_for(&["Live feed |", "Executables:", "/usr/lib/firefox/firefox", "Recent events", &format!("live feed {}", sock.display())]);
    // The daemon stops: the numbers stay, the status says so and how to start it.
    feed.stop();
    t.wait_for(&["no picosnitch daemon is running", "sudo picosnitch daemon", "/usr/lib/firefox/firefox"]);
    // It comes back: the view reconnects by itself.
    let feed = Feed::start(&sock, SocketAccess::default());
    t.wait_for(&[&format!("live feed {}", sock.display())]);
    t.tmux(&["resize-window", "-t", "main", "-x", "50", "-y", "10"]);
    t.wait_for(&["Terminal too small: 50x10"]);
    t.tmux(&["resize-window", "-t", "main", "-x", "120", "-y", "32"]);
    t.wait_for(&["Executables:"]);
    t.keys(&["q"]);
    let s = t.finished();
    assert_terminal_restored(&s, 0);
    assert!(!s.contains("picosnitch tui |"), "left the alternate screen:\n{s}");
    feed.stop();
}

#[test]
fn top_waits_for_a_daemon_then_shows_its_traffic() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let sock = dir.path().join("events.sock");
    let t = Tmux::start("top", 120, 30, &command_line(&["top", "--socket", &sock.display().to_string()]));
    t.wait_for(&["Live feed unavailable", "no picosnitch daemon is running", "systemctl start picosnitch"]);
    let feed = Feed::start(&sock, SocketAccess::default());
    t.wait_for(&["picosnitch top | live", "/usr/lib/firefox/firefox", "/usr/bin/curl", "Listening", "22"]);
    t.keys(&["s"]);
    t.wait_for(&["by received"]);
    t.keys(&["/", "c", "u", "r", "l", "Enter"]);
    t.wait_for(&["matching \"curl\""]);
    t.keys(&["p"]);
    t.wait_for(&["PAUSED"]);
    t.keys(&["q"]);
    assert_terminal_restored(&t.finished(), 0);
    feed.stop();
}

#[test]
fn tui_without_a_database_says_so_until_the_daemon_creates_it() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("picosnitch.db");
    let sock = dir.path().join("events.sock");
    let t = Tmux::start("nodb", 110, 30, &command_line(&["tui", "--db", &db.display().to_string(), "--socket", &sock.display().to_string()]));
    t.wait_for(&["No history yet", "does not exist", "sudo picosnitch daemon"]);
    history_now(dir.path());
    t.wait_for(&["/usr/bin/curl", "row 1/5"]);
    t.keys(&["q"]);
    assert_terminal_restored(&t.finished(), 0);
}

#[test]
fn without_permission_the_screen_says_which_group_to_join() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let db = history_now(dir.path());
    let sock = dir.path().join("events.sock");
    let feed = Feed::start(&sock, SocketAccess { mode: 0o660, gid: None });
    let args = ["tui", "--db", &db.display().to_string(), "--socket", &sock.display().to_string()];
    let line = if running_as_root() {
        // Root may open anything: run the UI as nobody, outside the files' group.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).expect("chmod db");
        format!("setpriv --reuid=65534 --regid=65534 --clear-groups -- {}", command_line(&args))
    } else {
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).expect("chmod db");
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o000)).expect("chmod socket");
        command_line(&args)
    };
    let t = Tmux::start("perm", 110, 30, &line);
    t.wait_for(&["No permission", "Permission denied reading", &db.display().to_string()]);
    t.keys(&["l"]);
    t.wait_for(&["permission denied opening the live feed", "join the `picosnitch` group"]);
    t.keys(&["q"]);
    assert_terminal_restored(&t.finished(), 0);
    feed.stop();
}

#[test]
fn a_group_member_reads_the_history_whether_or_not_the_daemon_runs() {
    if !tmux_available() {
        return;
    }
    if !running_as_root() {
        println!("SKIPPED: needs root to hand the files to another user's group");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let db = history_now(dir.path());
    // As the daemon leaves it: root's file, readable by the group (nogroup for nobody),
    // no writer running so no -wal/-shm, and a directory the reader may not write.
    std::os::unix::fs::chown(&db, None, Some(65534)).expect("chgrp");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).expect("chmod db");
    assert!(!PathBuf::from(format!("{}-wal", db.display())).exists());
    let sock = dir.path().join("events.sock");
    // The feed socket too: 0660, the reader's group.
    let feed = Feed::start(&sock, SocketAccess { mode: 0o660, gid: Some(65534) });
    let args = ["tui", "--db", &db.display().to_string(), "--socket", &sock.display().to_string()];
    let t = Tmux::start("group", 110, 30, &format!("setpriv --reuid=65534 --regid=65534 --clear-groups -- {}", command_line(&args)));
    t.wait_for(&["/usr/bin/curl", "row 1/5"]);
    t.keys(&["l"]);
    t.wait_for(&["Executables:", "/usr/lib/firefox/firefox"]);
    t.keys(&["l"]);
    t.wait_for(&["Process executable"]);
    // The daemon starts and writes a new program's row; after a reload it shows.
    let (mut writer, _) = Store::open(&db).expect("writer");
    let mut row = history_rows().remove(0);
    row.contime = unix_now();
    row.exe = exe("/usr/bin/rsync", "rsync", "rsync -a src dst", "ab".repeat(32).as_str());
    writer.insert_batch(&[row]).expect("insert");
    for side in ["-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{side}", db.display()));
        std::os::unix::fs::chown(&p, None, Some(65534)).expect("chgrp");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    }
    t.keys(&["r"]);
    t.wait_for(&["/usr/bin/rsync", "row 1/6"]);
    t.keys(&["q"]);
    assert_terminal_restored(&t.finished(), 0);
    drop(writer);
    feed.stop();
}

/// Whether `pid` still runs (a zombie, or gone, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn a_terminal_that_goes_away_ends_the_ui() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let db = history_now(dir.path());
    let sock = dir.path().join("events.sock");
    let mut t = Tmux::start("hangup", 100, 30, &command_line(&["tui", "--db", &db.display().to_string(), "--socket", &sock.display().to_string()]));
    t.wait_for(&["/usr/bin/curl"]);
    let shell: u32 = t.tmux(&["display-message", "-p", "-t", "main", "#{pane_pid}"]).trim().parse().expect("pane pid");
    let ui: u32 = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
        .expect("children of the pane's shell")
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the ui's pid");
    assert!(alive(ui));
    // The terminal hangs up (as when an ssh session drops): the UI must exit, not spin.
    t.kill_server();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(ui) {
        if Instant::now() > deadline {
            // Do not leave it spinning behind the failed test.
            let _ = Command::new("kill").args(["-9", &ui.to_string()]).status();
            panic!("the ui (pid {ui}) still ran 5 s after its terminal went away");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_panic_leaves_the_terminal_usable() {
    if !tmux_available() {
        return;
    }
    let t = Tmux::start("panic", 100, 20, &command_line(&["panic-demo"]));
    let s = t.finished();
    assert_terminal_restored(&s, 101);
    assert!(s.contains("a deliberate panic inside the UI"), "the panic message is readable:\n{s}");
    assert!(!s.contains("about to panic"), "left the alternate screen:\n{s}");
}
