//! The live feed and the terminal UIs against the real daemon with real traffic: the
//! feed socket the supervisor binds streams every flow with its identity and exact
//! bytes; a member of the service group may read it and nobody else; `picosnitch top`
//! and `picosnitch tui` in a real terminal (tmux) show what the daemon recorded.
mod common;
#[path = "../../picosnitch-tui/tests/common/tmux_driver.rs"]
mod tmux_driver;

use common::*;
use picosnitch_feed::{Direction, FeedClient, FlowUpdate, UpdateKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tmux_driver::{tmux_available, Tmux};

const UP: usize = 70_001;
const DOWN: usize = 300_007;

fn feed_path(d: &Daemon) -> PathBuf {
    d.dir.path().join("run").join(picosnitch_feed::SOCKET_NAME)
}

/// Connects and waits until the primary counts this reader, so no update is missed.
fn subscribe(d: &Daemon, readers: u64) -> FeedClient {
    let client = FeedClient::connect(&feed_path(d)).expect("connecting to the live feed");
    client.set_read_timeout(Some(Duration::from_millis(500))).expect("read timeout");
    d.wait_status("the primary to count the feed reader", Duration::from_secs(20), |s| {
        s["primary"]["feed_subscribers"].as_u64() == Some(readers)
    });
    client
}

/// Every update for `exe` until its flow closes (bounded by `timeout`).
fn updates_until_close(client: &mut FeedClient, exe: &Path, timeout: Duration) -> Vec<FlowUpdate> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match client.next_update() {
            Ok(Some(u)) if Path::new(&u.exe) == exe => {
                let closed = u.kind == UpdateKind::Close;
                seen.push(u);
                if closed {
                    return seen;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the feed ended while the daemon runs"),
            Err(e) if e.is_timeout() => {}
            Err(e) => panic!("reading the feed: {e}"),
        }
    }
    panic!("no close for {} within {timeout:?}; updates: {seen:#?}", exe.display());
}

fn tcp_exchange(tag: &str) -> (Traffic, Counts, u16) {
    let client = Traffic::new(&format!("cli-{tag}"));
    let (c, port) = tcp_exchange_with(tag, &client);
    (client, c, port)
}

fn tcp_exchange_with(tag: &str, client: &Traffic) -> (Counts, u16) {
    let server = Traffic::new(&format!("srv-{tag}"));
    let srv = server.serve(&["tcp-server", "--bind", "127.0.0.1:0", "--send", &DOWN.to_string()]);
    let port = srv.port;
    let c = client.run(&["tcp-client", "--to", &format!("127.0.0.1:{port}"), "--send", &UP.to_string()]);
    srv.finish();
    assert_eq!((c.sent, c.received), (UP as i64, DOWN as i64), "the generator's own counts");
    (c, port)
}

#[test]
fn the_feed_streams_each_flow_with_its_identity_and_exact_bytes() {
    if !root_or_skip("the_feed_streams_each_flow_with_its_identity_and_exact_bytes") {
        return;
    }
    let d = Daemon::start("");
    let mut feed = subscribe(&d, 1);
    let (client, c, port) = tcp_exchange("feed");
    let updates = updates_until_close(&mut feed, &client.path, Duration::from_secs(30));

    let open = &updates[0];
    assert_eq!(open.kind, UpdateKind::Open, "the first update opens the flow: {updates:#?}");
    assert_eq!(open.v, picosnitch_feed::FORMAT_VERSION);
    let (me, parent) = own_lineage();
    for u in &updates {
        assert_eq!(u.flow, open.flow, "one flow, one number");
        assert_eq!(u.pid, c.pid, "the generator's own pid");
        assert_eq!(u.ppid, std::process::id(), "its parent is this test");
        assert_eq!(u.name, "cli-feed");
        assert!(u.cmdline.contains("tcp-client"), "{}", u.cmdline);
        assert_eq!(Path::new(&u.pexe), me, "parent executable");
        assert_eq!(Path::new(&u.gpexe), parent, "grandparent executable");
        assert_eq!((u.family, u.protocol, u.rport, u.raddr.as_str()), (2, 6, port, "127.0.0.1"));
        assert_eq!(u.direction, Some(Direction::Out));
        assert!(u.sha256.is_empty() || u.sha256 == client.sha256(), "sha256 is the file's or pending: {}", u.sha256);
    }
    let close = updates.last().expect("a close");
    assert_eq!((close.send_total, close.recv_total), (c.sent as u64, c.received as u64), "exact totals: {updates:#?}");
    let summed = updates.iter().fold((0, 0), |(s, r), u| (s + u.send, r + u.recv));
    assert_eq!(summed, (close.send_total, close.recv_total), "the per-update bytes add up to the totals");

    // Once the history has its row, the hash is known: the same executable again gets
    // it on every update from the start.
    d.wait_rows(&client.path, Duration::from_secs(60), |r| !r.is_empty());
    tcp_exchange_with("feed2", &client);
    let deadline = Instant::now() + Duration::from_secs(30);
    let known = loop {
        match feed.next_update() {
            Ok(Some(u)) if Path::new(&u.exe) == client.path && !u.sha256.is_empty() => break u,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the feed ended while the daemon runs"),
            Err(e) if e.is_timeout() => {}
            Err(e) => panic!("reading the feed: {e}"),
        }
        assert!(Instant::now() < deadline, "no update with the sha256 of {}", client.path.display());
    };
    assert_eq!(known.sha256, client.sha256(), "sha256 equals sha256sum of the file");
    assert!(known.flow > open.flow, "a new flow number");
}

/// Runs python3 connecting to the feed as uid 65534 with `gid` as its only group, and
/// returns what it printed.
fn connect_as_nobody(sock: &Path, gid: u32) -> String {
    use std::os::unix::process::CommandExt;
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(sys.argv[1]); print('connected')\nexcept OSError as e:\n  print('refused', e.errno)";
    // std drops the supplementary groups when it changes uid.
    let out = Command::new("python3").args(["-c", script]).arg(sock).uid(65534).gid(gid).output().expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn only_the_service_group_may_read_the_feed() {
    if !root_or_skip("only_the_service_group_may_read_the_feed") {
        return;
    }
    let d = Daemon::start("");
    let sock = feed_path(&d);
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(&sock).expect("the feed socket exists");
    assert_eq!(md.mode() & 0o777, 0o660, "mode 0660");
    assert_eq!(md.gid(), SERVICE_UID, "group of [data] group");
    assert_eq!(connect_as_nobody(&sock, SERVICE_UID), "connected", "a member of the group may connect");
    assert_eq!(connect_as_nobody(&sock, 65534), "refused 13", "anyone else gets EACCES");
}

#[test]
fn the_feed_survives_a_primary_restart_at_the_same_path() {
    if !root_or_skip("the_feed_survives_a_primary_restart_at_the_same_path") {
        return;
    }
    let d = Daemon::start("");
    let mut first = subscribe(&d, 1);
    let pid = d.role_pid("primary");
    // SAFETY: kill on a pid the daemon reported as its primary.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    // The old primary's readers read end-of-file...
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match first.next_update() {
            Ok(None) | Err(_) if Instant::now() > deadline => panic!("the old reader never saw the end"),
            Ok(None) => break,
            Err(e) if !e.is_timeout() => break,
            _ => {}
        }
    }
    // ...and the same socket serves the new one.
    d.wait_status("a new primary", Duration::from_secs(30), |s| {
        s["roles"].as_array().is_some_and(|r| r.iter().any(|r| r["role"] == "primary" && r["pid"].as_u64() != Some(u64::from(pid)) && r["ready"] == true))
    });
    let mut second = subscribe(&d, 1);
    let (client, c, _) = tcp_exchange("restart");
    let updates = updates_until_close(&mut second, &client.path, Duration::from_secs(30));
    let close = updates.last().expect("close");
    assert_eq!((close.send_total, close.recv_total), (c.sent as u64, c.received as u64));
}

fn tmux_or_skip(test: &str) -> bool {
    root_or_skip(test) && tmux_available()
}

#[test]
fn top_in_a_terminal_shows_real_traffic_by_executable() {
    if !tmux_or_skip("top_in_a_terminal_shows_real_traffic_by_executable") {
        return;
    }
    let d = Daemon::start("");
    let t = Tmux::start("daemon-top", 160, 40, &format!("{} top --config {}", DAEMON, d.config.display()));
    t.wait_for(&["picosnitch top"]);
    d.wait_status("top to subscribe", Duration::from_secs(20), |s| s["primary"]["feed_subscribers"].as_u64() == Some(1));
    let (client, _, _) = tcp_exchange("top");
    // Both sides appear (the server's row can come a refresh after the client's).
    let screen = t.wait_for(&["cli-top", "srv-top", &client.path.display().to_string()]);
    assert!(screen.contains("picosnitch top"), "still top:\n{screen}");
    t.keys(&["q"]);
}

#[test]
fn tui_in_a_terminal_browses_what_the_daemon_recorded() {
    if !tmux_or_skip("tui_in_a_terminal_browses_what_the_daemon_recorded") {
        return;
    }
    let d = Daemon::start("");
    let (client, c, _) = tcp_exchange("tui");
    d.wait_rows(&client.path, Duration::from_secs(60), |r| sums(r).1 >= c.received);
    let t = Tmux::start("daemon-tui", 160, 40, &format!("{} tui --config {}", DAEMON, d.config.display()));
    let screen = t.wait_for(&[&client.path.display().to_string()]);
    assert!(screen.contains("srv-tui") || screen.contains("srv"), "both executables listed:\n{screen}");
    // Find the client's row and filter on it. Other tests' traffic runs at the same time
    // and is recorded too (the daemon watches the whole machine), so the rows above ours
    // are not known: find narrows the table to our path, then Enter filters on it.
    let path = client.path.display().to_string();
    t.keys(&["/", &path, "Enter", "Enter"]);
    let screen = t.wait_for(&[&format!("executable = {path}")]);
    assert!(!screen.contains("srv-tui"), "the filter keeps only the client's rows:\n{screen}");
    t.keys(&["q"]);
}
