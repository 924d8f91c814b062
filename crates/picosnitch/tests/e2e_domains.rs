//! Domains end to end: the real daemon learns the domain of a connection from the DNS
//! answers a process receives (over UDP and TCP, from a resolver on 127.0.0.53, through
//! a CNAME chain, per network namespace), or else from the server name of its TLS
//! ClientHello; `[log] ignore_domains` leaves out a domain and its subdomains; a
//! malformed answer is counted. Every server and client runs in a network namespace
//! the test creates, so no answer of the machine's own resolver is involved.
mod common;

use common::netns::Netns;
use common::{root_or_skip, Counts, Daemon, Traffic};
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

/// (domain, rport, send, recv, netns) of every row of `exe`.
fn domain_rows(d: &Daemon, exe: &Path) -> Vec<(String, i64, i64, i64, i64)> {
    if !d.db.exists() {
        return Vec::new();
    }
    let db = d.db();
    let Ok(mut st) = db.prepare(
        "SELECT dm.domain, c.rport, c.send, c.recv, c.netns FROM connections c
         JOIN executables e ON e.id = c.exe_id JOIN domains dm ON dm.id = c.domain_id
         WHERE e.exe = ?1 ORDER BY c.rport",
    ) else {
        return Vec::new();
    };
    st.query_map([exe.to_string_lossy()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// Waits for the TCP connection of `client` to `port` to be written, with all its bytes.
fn wait_connection(d: &Daemon, client: &Traffic, port: u16, c: Counts) -> (String, i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = domain_rows(d, &client.path);
        let mine: Vec<_> = rows.iter().filter(|r| r.1 == i64::from(port)).collect();
        let (send, recv) = mine.iter().fold((0, 0), |(s, r), x| (s + x.2, r + x.3));
        if !mine.is_empty() && send == c.sent && recv == c.received {
            assert!(mine.iter().all(|r| r.0 == mine[0].0), "one domain for the connection: {rows:?}");
            return (mine[0].0.clone(), mine[0].4);
        }
        assert!(Instant::now() < deadline, "no complete row of {} to port {port}: {rows:?}\nlog:\n{}", client.path.display(), d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_in(ns: &Netns, t: &Traffic, args: &[&str]) -> Counts {
    let out = ns.command(&t.path).args(args).output().expect("running picosnitch-traffic");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").to_string();
    let v: serde_json::Value = serde_json::from_str(&line).expect("json");
    Counts { sent: v["sent"].as_i64().expect("sent"), received: v["received"].as_i64().expect("received"), pid: 0 }
}

#[test]
fn domains_come_from_dns_answers_then_tls_server_names() {
    if !root_or_skip("domains_come_from_dns_answers_then_tls_server_names") {
        return;
    }
    // Other work on a shared machine (benchmarks) may flood 127.0.0.1 with thousands of
    // connections a second; this test's servers use other addresses and leave it out.
    let d = Daemon::start("[log]\nignore_domains = [\"ignored-e2e.example\"]\nignore_ips = [\"127.0.0.1/32\"]\n");
    let dns_ns = Netns::new("dns");
    let tls_ns = Netns::new("tls");
    let tool = Traffic::new("ps-e2e-names-srv");

    // A stub resolver on 127.0.0.53 answers with a CNAME chain, for A and AAAA.
    let resolver = tool.serve_with(dns_ns.command(&tool.path).args([
        "dns-server",
        "--bind",
        "127.0.0.53:53",
        "--count",
        "2",
        "--cname",
        "edge.cdn-e2e.example",
        "--cname",
        "e1.cdn-e2e.example",
        "--a",
        "127.0.0.3",
    ]));
    for (tag, bind, extra) in [("v4", "127.0.0.3:0", &[][..]), ("v6", "[::1]:0", &["--v6"][..])] {
        let server = tool.serve_with(dns_ns.command(&tool.path).args(["tcp-server", "--bind", bind, "--send", "1000"]));
        let client = Traffic::new(&format!("ps-e2e-resolve-{tag}"));
        let name = format!("www-{tag}.e2e.example");
        let port = server.port.to_string();
        let mut args = vec!["resolve-connect", "--name", &name, "--port", &port, "--send", "500"];
        args.extend_from_slice(extra);
        let c = run_in(&dns_ns, &client, &args);
        server.finish();
        let (domain, netns) = wait_connection(&d, &client, port.parse().expect("port"), c);
        assert_eq!(domain, name, "{tag}: the name asked for, at the head of the CNAME chain");
        assert_eq!(netns, dns_ns.inode() as i64, "{tag}");
    }
    resolver.finish();

    // The same over TCP, with another address.
    let resolver = tool.serve_with(
        dns_ns.command(&tool.path).args(["dns-server", "--bind", "127.0.0.53:53", "--tcp", "--a", "127.0.0.2", "--cname", "tcp-edge.example"]),
    );
    let server = tool.serve_with(dns_ns.command(&tool.path).args(["tcp-server", "--bind", "127.0.0.2:0", "--send", "10"]));
    let client = Traffic::new("ps-e2e-resolve-tcp");
    let port = server.port.to_string();
    let c = run_in(&dns_ns, &client, &["resolve-connect", "--tcp-dns", "--name", "tcp.e2e.example", "--port", &port, "--send", "20"]);
    server.finish();
    resolver.finish();
    assert_eq!(wait_connection(&d, &client, server_port(&port), c).0, "tcp.e2e.example");

    // No answer was seen in the other namespace: there the server name is used, and a
    // connection without either has no domain (127.0.0.3 has a name only in dns_ns).
    let server = tool.serve_with(tls_ns.command(&tool.path).args(["tcp-server", "--bind", "127.0.0.3:0", "--accepts", "2", "--send", "300"]));
    let client = Traffic::new("ps-e2e-tls");
    let port = server.port.to_string();
    let to = format!("127.0.0.3:{port}");
    let c = run_in(&tls_ns, &client, &["tls-hello", "--to", &to, "--sni", "Secure.TLS-e2e.example", "--send", "100"]);
    let plain = Traffic::new("ps-e2e-plain");
    let cp = run_in(&tls_ns, &plain, &["tcp-client", "--to", &to, "--send", "100"]);
    server.finish();
    let (domain, netns) = wait_connection(&d, &client, server_port(&port), c);
    assert_eq!((domain.as_str(), netns), ("secure.tls-e2e.example", tls_ns.inode() as i64));
    assert_eq!(wait_connection(&d, &plain, server_port(&port), cp).0, "", "no name in this namespace");

    // A server that speaks first: the connection is recorded (at its first received
    // byte) before its ClientHello goes out, and is named when the hello is parsed.
    let server = tool.serve_with(tls_ns.command(&tool.path).args(["greeting-server", "--bind", "127.0.0.5:0", "--greet", "25"]));
    let late = Traffic::new("ps-e2e-tls-late");
    let to = format!("127.0.0.5:{}", server.port);
    let c = run_in(&tls_ns, &late, &["tls-hello", "--to", &to, "--sni", "late.tls-e2e.example", "--greeting", "25", "--pause-ms", "400"]);
    let port = server.port;
    server.finish();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows: Vec<_> = domain_rows(&d, &late.path).into_iter().filter(|r| r.1 == i64::from(port)).collect();
        let (send, recv) = rows.iter().fold((0, 0), |(s, r), x| (s + x.2, r + x.3));
        if (send, recv) == (c.sent, c.received) {
            // The greeting may have been written in an earlier period, without a name;
            // everything from the hello on carries it.
            let named: Vec<_> = rows.iter().filter(|r| r.0 == "late.tls-e2e.example").collect();
            assert!(!named.is_empty() && named.iter().map(|r| r.2).sum::<i64>() == c.sent, "{rows:?}");
            assert!(rows.iter().all(|r| r.0 == "late.tls-e2e.example" || r.0.is_empty()), "{rows:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no complete rows of the late hello: {rows:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // An ignored domain's subdomain is not recorded; the next connection is.
    let server = tool.serve_with(tls_ns.command(&tool.path).args(["tcp-server", "--bind", "127.0.0.4:0", "--accepts", "2", "--send", "5"]));
    let ignored = Traffic::new("ps-e2e-ignored");
    let kept = Traffic::new("ps-e2e-kept");
    let to = format!("127.0.0.4:{}", server.port);
    run_in(&tls_ns, &ignored, &["tls-hello", "--to", &to, "--sni", "www.ignored-e2e.example"]);
    let ck = run_in(&tls_ns, &kept, &["tls-hello", "--to", &to, "--sni", "notignored-e2e.example"]);
    let port = server.port;
    server.finish();
    assert_eq!(wait_connection(&d, &kept, port, ck).0, "notignored-e2e.example", "suffix match on label boundaries");
    // The kept connection came later and is written: the ignored one would be by now.
    std::thread::sleep(Duration::from_secs(2));
    assert!(domain_rows(&d, &ignored.path).is_empty(), "ignored: {:?}", domain_rows(&d, &ignored.path));

    // A malformed answer from port 53 is counted and dropped.
    let me = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let pid = std::process::id();
    let dns = UdpSocket::bind((std::net::Ipv4Addr::new(127, 54, (pid >> 8) as u8, (pid as u8).max(2)), 53)).expect("binding port 53 on a private loopback address");
    dns.send_to(&[0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1], me.local_addr().expect("addr")).expect("send");
    let st = d.wait_status("the malformed answer to be counted", Duration::from_secs(10), |st| {
        // The monitor reports every 2 s: its count of records read catches up.
        st["primary"]["dns_malformed"].as_u64().is_some_and(|n| n >= 1)
            && st["monitor"]["name_records_read"].as_u64().is_some_and(|n| n >= 8)
    });
    let m = &st["monitor"];
    assert_eq!(m["kernel"]["names_ringbuf_full"], 0, "{m:#}");
    let p = &st["primary"];
    assert!(p["dns_answers"].as_u64() >= Some(3), "{p:#}");
    assert!(p["tls_server_names"].as_u64() >= Some(3), "{p:#}");
    assert!(p["domains_from_dns"].as_u64() >= Some(3), "{p:#}");
    assert!(p["domains_from_tls"].as_u64() >= Some(3), "{p:#}");
    let out = std::process::Command::new(common::DAEMON)
        .args(["status", "--config"])
        .arg(&d.config)
        .output()
        .expect("picosnitch status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("malformed DNS answers dropped"), "{text}");
}

fn server_port(s: &str) -> u16 {
    s.parse().expect("port")
}
