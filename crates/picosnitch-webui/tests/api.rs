//! The web UI's HTTP API, served by the real server on a real SQLite file and a real
//! feed socket: numbers against SQL on the same file, the Host check, the security
//! headers, limits, bad parameters, and a database that is missing or locked.
mod common;

use common::client::{self, get_host, raw};
use common::*;
use picosnitch_feed::{Direction, FlowUpdate, UpdateKind};
use picosnitch_webui::http::response::CONTENT_SECURITY_POLICY;
use picosnitch_webui::http::Limits;
use rusqlite::Connection;
use std::time::Duration;

fn sql_i64(db: &std::path::Path, sql: &str) -> i64 {
    Connection::open(db).expect("open").query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled_db(dir.path());
    let server = Server::start(&db, &dir.path().join("run/events.sock"));
    (dir, db, server)
}

#[test]
fn overview_totals_and_chart_equal_the_database() {
    let (_dir, db, s) = setup();
    let v = s.get("/api/overview?range=all&metric=recv&by=exe&top=2&buckets=50").json();
    let t = &v["totals"];
    assert_eq!(t["recv"], sql_i64(&db, "SELECT sum(recv) FROM connections"));
    assert_eq!(t["send"], sql_i64(&db, "SELECT sum(send) FROM connections"));
    assert_eq!(t["total"], sql_i64(&db, "SELECT sum(send + recv) FROM connections"));
    assert_eq!(t["connections"], sql_i64(&db, "SELECT sum(events) FROM connections"));
    assert_eq!(t["executables"], sql_i64(&db, "SELECT count(DISTINCT e.exe) FROM connections c JOIN executables e ON e.id = c.exe_id"));
    assert_eq!(t["namespaces"], sql_i64(&db, "SELECT count(DISTINCT netns) FROM connections"));
    let chart = &v["chart"];
    let series = chart["series"].as_array().expect("series");
    assert_eq!(series.len(), 2);
    assert!(chart["buckets"].as_u64().expect("buckets") <= 50);
    // The top two by bytes received, each line summing to its total, the rest to the rest.
    let top: Vec<(String, i64)> = {
        let c = Connection::open(&db).expect("open");
        let mut st = c
            .prepare("SELECT e.exe, sum(c.recv) AS r FROM connections c JOIN executables e ON e.id = c.exe_id GROUP BY e.exe ORDER BY r DESC LIMIT 2")
            .expect("prepare");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").map(|r| r.expect("row")).collect()
    };
    for (line, (exe, recv)) in series.iter().zip(&top) {
        assert_eq!(line["key"], exe.as_str());
        let sum: i64 = line["values"].as_array().expect("values").iter().map(|x| x.as_i64().expect("n")).sum();
        assert_eq!(sum, *recv, "{exe}");
    }
    let rest: i64 = chart["rest"]["values"].as_array().expect("rest").iter().map(|x| x.as_i64().expect("n")).sum();
    assert_eq!(rest + top.iter().map(|t| t.1).sum::<i64>(), t["recv"].as_i64().expect("recv"));
    assert_eq!(chart["rest"]["count"], 2);
}

