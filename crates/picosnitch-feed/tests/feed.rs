use picosnitch_feed::*;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn update(flow: u64) -> FlowUpdate {
    FlowUpdate {
        v: FORMAT_VERSION,
        kind: UpdateKind::Bytes,
        flow,
        time: 1_795_341_600.5,
        pid: 4242,
        ppid: 1,
        uid: 1000,
        exe: "/usr/bin/curl".into(),
        name: "curl".into(),
        cmdline: "curl -sSL https://example.com/".repeat(8),
        sha256: "ab".repeat(32),
        pexe: "/usr/bin/bash".into(),
        pname: "bash".into(),
        family: 2,
        protocol: 6,
        laddr: "10.0.0.2".into(),
        lport: 40_000,
        raddr: "93.184.216.34".into(),
        rport: 443,
        domain: "example.com".into(),
        direction: Some(Direction::Out),
        send: flow,
        recv: 2 * flow,
        ..Default::default()
    }
}

struct Running {
    _dir: tempfile::TempDir,
    path: PathBuf,
    hub: FeedHub,
    thread: Option<std::thread::JoinHandle<Result<(), FeedError>>>,
}

impl Running {
    fn start(limits: FeedLimits) -> Running {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.sock");
        let (server, hub) = FeedServer::bind(&path, SocketAccess::default(), limits).expect("bind");
        let thread = std::thread::spawn(move || async_io::block_on(server.run()));
        Running { _dir: dir, path, hub, thread: Some(thread) }
    }

    fn wait_for(&self, what: &str, ok: impl Fn(FeedStats) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ok(self.hub.stats()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", self.hub.stats());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn stop(mut self) {
        self.hub.close();
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread").expect("server result");
        }
    }
}

#[test]
fn every_subscriber_gets_every_line_in_order() {
    let feed = Running::start(FeedLimits::default());
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut c = FeedClient::connect(&feed.path).expect("connect");
            std::thread::spawn(move || (1..=500u64).map(|_| c.next_update().expect("read").expect("line")).collect::<Vec<_>>())
        })
        .collect();
    feed.wait_for("3 subscribers", |s| s.subscribers == 3);
    for flow in 1..=500 {
        feed.hub.publish(&update(flow));
    }
    for r in readers {
        let got = r.join().expect("reader");
        assert_eq!(got.iter().map(|u| u.flow).collect::<Vec<_>>(), (1..=500).collect::<Vec<_>>());
        assert_eq!(got[41], update(42));
    }
    let stats = feed.hub.stats();
    assert_eq!((stats.published, stats.dropped_slow, stats.refused), (500, 0, 0));
    feed.stop();
}

