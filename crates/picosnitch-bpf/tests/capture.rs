//! Loads the real BPF object into this kernel and checks what it records for traffic
//! this test makes itself on loopback. Needs root (CAP_BPF, CAP_SYS_ADMIN).
use picosnitch_bpf::events::{FlowKey, RawEvent};
use picosnitch_bpf::{CaptureOptions, KernelCapture};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn capture_or_skip(test: &str) -> Option<KernelCapture> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED {test}: needs root to load BPF programs");
        return None;
    }
    Some(KernelCapture::load(&CaptureOptions::default()).expect("loading the BPF object into this kernel"))
}

fn drain(cap: &mut KernelCapture, into: &mut Vec<RawEvent>) {
    while let Some(item) = cap.ring.next() {
        into.push(RawEvent::decode(&item).expect("kernel records decode"));
    }
}

/// Every flow key of this process toward `port` (either end), with its counters.
fn flows_of_port(cap: &KernelCapture, events: &[RawEvent], port: u16) -> Vec<(FlowKey, u64, u64)> {
    let me = std::process::id();
    let mut out = Vec::new();
    for ev in events {
        if let RawEvent::Flow(f) = ev {
            if f.task.tgid == me && (f.key.rport == port || f.lport == port) {
                let v = cap.flows.get(&f.key, 0).expect("flow still in the map");
                out.push((f.key, v.counters.send_bytes, v.counters.recv_bytes));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn tcp_loopback_bytes_are_exact_on_both_ends() {
    let Some(mut cap) = capture_or_skip("tcp_loopback_bytes_are_exact_on_both_ends") else { return };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 300_001];
        s.read_exact(&mut buf).expect("read request");
        s.write_all(&vec![7u8; 1_234_567]).expect("write reply");
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(&vec![1u8; 300_001]).expect("send");
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("receive");
    assert_eq!(got.len(), 1_234_567);
    server.join().expect("server thread");

    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let flows = loop {
        drain(&mut cap, &mut events);
        let flows = flows_of_port(&cap, &events, port);
        if flows.len() >= 2 || Instant::now() > deadline {
            break flows;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let client = flows.iter().find(|(k, _, _)| k.rport == port).expect("client flow recorded");
    assert_eq!((client.1, client.2), (300_001, 1_234_567), "client sent/received");
    let server = flows.iter().find(|(k, _, _)| k.rport != port).expect("server flow recorded");
    assert_eq!((server.1, server.2), (1_234_567, 300_001), "server sent/received");
    let exec_seen = events.iter().any(|e| matches!(e, RawEvent::Flow(f) if f.task.exe.ino != 0));
    assert!(exec_seen, "flow events carry the executable's inode");
}

#[test]
fn unconnected_udp_is_split_per_peer() {
    let Some(mut cap) = capture_or_skip("unconnected_udp_is_split_per_peer") else { return };
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind a");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    let (pa, pb) = (a.local_addr().expect("a").port(), b.local_addr().expect("b").port());
    s.send_to(&[0u8; 100], ("127.0.0.1", pa)).expect("send a");
    s.send_to(&[0u8; 100], ("127.0.0.1", pa)).expect("send a");
    s.send_to(&[0u8; 333], ("127.0.0.1", pb)).expect("send b");
    let mut buf = [0u8; 2000];
    let (n, _) = b.recv_from(&mut buf).expect("recv b");
    assert_eq!(n, 333);

    let mut events = Vec::new();
    std::thread::sleep(Duration::from_millis(50));
    drain(&mut cap, &mut events);
    let to_a = flows_of_port(&cap, &events, pa);
    let sent_to_a: u64 = to_a.iter().filter(|(k, _, _)| k.rport == pa).map(|f| f.1).sum();
    assert_eq!(sent_to_a, 200);
    let to_b = flows_of_port(&cap, &events, pb);
    let sent_to_b: u64 = to_b.iter().filter(|(k, _, _)| k.rport == pb).map(|f| f.1).sum();
    assert_eq!(sent_to_b, 333);
}

#[test]
fn exec_records_carry_the_path_and_argv() {
    let Some(mut cap) = capture_or_skip("exec_records_carry_the_path_and_argv") else { return };
    // A path several directories deep, through a symlink-free temp dir.
    let dir = tempfile::tempdir().expect("tempdir");
    let deep = dir.path().join("a/bb/ccc");
    std::fs::create_dir_all(&deep).expect("mkdir");
    let exe = deep.join("true-copy");
    std::fs::copy("/bin/true", &exe).expect("copy /bin/true");
    let status = std::process::Command::new(&exe).args(["one", "two words"]).status().expect("run");
    assert!(status.success());
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let want = exe.canonicalize().expect("canonical").display().to_string();
    loop {
        drain(&mut cap, &mut events);
        let found = events.iter().find_map(|e| match e {
            RawEvent::Exec(x) if x.path() == want => Some(x.argv()),
            _ => None,
        });
        if let Some(argv) = found {
            assert_eq!(argv, vec![exe.display().to_string(), "one".into(), "two words".into()]);
            return;
        }
        if Instant::now() > deadline {
            let paths: Vec<String> = events.iter().filter_map(|e| match e {
                RawEvent::Exec(x) => Some(x.path()),
                _ => None,
            }).collect();
            panic!("no exec record with path {want}; saw {paths:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every tracing program's skipped runs as /proc/self/fdinfo shows them (the test is not
/// confined, so it can read them the way the confined monitor cannot).
fn fdinfo_recursion_misses(cap: &KernelCapture) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for (name, fd) in cap.tracing_program_fds() {
        let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
        let info = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let n = info
            .lines()
            .find_map(|l| l.strip_prefix("recursion_misses:")?.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{path} has no recursion_misses line:\n{info}"));
        out.push((name, n));
    }
    out.sort();
    out
}

#[test]
fn storage_is_created_and_every_loss_counter_is_reported() {
    let Some(mut cap) = capture_or_skip("storage_is_created_and_every_loss_counter_is_reported") else { return };
    // The start probe created socket-local storage for a socket of its own.
    assert!(!cap.choice.reason.contains("socket-local storage unavailable"), "{}", cap.choice.reason);

    // Unconnected UDP needs storage for each datagram's peer; a connect() for its
    // pending announcement; a TCP socket for its FINs.
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    let r = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
    s.send_to(&[0u8; 10], r.local_addr().expect("addr")).expect("send");
    let mut buf = [0u8; 64];
    assert_eq!(r.recv_from(&mut buf).expect("recv").0, 10);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let c = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    drop(listener.accept().expect("accept"));
    drop(c);
    std::thread::sleep(Duration::from_millis(100));
    let mut events = Vec::new();
    drain(&mut cap, &mut events);

    let counters = cap.loss_counters().expect("reading the loss counters");
    let names: Vec<&str> = counters.iter().map(|(n, _)| *n).collect();
    for want in ["storage_open", "storage_peer", "storage_fin", "missed_runs"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for (name, v) in &counters {
        if name.starts_with("storage_") {
            assert_eq!(*v, 0, "{name}: socket-local storage failed on this kernel: {counters:?}");
        }
    }

    // What the monitor reads through bpf(BPF_OBJ_GET_INFO_BY_FD) is what the kernel
    // shows in fdinfo, for every loaded tracing program (both byte hooks at least).
    let fdinfo = fdinfo_recursion_misses(&cap);
    assert!(fdinfo.len() >= 2, "tracing programs loaded: {fdinfo:?}");
    let through_bpf = cap.missed_runs();
    assert_eq!(through_bpf, fdinfo, "skipped runs by program, bpf(2) against fdinfo");
    let total: u64 = fdinfo.iter().map(|(_, n)| n).sum();
    let reported = counters.iter().find(|(n, _)| *n == "missed_runs").map(|(_, v)| *v);
    assert_eq!(reported, Some(total));
}