#[test]
fn explore_rows_filters_and_sorting_equal_the_database() {
    let (_dir, db, s) = setup();
    let v = s.get("/api/explore?range=all&group=domain&sort=send&order=desc").json();
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(v["row_count"], 4);
    for r in rows {
        let d = r["key"].as_str().expect("domain text");
        let want = sql_i64(&db, &format!("SELECT sum(c.send) FROM connections c JOIN domains d ON d.id = c.domain_id WHERE d.domain = '{d}'"));
        assert_eq!(r["send"], want, "{d}");
    }
    let sends: Vec<i64> = rows.iter().map(|r| r["send"].as_i64().expect("send")).collect();
    assert!(sends.windows(2).all(|w| w[0] >= w[1]), "sorted by sent, descending: {sends:?}");
    // Filters: the remote ports of curl, except 53; users with their names.
    let v = s.get("/api/explore?range=all&group=rport&f=exe:%2Fusr%2Fbin%2Fcurl&x=rport:53&sort=key").json();
    let ports: Vec<i64> = v["rows"].as_array().expect("rows").iter().map(|r| r["key"].as_i64().expect("port")).collect();
    let want: Vec<i64> = {
        let c = Connection::open(&db).expect("open");
        let mut st = c
            .prepare("SELECT DISTINCT c.rport FROM connections c JOIN executables e ON e.id = c.exe_id WHERE e.exe = '/usr/bin/curl' AND c.rport != 53 ORDER BY 1")
            .expect("prepare");
        st.query_map([], |r| r.get(0)).expect("query").map(|r| r.expect("row")).collect()
    };
    assert!(want.len() >= 2, "the test data gives curl several ports: {want:?}");
    assert_eq!(ports, want);
    let last = want[want.len() - 1];
    let curl_last = sql_i64(&db, &format!("SELECT sum(c.recv) FROM connections c JOIN executables e ON e.id = c.exe_id WHERE e.exe = '/usr/bin/curl' AND c.rport = {last}"));
    assert_eq!(v["rows"][want.len() - 1]["recv"], curl_last);
    let users = s.get("/api/explore?range=all&group=user&sort=key").json();
    assert_eq!(users["rows"][1]["key"], 1000);
    assert_eq!(users["rows"][1]["label"], "alice");
    // Time rows, a search and paging.
    let hours = s.get("/api/explore?from=1795305600&to=1795320000&group=time&sort=key").json();
    assert_eq!(hours["rows"][0]["key"], DAY0);
    let found = s.get("/api/explore?range=all&group=exe&q=FIRE").json();
    assert_eq!(found["row_count"], 1);
    let page = s.get("/api/explore?range=all&group=exe&sort=key&limit=1&offset=1").json();
    assert_eq!((page["rows"][0]["key"].as_str(), page["row_count"].as_i64()), (Some("/usr/bin/firefox"), Some(4)));
}

