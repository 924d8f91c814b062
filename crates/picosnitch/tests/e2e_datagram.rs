//! UDP (connected, unconnected, sendmmsg/recvmmsg, IPv6), ICMP echo through ping and
//! raw sockets, raw IP of another protocol, AF_PACKET frames, and a process in another
//! network namespace: each attributed to its executable with the bytes it moved itself.
mod common;

use common::netns::Netns;
use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Waits until `exe`'s rows add up to `counts`, then checks they are exactly that.
fn expect_exact(d: &Daemon, t: &Traffic, counts: Counts) -> Vec<Row> {
    let rows = d.wait_rows(&t.path, WAIT, |r| {
        let (s, rc, _) = sums(r);
        s >= counts.sent && rc >= counts.received
    });
    let (s, r, _) = sums(&rows);
    assert_eq!((s, r), (counts.sent, counts.received), "{}: recorded bytes vs the program's own: {rows:#?}", t.path.display());
    assert!(rows.iter().all(|x| x.sha256 == t.sha256()), "sha256 of {}", t.path.display());
    rows
}

fn udp_round(d: &Daemon, tag: &str, bind: &str, client_args: &[&str], server_mmsg: bool) {
    let server = Traffic::new(&format!("usrv-{tag}"));
    let client = Traffic::new(&format!("ucli-{tag}"));
    let count = 7;
    let mut args = vec!["udp-server", "--bind", bind, "--count", "7", "--reply", "333"];
    if server_mmsg {
        args.extend(["--mmsg", "4"]);
    }
    let srv = server.serve(&args);
    let host = bind.rsplit_once(':').expect("host:port").0;
    let to = format!("{host}:{}", srv.port);
    let mut cargs = vec!["udp-client", "--to", &to, "--count", "7", "--size", "1111", "--replies", "7"];
    cargs.extend_from_slice(client_args);
    let c = client.run(&cargs);
    let s = srv.finish();
    assert_eq!((c.sent, c.received), (7 * 1111, 7 * 333));
    assert_eq!((s.sent, s.received), (c.received, c.sent));
    let crows = expect_exact(d, &client, c);
    let srows = expect_exact(d, &server, s);
    // Every row names the peer: the unconnected sockets' peers come from the
    // sendmsg/recvmsg hooks of each call.
    assert!(crows.iter().all(|r| r.rport == i64::from(srv_port(&srows)) && r.protocol == 17), "{crows:#?}");
    assert!(srows.iter().all(|r| r.lport == i64::from(srv_port(&srows)) && r.rport > 0), "{srows:#?}");
    let _ = count;
}

fn srv_port(rows: &[Row]) -> u16 {
    rows.first().map_or(0, |r| r.lport as u16)
}

#[test]
fn udp_unconnected_connected_and_batched_are_exact() {
    if !root_or_skip("udp_unconnected_connected_and_batched_are_exact") {
        return;
    }
    let d = Daemon::start("");
    udp_round(&d, "sendto", "127.0.0.1:0", &[], false);
    udp_round(&d, "conn", "127.0.0.1:0", &["--connected"], false);
    udp_round(&d, "mmsg", "127.0.0.1:0", &["--mmsg", "3"], true);
    udp_round(&d, "v6", "[::1]:0", &["--mmsg", "5"], true);
}

#[test]
fn each_connect_of_one_udp_socket_is_recorded_even_when_it_moves_nothing() {
    if !root_or_skip("each_connect_of_one_udp_socket_is_recorded_even_when_it_moves_nothing") {
        return;
    }
    let d = Daemon::start("");
    let server = Traffic::new("usrv-probe");
    let client = Traffic::new("ucli-probe");
    let srv = server.serve(&["udp-server", "--bind", "127.0.0.1:0", "--count", "3", "--reply", "21"]);
    let to = format!("127.0.0.1:{}", srv.port);
    // getaddrinfo's source address selection: one UDP socket connected to each
    // candidate in turn, nothing sent, then the real connection on a socket of its own.
    let c = client.run(&[
        "udp-client", "--connected", "--probe", "127.0.0.2:9", "--probe", "127.0.0.3:9", "--to", &to, "--count", "3", "--size", "50",
        "--replies", "3",
    ]);
    srv.finish();
    let rows = d.wait_rows(&client.path, WAIT, |r| {
        ["127.0.0.2", "127.0.0.3"].iter().all(|a| r.iter().any(|x| x.raddr == *a)) && sums(r).0 >= c.sent && sums(r).1 >= c.received
    });
    for probe in ["127.0.0.2", "127.0.0.3"] {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.raddr == probe).collect();
        assert_eq!(mine.len(), 1, "one row for the connect() to {probe}: {rows:#?}");
        assert_eq!((mine[0].send, mine[0].recv, mine[0].rport, mine[0].protocol), (0, 0, 9, 17), "{probe}: {rows:#?}");
    }
    let real: Vec<&Row> = rows.iter().filter(|r| r.raddr == "127.0.0.1").collect();
    assert_eq!(real.iter().map(|r| (r.send, r.recv)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)), (c.sent, c.received), "{rows:#?}");
    assert!(rows.iter().all(|r| r.sha256 == client.sha256()), "{rows:#?}");
}

