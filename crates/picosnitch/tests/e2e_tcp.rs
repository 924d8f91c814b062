//! TCP end to end: client and server attributed to their own executables with exact
//! payload bytes, over IPv4 and IPv6, and through io_uring, sendfile and splice.
mod common;

use common::*;
use std::time::Duration;

const UP: usize = 123_457;
const DOWN: usize = 1_048_577;

/// One exchange between a server copy and a client copy; checks both sides' rows.
fn exchange(d: &Daemon, tag: &str, bind: &str, io: &str) {
    let server = Traffic::new(&format!("srv-{tag}"));
    let client = Traffic::new(&format!("cli-{tag}"));
    let srv = server.serve(&["tcp-server", "--bind", bind, "--send", &DOWN.to_string()]);
    let port = srv.port;
    let host = bind.rsplit_once(':').expect("host:port").0;
    let to = format!("{host}:{port}");
    let c = client.run(&["tcp-client", "--to", &to, "--send", &UP.to_string(), "--io", io]);
    let s = srv.finish();
    assert_eq!((c.sent, c.received), (UP as i64, DOWN as i64), "the generator's own counts");
    assert_eq!((s.sent, s.received), (DOWN as i64, UP as i64));

    let family = if host.starts_with('[') { 10 } else { 2 };
    let addr = host.trim_start_matches('[').trim_end_matches(']');
    let (me, parent) = own_lineage();
    let full = |rows: &[Row], sent: i64, recv: i64| sums(rows).0 >= sent && sums(rows).1 >= recv;

    let crows = d.wait_rows(&client.path, Duration::from_secs(60), |r| full(r, c.sent, c.received));
    assert_eq!(sums(&crows), (c.sent, c.received, 1), "client bytes and one connection, exactly: {crows:#?}");
    let r = &crows[0];
    assert_eq!(r.sha256, client.sha256(), "client sha256 equals sha256sum of the file");
    assert_eq!(r.name, format!("cli-{tag}").chars().take(15).collect::<String>());
    assert!(r.cmdline.contains("tcp-client") && r.cmdline.contains(&to), "{}", r.cmdline);
    assert_eq!(r.pexe, me.display().to_string(), "parent is this test process");
    assert_eq!(r.psha256, sha256_of(&me));
    assert_eq!(r.gpexe, parent.display().to_string(), "grandparent is the test runner");
    assert_eq!((r.family, r.protocol), (family, 6));
    assert_eq!((r.rport, r.raddr.as_str(), r.laddr.as_str()), (i64::from(port), addr, addr));
    assert!(r.lport > 0 && r.lport != i64::from(port), "client's own ephemeral port: {}", r.lport);
    assert_eq!(r.uid, 0);

    let srows = d.wait_rows(&server.path, Duration::from_secs(60), |r| full(r, s.sent, s.received));
    assert_eq!(sums(&srows), (s.sent, s.received, 1), "server bytes, exactly: {srows:#?}");
    assert_eq!(srows[0].sha256, server.sha256());
    assert_eq!((srows[0].lport, srows[0].rport), (i64::from(port), r.lport), "server side sees the client's port");
}

#[test]
fn tcp_ipv4_client_and_server_are_exact() {
    if !root_or_skip("tcp_ipv4_client_and_server_are_exact") {
        return;
    }
    let d = Daemon::start("");
    exchange(&d, "tcp4", "127.0.0.1:0", "plain");
}

#[test]
fn tcp_ipv6_client_and_server_are_exact() {
    if !root_or_skip("tcp_ipv6_client_and_server_are_exact") {
        return;
    }
    let d = Daemon::start("");
    exchange(&d, "tcp6", "[::1]:0", "plain");
}

#[test]
fn io_uring_sendfile_and_splice_are_exact() {
    if !root_or_skip("io_uring_sendfile_and_splice_are_exact") {
        return;
    }
    let d = Daemon::start("");
    // io_uring SEND/RECV run through sock_sendmsg/sock_recvmsg; sendfile and a splice
    // into the socket too (Linux >= 6.5); a splice out of a TCP socket bypasses
    // recvmsg and is counted from the socket's own counters when it closes.
    exchange(&d, "uring", "127.0.0.1:0", "uring");
    exchange(&d, "sendfile", "127.0.0.1:0", "sendfile");
    exchange(&d, "splice", "127.0.0.1:0", "splice");
}

#[test]
fn a_refused_connection_is_recorded_with_its_ports() {
    if !root_or_skip("a_refused_connection_is_recorded_with_its_ports") {
        return;
    }
    let d = Daemon::start("");
    // Port 1 on loopback: nothing listens, the kernel answers with a reset.
    let client = Traffic::new("cli-refused");
    let out = std::process::Command::new(&client.path).args(["tcp-client", "--to", "127.0.0.1:1"]).output().expect("run");
    assert!(!out.status.success(), "connecting to port 1 should fail");
    let rows = d.wait_rows(&client.path, Duration::from_secs(60), |r| !r.is_empty());
    assert_eq!(sums(&rows), (0, 0, 1), "an attempt with no bytes still counts as a connection");
    assert_eq!(rows[0].rport, 1);
    assert!(rows[0].lport > 0, "the local port comes from the SYN, before the kernel released it");
}