#[test]
fn a_drill_down_and_its_connections_equal_the_database() {
    let (_dir, db, s) = setup();
    let v = s.get("/api/drilldown?range=all&group=domain&key=github.com&top=1&buckets=20").json();
    let in_github = "FROM connections c JOIN domains d ON d.id = c.domain_id WHERE d.domain = 'github.com'";
    assert_eq!(v["totals"]["recv"], sql_i64(&db, &format!("SELECT sum(c.recv) {in_github}")));
    assert_eq!(v["totals"]["events"], sql_i64(&db, &format!("SELECT sum(c.events) {in_github}")));
    let spark: i64 = v["sparkline"]["send"].as_array().expect("spark").iter().map(|x| x.as_i64().expect("n")).sum();
    assert_eq!(spark, sql_i64(&db, &format!("SELECT sum(c.send) {in_github}")));
    assert!(v["sparkline"]["send"].as_array().expect("spark").len() <= 20);
    let users = &v["breakdowns"]["user"];
    assert_eq!(users["rows"].as_array().expect("rows").len(), 1);
    assert_eq!(users["rest"]["count"], 1);
    let top_user = users["rows"][0]["key"].as_i64().expect("uid");
    assert_eq!(users["rows"][0]["total"], sql_i64(&db, &format!("SELECT sum(c.send + c.recv) {in_github} AND c.uid = {top_user}")));
    assert_eq!(v["breakdowns"]["raddr"]["rows"][0]["key"], "140.82.112.3");
    assert_eq!((v["coverage"]["complete"].as_bool(), v["totals_exact"].as_bool()), (Some(true), Some(true)));
    // Under another filter the totals come from the rows read; all of them here.
    let f = s.get("/api/drilldown?range=all&group=domain&key=github.com&f=user:1000&full=1").json();
    assert_eq!(f["totals"]["recv"], sql_i64(&db, &format!("SELECT sum(c.recv) {in_github} AND c.uid = 1000")));
    assert_eq!(f["breakdowns"]["user"]["rows"].as_array().map(Vec::len), Some(1));
    let c = s.get("/api/connections?range=all&f=domain:github.com&limit=5").json();
    let rows = c["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["contime"], sql_i64(&db, &format!("SELECT max(c.contime) {in_github}")));
    assert!(rows.iter().all(|r| r["domain"] == "github.com" && r["rport"] == 443));
    assert!(rows.iter().any(|r| r["user"] == "alice"));
    // A time row narrows the range instead.
    let t = s.get(&format!("/api/drilldown?range=all&group=time&key={DAY0}/3600")).json();
    assert_eq!(t["totals"]["send"], sql_i64(&db, &format!("SELECT sum(send) FROM connections WHERE contime >= {DAY0} AND contime < {}", DAY0 + 3_600)));
}

#[test]
fn only_loopback_host_names_are_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled_db(dir.path());
    let s = Server::start_with(&db, &dir.path().join("events.sock"), Limits::default(), vec!["snitch.example.org".into()]);
    let p = s.port;
    for host in [format!("127.0.0.1:{p}"), format!("localhost:{p}"), format!("[::1]:{p}"), "snitch.example.org".to_string()] {
        assert_eq!(get_host(p, "/api/meta", &host).status, 200, "{host}");
    }
    for host in [format!("evil.example:{p}"), format!("127.0.0.1.nip.io:{p}"), "snitch.example.org.evil.example".into()] {
        let a = get_host(p, "/", &host);
        assert_eq!(a.status, 403, "{host}");
        assert_eq!(a.json()["kind"], "host-refused");
        assert!(a.json()["error"].as_str().expect("why").contains("DNS rebinding"));
        assert_eq!(a.header("content-security-policy"), Some(CONTENT_SECURITY_POLICY), "refusals carry the policy too");
    }
    let none = raw(p, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(none.status, 403);
    assert!(none.text().contains("no Host header"));
}

#[test]
fn every_answer_carries_the_security_headers_and_the_page_loads_only_its_own_files() {
    let (_dir, _db, s) = setup();
    for (path, status, ctype) in [
        ("/", 200, "text/html; charset=utf-8"),
        ("/app.js", 200, "text/javascript; charset=utf-8"),
        ("/app.css", 200, "text/css; charset=utf-8"),
        ("/favicon.svg", 200, "image/svg+xml"),
        ("/api/meta", 200, "application/json"),
        ("/nope", 404, "application/json"),
        ("/api/nope", 404, "application/json"),
    ] {
        let a = s.get(path);
        assert_eq!((a.status, a.header("content-type")), (status, Some(ctype)), "{path}");
        assert_eq!(a.header("content-security-policy"), Some(CONTENT_SECURITY_POLICY), "{path}");
        assert!(CONTENT_SECURITY_POLICY.contains("default-src 'none'") && CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("x-frame-options"), Some("DENY"));
        assert_eq!(a.header("referrer-policy"), Some("no-referrer"));
    }
    let page = s.get("/").text();
    let refs: Vec<&str> = page.split(['"', '\'']).filter(|w| w.starts_with('/') || w.contains("://")).collect();
    assert_eq!(refs, vec!["/favicon.svg", "/app.css", "/app.js", "/favicon.svg"], "the page's references");
    assert_eq!(s.get("/api/meta").header("cache-control"), Some("no-store"));
    // A copy the browser has is not sent again.
    let etag = s.get("/app.js").header("etag").expect("etag").to_string();
    let again = raw(s.port, format!("GET /app.js HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n").as_bytes());
    assert_eq!((again.status, again.body.len()), (304, 0));
}

#[test]
fn bad_parameters_and_oversized_requests_get_a_4xx_with_the_reason() {
    let (_dir, _db, s) = setup();
    let nine: String = (0..9).map(|i| format!("&f=lport:{i}")).collect();
    for (path, says) in [
        ("/api/overview?range=2y", "range: \"2y\" is not a range"),
        ("/api/overview?top=21", "top: \"21\" is not a whole number from 1 to 20"),
        ("/api/overview?buckets=501", "buckets: \"501\" is not a whole number from 2 to 500"),
        ("/api/overview?by=time", "by: time is not a dimension here"),
        ("/api/overview?metric=both", "metric: \"both\""),
        ("/api/explore?group=bogus", "group: \"bogus\" is not a dimension"),
        ("/api/explore?limit=1001", "limit: \"1001\" is not a whole number from 1 to 1000"),
        ("/api/explore?sort=name", "sort: \"name\""),
        ("/api/explore?from=10&to=5", "from must be before to"),
        ("/api/explore?f=rport:https", "rport: \"https\" is not a number"),
        ("/api/drilldown?group=exe", "key: missing"),
        ("/api/connections?limit=501", "limit: \"501\" is not a whole number from 1 to 500"),
        ("/api/live?after=x", "after: \"x\""),
        ("/api/drilldown?group=exe&key=x&full=yes", "full: \"yes\" is not 0 or 1"),
        ("/api/live?limit=1001", "limit: \"1001\""),
    ] {
        let a = s.get(path);
        assert_eq!(a.status, 400, "{path}: {}", a.text());
        let v = a.json();
        assert_eq!(v["kind"], "bad-parameter");
        assert!(v["error"].as_str().expect("error").contains(says), "{path}: {}", v["error"]);
    }
    let a = s.get(&format!("/api/explore?group=exe{nine}"));
    assert!(a.status == 400 && a.text().contains("at most 8 filters"), "{}", a.text());
    let p = s.port;
    assert_eq!(raw(p, b"POST /api/meta HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}").status, 405);
    assert_eq!(raw(p, b"GET /api/meta HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}").status, 413);
    let long = format!("GET /api/meta?q={} HTTP/1.1\r\nHost: localhost\r\n\r\n", "a".repeat(20_000));
    assert_eq!(raw(p, long.as_bytes()).status, 431);
    assert_eq!(raw(p, b"GARBAGE\r\n\r\n").status, 400);
}

#[test]
fn a_missing_database_is_explained_until_the_daemon_creates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history/picosnitch.db");
    let s = Server::start(&db, &dir.path().join("events.sock"));
    for path in ["/api/overview?range=all", "/api/explore", "/api/drilldown?group=exe&key=x", "/api/connections"] {
        let a = s.get(path);
        assert_eq!(a.status, 503, "{path}");
        let v = a.json();
        assert_eq!(v["kind"], "database-missing");
        let why = v["error"].as_str().expect("error");
        assert!(why.contains("does not exist") && why.contains("sudo picosnitch daemon"), "{why}");
    }
    let meta = s.get("/api/meta").json();
    assert_eq!((meta["database"]["state"].as_str(), meta["feed"]["state"].as_str()), (Some("database-missing"), Some("no-daemon")));
    assert!(meta["feed"]["message"].as_str().expect("feed message").contains("no picosnitch daemon is running"));
    let _ = filled_db(dir.path());
    let v = s.get("/api/overview?range=all").json();
    assert_eq!(v["totals"]["executables"], 4, "the page works once the database is there");
}

