//! Loads the name capture (`bpf/names.bpf.c`) into this kernel and checks the records
//! it makes of DNS answers and TLS ClientHellos this test sends itself on loopback.
//! Needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN).
use picosnitch_bpf::names::{NameCapture, NameRecord, NameSource};
use picosnitch_domains::dns::build::{query, response, Rr};
use picosnitch_domains::tls::build::client_hello;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

fn capture_or_skip(test: &str) -> Option<NameCapture> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{test} needs root to load BPF programs, and CI runs as root");
        eprintln!("SKIPPED {test}: needs root to load BPF programs");
        return None;
    }
    let root = picosnitch_bpf::cgroup::find_cgroup2_root().expect("a cgroup2 mount");
    Some(NameCapture::load(&root, 1 << 20).expect("loading the name capture into this kernel"))
}

fn my_netns() -> u32 {
    let link = std::fs::read_link("/proc/self/ns/net").expect("reading /proc/self/ns/net");
    let s = link.to_string_lossy();
    s.trim_start_matches("net:[").trim_end_matches(']').parse().expect("netns inode")
}

/// A loopback address of its own for this run, so port 53 on it is free.
fn private_loopback() -> Ipv4Addr {
    let n = std::process::id();
    Ipv4Addr::new(127, 53, (n >> 8) as u8, (n as u8).max(2))
}

/// Records matching `pick`, waiting up to 5 s for them.
fn wait_for(cap: &mut NameCapture, pick: impl Fn(&NameRecord) -> bool) -> Vec<NameRecord> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut found = Vec::new();
    while Instant::now() < deadline {
        while let Some(item) = cap.ring.next() {
            let r = NameRecord::decode(&item).expect("name records decode");
            if pick(&r) {
                found.push(r);
            }
        }
        if !found.is_empty() {
            // Anything that follows in the same burst, too.
            std::thread::sleep(Duration::from_millis(100));
            while let Some(item) = cap.ring.next() {
                let r = NameRecord::decode(&item).expect("name records decode");
                if pick(&r) {
                    found.push(r);
                }
            }
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    found
}

#[test]
fn dns_answers_over_udp_and_tcp_are_copied_with_their_namespace() {
    let Some(mut cap) = capture_or_skip("dns_answers_over_udp_and_tcp_are_copied_with_their_namespace") else { return };
    let server_ip = private_loopback();
    let answer = response(
        0x5151,
        "www.capture.example",
        false,
        &[
            Rr::Cname("www.capture.example", "edge.capture.example", 30),
            Rr::Addr("edge.capture.example", IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53)), 30),
        ],
    );

    let server = UdpSocket::bind((server_ip, 53)).expect("binding UDP port 53 on a private loopback address");
    let client = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    client.send_to(&query(0x5151, "www.capture.example", false), (server_ip, 53)).expect("query");
    let mut buf = [0u8; 512];
    let (_, from) = server.recv_from(&mut buf).expect("server receives the query");
    server.send_to(&answer, from).expect("answer");
    client.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    client.recv_from(&mut buf).expect("client receives the answer");

    let got = wait_for(&mut cap, |r| r.source == NameSource::DnsUdp && r.data == answer);
    assert_eq!(got.len(), 1, "one record of the UDP answer");
    assert_eq!(got[0].netns, my_netns(), "the client socket's namespace");
    assert_eq!(got[0].wire_len as usize, answer.len());

    // The same answer over TCP, with its two-byte length.
    let listener = TcpListener::bind((server_ip, 53)).expect("binding TCP port 53");
    let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&answer);
    let reply = framed.clone();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut q = [0u8; 2];
        s.read_exact(&mut q).expect("query length");
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(q))];
        s.read_exact(&mut body).expect("query");
        s.write_all(&reply).expect("answer");
    });
    let mut c = TcpStream::connect((server_ip, 53)).expect("connect");
    let q = query(0x5151, "www.capture.example", false);
    c.write_all(&(q.len() as u16).to_be_bytes()).expect("length");
    c.write_all(&q).expect("query");
    let mut back = vec![0u8; framed.len()];
    c.read_exact(&mut back).expect("answer");
    t.join().expect("server thread");
    let got = wait_for(&mut cap, |r| r.source == NameSource::DnsTcp && r.data == framed);
    assert_eq!(got.len(), 1, "one record of the TCP answer");
    assert_eq!(got[0].netns, my_netns());
}

#[test]
fn the_first_client_hello_of_a_socket_is_copied_once() {
    let Some(mut cap) = capture_or_skip("the_first_client_hello_of_a_socket_is_copied_once") else { return };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hello = client_hello(Some("sni.capture.example"), 1200);
    let n = hello.len();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; n * 2];
        s.read_exact(&mut buf).expect("two hellos");
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(&hello).expect("hello");
    std::thread::sleep(Duration::from_millis(50));
    c.write_all(&hello).expect("the same bytes again, later on the socket");
    t.join().expect("server thread");
    let got = wait_for(&mut cap, |r| r.source == NameSource::TlsHello && r.data == hello);
    assert_eq!(got.len(), 1, "only the socket's first payload");
    assert_eq!(got[0].netns, my_netns());
    assert_ne!(got[0].cookie, 0);
    // Plain data is not copied.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut v = Vec::new();
        s.read_to_end(&mut v).expect("read");
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(b"GET / HTTP/1.1\r\nHost: plain.example\r\n\r\n").expect("request");
    drop(c);
    t.join().expect("server thread");
    let got = wait_for(&mut cap, |r| r.source == NameSource::TlsHello && r.data.starts_with(b"GET"));
    assert!(got.is_empty(), "plain HTTP is no ClientHello");
}