#[test]
fn a_stalled_subscriber_is_dropped_and_publish_never_waits() {
    let feed = Running::start(FeedLimits { max_subscribers: 8, queue_lines: 64 });
    // Connected, never reads: its socket buffer fills, then its queue.
    let mut stalled = UnixStream::connect(&feed.path).expect("connect stalled");
    let mut healthy = FeedClient::connect(&feed.path).expect("connect healthy");
    feed.wait_for("2 subscribers", |s| s.subscribers == 2);
    let received = Arc::new(AtomicU64::new(0));
    let seen = received.clone();
    let reader = std::thread::spawn(move || {
        let mut flows = Vec::new();
        while let Some(u) = healthy.next_update().expect("read") {
            flows.push(u.flow);
            seen.fetch_add(1, Ordering::Release);
            if flows.len() == 20_000 {
                break;
            }
        }
        (flows, healthy)
    });
    let hub = feed.hub.clone();
    let counted = received.clone();
    let publisher = std::thread::spawn(move || {
        let mut slowest = Duration::ZERO;
        for flow in 1..=20_000u64 {
            let u = update(flow);
            let t = Instant::now();
            hub.publish(&u);
            slowest = slowest.max(t.elapsed());
            // Pace to the healthy reader so only the stalled one can fall behind.
            if flow % 32 == 0 {
                let deadline = Instant::now() + Duration::from_secs(10);
                while counted.load(Ordering::Acquire) + 32 < flow && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
        slowest
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !publisher.is_finished() {
        assert!(Instant::now() < deadline, "publishing 20000 lines did not finish: publish waited on someone");
        std::thread::sleep(Duration::from_millis(10));
    }
    let slowest = publisher.join().expect("publisher");
    // ~20 MB went through; one call never waits on a socket, only on a short lock.
    assert!(slowest < Duration::from_millis(50), "slowest publish took {slowest:?}");
    let (flows, _still_connected) = reader.join().expect("reader");
    assert_eq!(flows, (1..=20_000).collect::<Vec<_>>());
    let stats = feed.hub.stats();
    assert_eq!((stats.dropped_slow, stats.subscribers, stats.published), (1, 1, 20_000));
    // The stalled subscriber's connection was closed: after its buffered bytes, EOF.
    stalled.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut sink = Vec::new();
    stalled.read_to_end(&mut sink).expect("stalled reads to end-of-file");
    assert!(sink.len() > 64 * 100, "it had been sent something before falling behind: {}", sink.len());
    feed.stop();
}

#[test]
fn over_the_limit_a_subscriber_is_refused_with_a_message_and_a_freed_slot_is_reused() {
    let feed = Running::start(FeedLimits { max_subscribers: 2, queue_lines: 16 });
    let first = FeedClient::connect(&feed.path).expect("first");
    let mut second = FeedClient::connect(&feed.path).expect("second");
    feed.wait_for("2 subscribers", |s| s.subscribers == 2);
    let mut third = FeedClient::connect(&feed.path).expect("connect succeeds, then the daemon says no");
    match third.next_update() {
        Err(ReadError::Refused(msg)) => assert!(msg.contains("too many subscribers") && msg.contains("at most 2"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(third.next_update(), Ok(None)), "then the connection is closed");
    feed.wait_for("the refusal counted", |s| s.refused == 1);
    // Hanging up frees the slot even though nothing is being published.
    drop(first);
    feed.wait_for("the slot freed", |s| s.subscribers == 1);
    let mut fourth = FeedClient::connect(&feed.path).expect("fourth");
    feed.wait_for("2 subscribers again", |s| s.subscribers == 2);
    feed.hub.publish(&update(9));
    assert_eq!(fourth.next_update().expect("read").expect("line").flow, 9);
    assert_eq!(second.next_update().expect("read").expect("line").flow, 9);
    feed.stop();
}

#[test]
fn closing_ends_every_reader_and_removes_the_socket() {
    let feed = Running::start(FeedLimits::default());
    let mut c = FeedClient::connect(&feed.path).expect("connect");
    feed.wait_for("1 subscriber", |s| s.subscribers == 1);
    let path = feed.path.clone();
    feed.hub.publish(&update(1));
    assert_eq!(c.next_update().expect("read").map(|u| u.flow), Some(1));
    let dir_alive = feed._dir.path().to_path_buf();
    let Running { hub, thread, _dir, .. } = feed;
    hub.close();
    thread.expect("thread").join().expect("join").expect("run");
    assert!(matches!(c.next_update(), Ok(None)), "end-of-file when the daemon stops");
    assert!(!path.exists(), "socket file removed");
    assert!(dir_alive.exists());
    hub.publish(&update(2)); // after close: nothing, no panic
    match FeedClient::connect(&path) {
        Err(e @ ConnectError::NoDaemon { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("sudo picosnitch daemon") && msg.contains("systemctl start picosnitch"), "{msg}");
        }
        other => panic!("expected NoDaemon, got {:?}", other.err()),
    }
}

#[test]
fn bind_replaces_a_stale_socket_but_not_a_live_one_or_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.sock");
    // A socket left by a daemon that died: bound, then its listener dropped.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale"));
    match FeedClient::connect(&path) {
        Err(ConnectError::NoDaemon { .. }) => {}
        other => panic!("a stale socket means no daemon, got {:?}", other.err()),
    }
    let access = SocketAccess { mode: 0o640, gid: None };
    let (server, hub) = FeedServer::bind(&path, access, FeedLimits::default()).expect("replaces stale");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o640);
    match FeedServer::bind(&path, SocketAccess::default(), FeedLimits::default()) {
        Err(FeedError::InUse { .. }) => {}
        other => panic!("expected InUse, got {:?}", other.err()),
    }
    drop((server, hub));
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, b"keep me").expect("write");
    match FeedServer::bind(&file, SocketAccess::default(), FeedLimits::default()) {
        Err(e @ FeedError::NotASocket { .. }) => assert!(e.to_string().contains("refusing to replace")),
        other => panic!("expected NotASocket, got {:?}", other.err()),
    }
    assert_eq!(std::fs::read(&file).expect("kept"), b"keep me");
}

/// Set in the child that `a_socket_without_permission_says_which_group_to_join`
/// starts as another user.
const CHILD_SOCKET: &str = "PICOSNITCH_FEED_TEST_CONNECT";

#[test]
fn a_socket_without_permission_says_which_group_to_join() {
    if let Some(path) = std::env::var_os(CHILD_SOCKET) {
        // In the child, as user nobody: the socket is 0660 root:root.
        match FeedClient::connect(Path::new(&path)) {
            Err(e @ ConnectError::PermissionDenied { .. }) => {
                let msg = e.to_string();
                assert!(msg.starts_with("permission denied opening the live feed") && msg.contains("join the `picosnitch` group"), "{msg}");
                return;
            }
            other => panic!("expected PermissionDenied, got {:?}", other.err()),
        }
    }
    let e = ConnectError::PermissionDenied { path: Path::new("/run/picosnitch/events.sock").into(), group: "picosnitch".into() };
    assert_eq!(
        e.to_string(),
        "permission denied opening the live feed /run/picosnitch/events.sock: join the `picosnitch` group \
         (sudo usermod -aG picosnitch $USER, then log in again) or run as root"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let path = dir.path().join("events.sock");
    let (_server, _hub) = FeedServer::bind(&path, SocketAccess { mode: 0o660, gid: None }, FeedLimits::default()).expect("bind");
    if !running_as_root() {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        assert!(matches!(FeedClient::connect(&path), Err(ConnectError::PermissionDenied { .. })));
        return;
    }
    // Root passes every permission check: ask the kernel as user nobody, by running
    // this same test in a child process under setpriv (util-linux).
    let exe = std::env::current_exe().expect("test binary");
    let status = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(exe)
        .args(["--exact", "a_socket_without_permission_says_which_group_to_join", "--nocapture"])
        .env(CHILD_SOCKET, &path)
        .status()
        .expect("setpriv (util-linux) runs the child as nobody");
    assert!(status.success(), "the child as nobody did not see PermissionDenied: {status}");
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

#[test]
fn a_reader_reports_refusals_newer_versions_and_skips_malformed_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = listener.accept().expect("accept");
        s.write_all(b"not json\n\n").expect("w");
        s.write_all(&update(5).to_line()).expect("w");
        s.write_all(b"{\"v\":2,\"kind\":\"open\"}\n").expect("w");
        s.write_all(b"{\"v\":1,\"kind\":\"teleport\",\"flow\":6,\"future_field\":[1,2]}\n").expect("w");
        s.write_all(b"{\"v\":1,\"kind\":\"open\",\"flow\":7}").expect("w"); // cut short: no newline
    });
    let mut c = FeedClient::connect(&path).expect("connect");
    assert!(matches!(c.next_update(), Err(ReadError::Malformed(_))));
    assert_eq!(c.next_update().expect("ok").expect("line"), update(5));
    match c.next_update() {
        Err(e @ ReadError::Version { found: 2, known: 1 }) => assert!(e.to_string().contains("upgrade picosnitch")),
        other => panic!("expected Version, got {other:?}"),
    }
    let unknown = c.next_update().expect("ok").expect("line");
    assert_eq!((unknown.kind, unknown.flow), (UpdateKind::Unknown, 6));
    writer.join().expect("writer");
    assert!(matches!(c.next_update(), Ok(None)), "a line cut short by end-of-file is not an update");
}

#[test]
fn the_format_document_matches_the_code() {
    let doc = include_str!("../FORMAT.md");
    let examples: Vec<&str> = doc.lines().filter(|l| l.starts_with("{\"v\":1,\"kind\":\"") && !l.contains("\"error\"")).collect();
    assert_eq!(examples.len(), 5);
    let mut kinds = Vec::new();
    for line in &examples {
        let u: FlowUpdate = serde_json::from_str(line).expect("example parses");
        assert_eq!(String::from_utf8(u.to_line()).expect("utf8"), format!("{line}\n"), "example is exactly what the daemon sends");
        kinds.push(u.kind);
    }
    assert_eq!(kinds, [UpdateKind::Open, UpdateKind::Bytes, UpdateKind::Close, UpdateKind::Open, UpdateKind::Exec]);
    let keys: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&update(1).to_line()).expect("object");
    for key in keys.keys() {
        assert!(doc.contains(&format!("`{key}`")), "FORMAT.md does not document `{key}`");
    }
    assert_eq!(keys.len(), 33);
}