#[test]
fn a_locked_database_is_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled_db(dir.path());
    // Another program holding an exclusive lock in rollback-journal mode keeps readers
    // out (in WAL mode, which the daemon uses, readers are never blocked).
    let holder = Connection::open(&db).expect("open");
    holder.execute_batch("PRAGMA journal_mode = DELETE; BEGIN EXCLUSIVE; UPDATE connections SET send = send WHERE rowid = 1;").expect("lock");
    let s = Server::start(&db, &dir.path().join("events.sock"));
    let a = s.get("/api/explore?range=all");
    assert_eq!(a.status, 503, "{}", a.text());
    let v = a.json();
    assert_eq!(v["kind"], "database-locked");
    assert!(v["error"].as_str().expect("error").contains("locked by another program"), "{v}");
    holder.execute_batch("COMMIT").expect("unlock");
    assert_eq!(s.get("/api/explore?range=all").status, 200);
}

#[test]
fn the_live_feed_is_read_once_and_summarised_per_executable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled_db(dir.path());
    let socket = dir.path().join("events.sock");
    let s = Server::start(&db, &socket);
    let before = s.wait_json("/api/live", "no daemon", |v| v["status"]["state"] == "no-daemon");
    assert!(before["status"]["message"].as_str().expect("message").contains("start one with `sudo picosnitch daemon`"));
    let feed = Feed::start(&socket);
    s.wait_json("/api/live", "connected", |v| v["status"]["state"] == "connected");
    let update = |kind, flow, send, recv| FlowUpdate {
        v: 1,
        kind,
        flow,
        time: 1_795_400_000.5,
        exe: "/usr/bin/curl".into(),
        name: "curl".into(),
        raddr: "93.184.216.34".into(),
        rport: 443,
        domain: "example.com".into(),
        direction: Some(Direction::Out),
        send,
        recv,
        ..Default::default()
    };
    feed.hub.publish(&update(UpdateKind::Open, 7, 517, 0));
    feed.hub.publish(&update(UpdateKind::Bytes, 7, 120, 18_233));
    let v = s.wait_json("/api/live?after=0", "three updates", |v| v["seq"] == 2);
    let events = v["events"].as_array().expect("events");
    assert_eq!(events.iter().map(|e| e["kind"].as_str().unwrap_or("")).collect::<Vec<_>>(), vec!["open", "bytes"]);
    assert_eq!((events[1]["domain"].as_str(), events[1]["recv"].as_i64()), (Some("example.com"), Some(18_233)));
    let curl = &v["processes"][0];
    assert_eq!((curl["name"].as_str(), curl["send"].as_i64(), curl["recv"].as_i64(), curl["open"].as_i64()), (Some("curl"), Some(637), Some(18_233), Some(1)));
    feed.hub.publish(&update(UpdateKind::Close, 7, 0, 24));
    let v = s.wait_json("/api/live?after=2", "the close", |v| v["seq"] == 3);
    assert_eq!(v["events"].as_array().map(Vec::len), Some(1));
    assert_eq!((v["processes"][0]["open"].as_i64(), v["processes"][0]["recv"].as_i64()), (Some(0), Some(18_257)));
    drop(feed);
    s.wait_json("/api/live", "the daemon going away", |v| v["status"]["state"] != "connected");
}