#[test]
fn icmp_echo_through_ping_and_raw_sockets() {
    if !root_or_skip("icmp_echo_through_ping_and_raw_sockets") {
        return;
    }
    let d = Daemon::start("");
    // Ping sockets need the caller's group in net.ipv4.ping_group_range: set it in a
    // namespace of the test's own rather than on the machine.
    let ns = Netns::new("icmp");
    ns.sysctl("net.ipv4.ping_group_range", "0 2147483647");
    for (tag, sub, to) in [("ping4", "ping", "127.0.0.1"), ("ping6", "ping", "::1"), ("rawping", "raw-ping", "127.0.0.1")] {
        let t = Traffic::new(tag);
        let out = ns.command(&t.path).args([sub, "--to", to, "--count", "4", "--size", "100"]).output().expect("run");
        assert!(out.status.success(), "{tag}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap_or_default()).expect("json");
        let counts = Counts { sent: v["sent"].as_i64().expect("sent"), received: v["received"].as_i64().expect("received"), pid: 0 };
        assert_eq!(counts.sent, 4 * 108, "{tag}: 8-byte ICMP header + 100 bytes, 4 times");
        assert!(counts.received >= 4 * 108, "{tag}: the replies came back");
        let rows = expect_exact(&d, &t, counts);
        let proto = if to.contains(':') { 58 } else { 1 };
        assert!(rows.iter().all(|r| r.protocol == proto && r.netns == ns.inode() as i64), "{tag}: {rows:#?}");
        assert!(rows.iter().any(|r| r.raddr == to), "{tag}: the peer of an unconnected send: {rows:#?}");
    }
}

#[test]
fn raw_ip_and_af_packet_frames_are_attributed_to_the_sender() {
    if !root_or_skip("raw_ip_and_af_packet_frames_are_attributed_to_the_sender") {
        return;
    }
    let d = Daemon::start("");
    let raw = Traffic::new("rawip253");
    let c = raw.run(&["raw-ip", "--to", "127.0.0.1", "--proto", "253", "--count", "5", "--size", "200"]);
    assert_eq!(c.sent, 1000);
    let rows = expect_exact(&d, &raw, c);
    assert!(rows.iter().all(|r| r.protocol == 253 && r.family == 2), "{rows:#?}");
    assert!(rows.iter().any(|r| r.raddr == "127.0.0.1" && r.send == 1000), "{rows:#?}");

    let pkt = Traffic::new("afpacket");
    let c = pkt.run(&["packet", "--ifname", "lo", "--count", "6", "--size", "100"]);
    assert_eq!(c.sent, 6 * 114, "14-byte Ethernet header + 100");
    let rows = expect_exact(&d, &pkt, c);
    assert!(rows.iter().all(|r| r.family == 17 && r.protocol == 0x88b5), "AF_PACKET, ethertype as protocol: {rows:#?}");
}

#[test]
fn a_process_in_another_network_namespace_is_attributed_with_its_namespace() {
    if !root_or_skip("a_process_in_another_network_namespace_is_attributed_with_its_namespace") {
        return;
    }
    let d = Daemon::start("");
    let ns = Netns::new("veth").with_veth("10.213.0.1", "10.213.0.2");
    let server = Traffic::new("nssrv");
    let client = Traffic::new("hostcli");
    // The server runs inside the namespace; the client on the host reaches it over veth.
    let srv = server.serve_with(ns.command(&server.path).args(["tcp-server", "--bind", "10.213.0.2:0", "--send", "54321"]));
    let c = client.run(&["tcp-client", "--to", &format!("10.213.0.2:{}", srv.port), "--send", "12345"]);
    let s = srv.finish();
    let crows = expect_exact(&d, &client, c);
    let srows = expect_exact(&d, &server, s);
    let host_ns = std::fs::metadata("/proc/self/ns/net").map(|m| std::os::unix::fs::MetadataExt::ino(&m)).expect("own netns");
    assert!(crows.iter().all(|r| r.netns == host_ns as i64 && r.raddr == "10.213.0.2" && r.laddr == "10.213.0.1"), "{crows:#?}");
    assert!(srows.iter().all(|r| r.netns == ns.inode() as i64 && r.laddr == "10.213.0.2"), "{srows:#?}");
    // `ip netns exec` enters the namespace and execs the server in place: the server's
    // parent is this test, its executable the copy.
    assert_eq!(srows[0].pexe, own_lineage().0.display().to_string());
}
