//! Reverse DNS end to end (`[monitoring] reverse_dns`): a real DNS server (dnsmasq,
//! started by the test on 127.0.0.1 with `--ptr-record` entries and nothing else to
//! answer from) is the daemon's resolver; a connection to an address that no DNS
//! answer or ClientHello named gets the PTR name in its row; with the option off the
//! server receives no query at all; a resolver that never answers is counted as
//! timeouts and the rows are still written, without a domain.
//!
//! The connections run in a network namespace the test creates, between addresses on
//! its loopback (10.77.0.1 and 10.77.0.2: the daemon does not look up loopback
//! addresses, and these are not).
mod common;

use common::netns::Netns;
use common::{root_or_skip, Counts, Daemon, Traffic};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NAMED: &str = "10.77.0.1";
const UNNAMED: &str = "10.77.0.2";
/// Has a PTR record too, but its connection's ClientHello names it first. Connections
/// to it come from TLS_CLIENT (a route's preferred source), so that the server's end of
/// the connection, which no ClientHello names, is toward another address.
const TLS: &str = "10.77.0.3";
const TLS_CLIENT: &str = "10.77.0.4";
const PTR_NAME: &str = "server-e2e.rdns.example";

/// dnsmasq on 127.0.0.1:`port`, answering PTR for NAMED only (NXDOMAIN for the rest
/// of the private range), logging every query to `log`.
struct Dnsmasq {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Dnsmasq {
    fn start(dir: &Path) -> Option<Dnsmasq> {
        let log = dir.join("dnsmasq.log");
        // Up to 5 tries: the port is picked free, then dnsmasq binds it (UDP and TCP).
        for _ in 0..5 {
            let port = std::net::UdpSocket::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
            let child = Command::new("dnsmasq")
                .args(["--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bogus-priv"])
                .args(["--listen-address=127.0.0.1", "--bind-interfaces", "--user=root", "--pid-file", "--log-queries"])
                .arg(format!("--port={port}"))
                .arg(format!("--log-facility={}", log.display()))
                .arg(format!("--ptr-record=1.0.77.10.in-addr.arpa,{PTR_NAME}"))
                .arg("--ptr-record=3.0.77.10.in-addr.arpa,not-asked.rdns.example")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let mut d = Dnsmasq { child, port, log: log.clone() };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = d.child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if d.log_text().contains("started") {
                    return Some(d);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.child.kill();
            let _ = d.child.wait();
        }
        None
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// PTR queries for the test's own addresses (10.77.0.0/24). The daemon watches the
    /// whole machine: other tests' connections (on veth pairs) are looked up too.
    fn ptr_queries(&self) -> usize {
        self.log_text().lines().filter(|l| l.contains("query[PTR]") && l.contains(".0.77.10.in-addr.arpa")).count()
    }

    fn any_ptr_query(&self) -> bool {
        self.log_text().contains("query[PTR]")
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lab() -> Netns {
    let ns = Netns::new("rdns");
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(["-n", &ns.name]).args(args).output().expect("ip");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    for a in [NAMED, UNNAMED, TLS, TLS_CLIENT] {
        ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    ip(&["route", "replace", "local", TLS, "dev", "lo", "src", TLS_CLIENT, "table", "local"]);
    ns
}

fn run_in(ns: &Netns, t: &Traffic, args: &[&str]) -> Counts {
    let out = ns.command(&t.path).args(args).output().expect("running picosnitch-traffic");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").to_string();
    let v: serde_json::Value = serde_json::from_str(&line).expect("json");
    Counts { sent: v["sent"].as_i64().expect("sent"), received: v["received"].as_i64().expect("received"), pid: 0 }
}

/// A TCP connection from `client` to `addr` in `ns`; returns its server port and counts.
fn connect(ns: &Netns, server: &Traffic, client: &Traffic, addr: &str) -> (u16, Counts) {
    let srv = server.serve_with(ns.command(&server.path).args(["tcp-server", "--bind", &format!("{addr}:0"), "--send", "300"]));
    let c = run_in(ns, client, &["tcp-client", "--to", &format!("{addr}:{}", srv.port), "--send", "200"]);
    let port = srv.port;
    srv.finish();
    (port, c)
}

/// (domain, send, recv) of the rows of `client` toward `port`, once all its bytes are in.
fn wait_row(d: &Daemon, client: &Traffic, port: u16, c: &Counts) -> Vec<(String, i64, i64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows: Vec<(String, i64, i64)> = if d.db.exists() {
            let db = d.db();
            let mut st = db
                .prepare(
                    "SELECT dm.domain, c.send, c.recv FROM connections c JOIN executables e ON e.id = c.exe_id
                     JOIN domains dm ON dm.id = c.domain_id WHERE e.exe = ?1 AND c.rport = ?2 ORDER BY c.contime",
                )
                .expect("prepare");
            st.query_map(rusqlite::params![client.path.to_string_lossy(), port], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map(|rows| rows.filter_map(Result::ok).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let (send, recv) = rows.iter().fold((0, 0), |(s, r), x| (s + x.1, r + x.2));
        if !rows.is_empty() && send == c.sent && recv == c.received {
            return rows;
        }
        assert!(Instant::now() < deadline, "no complete row of {} to port {port}: {rows:?}\nlog:\n{}", client.path.display(), d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config(on: bool, resolver: &str) -> String {
    format!("[monitoring]\nreverse_dns = {on}\nreverse_dns_resolver = \"{resolver}\"\nreverse_dns_timeout_ms = 500\n")
}

#[test]
fn reverse_dns_names_what_nothing_else_named_only_when_asked_to() {
    if !root_or_skip("reverse_dns_names_what_nothing_else_named_only_when_asked_to") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(dns) = Dnsmasq::start(dir.path()) else {
        let why = "SKIPPED: dnsmasq did not start (install dnsmasq-base: scripts/install-deps.sh)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("{why}");
        return;
    };
    let resolver = format!("127.0.0.1:{}", dns.port);
    let ns = lab();
    let server = Traffic::new("ps-e2e-rdns-srv");

    // Off (the default, here with the resolver named): no query, no domain.
    {
        let d = Daemon::start(&config(false, &resolver));
        let client = Traffic::new("ps-e2e-rdns-off");
        let (port, c) = connect(&ns, &server, &client, NAMED);
        let rows = wait_row(&d, &client, port, &c);
        assert!(rows.iter().all(|r| r.0.is_empty()), "no domain without reverse DNS: {rows:?}");
        let st = d.status();
        assert!(st["roles"].as_array().expect("roles").iter().all(|r| r["role"] != "rdns"), "no rdns role when off: {st}");
        assert!(!dns.any_ptr_query(), "the resolver was asked nothing:\n{}", dns.log_text());
    }

    // On: the PTR name names the connection; an address without one stays unnamed.
    let d = Daemon::start(&config(true, &resolver));
    let client = Traffic::new("ps-e2e-rdns-on");
    let (port, c) = connect(&ns, &server, &client, NAMED);
    let rows = wait_row(&d, &client, port, &c);
    assert!(rows.iter().all(|r| r.0 == PTR_NAME), "the PTR name in every row of the connection: {rows:?}\nlog:\n{}", d.log());
    let unnamed = Traffic::new("ps-e2e-rdns-nx");
    let (port2, c2) = connect(&ns, &server, &unnamed, UNNAMED);
    let rows2 = wait_row(&d, &unnamed, port2, &c2);
    assert!(rows2.iter().all(|r| r.0.is_empty()), "NXDOMAIN: no domain: {rows2:?}");
    let st = d.wait_status("the lookups counted", Duration::from_secs(15), |st| {
        st["reverse_dns"]["named"].as_u64() >= Some(1)
            && st["reverse_dns"]["no_name"].as_u64() >= Some(1)
            && st["primary"]["domains_from_rdns"].as_u64() >= Some(2)
    });
    let log = dns.log_text();
    assert!(log.contains("query[PTR] 1.0.77.10.in-addr.arpa"), "{log}");
    assert!(log.contains("query[PTR] 2.0.77.10.in-addr.arpa"), "{log}");
    // One query per address, however many flows (client and server ends) asked.
    assert_eq!(dns.ptr_queries(), 2, "{log}");
    assert!(st["reverse_dns"]["named"].as_u64() >= Some(1), "{st}");
    assert!(st["primary"]["rdns_names_learnt"].as_u64() >= Some(1), "{st}");
    assert!(st["primary"]["domains_from_rdns"].as_u64() >= Some(2), "client and server ends named: {st}");
    // A second connection to the named address is named from the cache, with no query.
    let again = Traffic::new("ps-e2e-rdns-again");
    let (port3, c3) = connect(&ns, &server, &again, NAMED);
    assert!(wait_row(&d, &again, port3, &c3).iter().all(|r| r.0 == PTR_NAME));
    assert_eq!(dns.ptr_queries(), 2, "named from the cache: {}", dns.log_text());
    // A ClientHello names the connection to TLS: its address is not looked up.
    let hello = Traffic::new("ps-e2e-rdns-tls");
    let srv = server.serve_with(ns.command(&server.path).args(["tcp-server", "--bind", &format!("{TLS}:0"), "--send", "300"]));
    let ch = run_in(&ns, &hello, &["tls-hello", "--to", &format!("{TLS}:{}", srv.port), "--sni", "hello-e2e.rdns.example", "--send", "100"]);
    let port4 = srv.port;
    srv.finish();
    let rows4 = wait_row(&d, &hello, port4, &ch);
    assert!(rows4.iter().all(|r| r.0 == "hello-e2e.rdns.example"), "{rows4:?}");
    std::thread::sleep(Duration::from_secs(2)); // past the grace period and a lookup's round trip
    assert!(!dns.log_text().contains("3.0.77.10.in-addr.arpa"), "named by its ClientHello, not looked up:\n{}", dns.log_text());
    let text = Command::new(env!("CARGO_BIN_EXE_picosnitch"))
        .args(["status", "--config"])
        .arg(&d.config)
        .output()
        .expect("picosnitch status");
    let text = String::from_utf8_lossy(&text.stdout);
    // Three queries of the test's own: 10.77.0.1 (named), 10.77.0.2 and the TLS server
    // end's 10.77.0.4 (no name); none for 10.77.0.3. (The status counts every address
    // the machine talked to, other tests' included.)
    assert!(dns.log_text().contains("query[PTR] 4.0.77.10.in-addr.arpa"), "{}", dns.log_text());
    assert_eq!(dns.ptr_queries(), 3, "{}", dns.log_text());
    assert!(text.contains(&format!("rdns: resolver {resolver}, queries ")), "{text}");
    assert!(text.contains("reverse DNS: names learnt "), "{text}");
}

#[test]
fn a_resolver_that_never_answers_is_counted_and_rows_are_written() {
    if !root_or_skip("a_resolver_that_never_answers_is_counted_and_rows_are_written") {
        return;
    }
    // A socket nobody reads: every query waits for its timeout.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let resolver = silent.local_addr().expect("addr").to_string();
    let ns = lab();
    let d = Daemon::start(&config(true, &resolver));
    let server = Traffic::new("ps-e2e-rdns-srv2");
    let client = Traffic::new("ps-e2e-rdns-silent");
    let (port, c) = connect(&ns, &server, &client, NAMED);
    let rows = wait_row(&d, &client, port, &c);
    assert!(rows.iter().all(|r| r.0.is_empty()), "{rows:?}");
    let st = d.wait_status("the timeout counted", Duration::from_secs(15), |st| {
        st["reverse_dns"]["timeouts"].as_u64() >= Some(1) && st["primary"]["rdns_failed"].as_u64() >= Some(1)
    });
    assert_eq!(st["reverse_dns"]["named"], 0, "{st}");
    // The queries did reach the resolver's address.
    silent.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 512];
    let (n, _) = silent.recv_from(&mut buf).expect("a query arrived");
    let q = &buf[..n];
    assert!(q.windows(7).any(|w| w == b"in-addr"), "a PTR query: {q:?}");
    assert!(!d.log().contains("panicked"), "{}", d.log());
}