#[test]
fn connections_are_kept_alive_bounded_and_timed_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled_db(dir.path());
    let limits = Limits { connections: 2, head: Duration::from_millis(300), idle: Duration::from_secs(5), ..Limits::default() };
    let s = Server::start_with(&db, &dir.path().join("events.sock"), limits, vec![]);
    // Two requests on one connection.
    let two = raw(s.port, b"GET /api/meta HTTP/1.1\r\nHost: localhost\r\n\r\nGET /favicon.svg HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(two.status, 200);
    assert!(two.text().contains("HTTP/1.1 200 OK") && two.text().contains("<svg"), "both answers on one connection");
    // A head that never ends is cut off.
    let slow = raw(s.port, b"GET /api/meta HTTP/1.1\r\nHost: loc");
    assert_eq!(slow.status, 408);
    // Beyond the connection limit: 503 at once.
    use std::io::Write;
    let mut held: Vec<std::net::TcpStream> = (0..2).map(|_| std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect")).collect();
    for h in &mut held {
        h.write_all(b"GET /api/meta HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("send");
    }
    std::thread::sleep(Duration::from_millis(200));
    let refused = client::get(s.port, "/api/meta");
    assert_eq!(refused.status, 503);
    assert!(refused.text().contains("at most 2 connections"));
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(client::get(s.port, "/api/meta").status, 200);
}
