//! The remote history end to end: the real daemon (BPF, every role confined) sends its
//! rows to a real PostgreSQL server that the test starts itself (a throwaway cluster
//! on a loopback port), through a login that may only INSERT and SELECT.
mod common;

use common::*;
use picosnitch_remote::schema::{setup_sql, Tables};
use picosnitch_testpg::{start_or_skip, Options, Postgres};
use rusqlite::Connection;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DB: &str = "picosnitch";
const USER: &str = "appender";
const PASSWORD: &str = "correct horse battery staple";

/// The database, the INSERT-only login, and the tables, as the README says.
fn prepare(pg: &Postgres) {
    pg.psql("postgres", &format!("CREATE DATABASE {DB} ENCODING 'UTF8'")).expect("database");
    pg.psql("postgres", &format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")).expect("login");
    pg.psql(DB, &setup_sql(&Tables::new(""), USER, DB)).expect("schema");
}

/// A password file only root may read (the role reads it before it drops root).
fn password_file(pg: &Postgres, password: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = pg.scratch().join(format!("password-{}", password.len()));
    std::fs::write(&path, format!("{password}\n")).expect("password file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    path
}

fn section(host: &str, port: u16, password: &Path, tls: Option<&Path>, extra: &str) -> String {
    let tls = match tls {
        Some(ca) => format!("tls = \"verify-full\"\nca_file = \"{}\"\n", ca.display()),
        None => "tls = \"disable\"\n".into(),
    };
    format!(
        "[database.remote]\nhost = \"{host}\"\nport = {port}\nuser = \"{USER}\"\npassword_file = \"{}\"\ndatabase = \"{DB}\"\n{tls}{extra}",
        password.display()
    )
}

const ROWS_SQL: &str = "SELECT c.contime, c.send, c.recv, c.events, e.exe, e.name, e.cmdline, e.sha256, p.exe, p.name, p.cmdline, p.sha256,
        g.exe, g.name, g.cmdline, g.sha256, c.uid, c.family, c.protocol, c.lport, c.rport, la.addr, ra.addr, d.domain, c.netns
     FROM connections c JOIN executables e ON e.id = c.exe_id JOIN executables p ON p.id = c.pexe_id
     JOIN executables g ON g.id = c.gpexe_id JOIN addresses la ON la.id = c.laddr_id
     JOIN addresses ra ON ra.id = c.raddr_id JOIN domains d ON d.id = c.domain_id";

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

/// Every local row (or those of `exe`), each value as text.
fn local_rows(db: &Connection, exe: Option<&Path>) -> Vec<Vec<String>> {
    let sql = match exe {
        Some(e) => format!("{ROWS_SQL} WHERE e.exe = '{}'", e.display()),
        None => ROWS_SQL.to_string(),
    };
    let mut stmt = db.prepare(&sql).expect("local query");
    let rows = stmt
        .query_map([], |r| {
            (0..25)
                .map(|i| {
                    let v: rusqlite::types::Value = r.get(i)?;
                    Ok(match v {
                        rusqlite::types::Value::Integer(n) => n.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        other => format!("{other:?}"),
                    })
                })
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .expect("local rows");
    sorted(rows.map(|r| r.expect("row")).collect())
}

fn remote_rows(pg: &Postgres, exe: Option<&Path>) -> Vec<Vec<String>> {
    let sql = match exe {
        Some(e) => format!("{ROWS_SQL} WHERE e.exe = '{}'", e.display()),
        None => ROWS_SQL.to_string(),
    };
    sorted(pg.query(DB, &sql).expect("remote rows"))
}

/// What the remote holds plus what still waits in the spool (batches it does not
/// have yet), after the daemon stopped: this must equal the local history exactly.
fn remote_and_spooled(pg: &Postgres, spool: &Path) -> Vec<Vec<String>> {
    let mut rows = remote_rows(pg, None);
    let delivered: HashSet<(String, String)> =
        pg.query(DB, "SELECT source, seq FROM delivery").expect("delivery").into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let mut seen = HashSet::new();
    let mut reader = picosnitch_spool::Reader::new(spool);
    for rec in reader.peek(usize::MAX, usize::MAX).expect("reading the spool") {
        let b = picosnitch_remote::drain::decode_batch(&rec.payload).expect("a spooled batch");
        let key = (b.source.clone(), b.seq.to_string());
        if delivered.contains(&key) || !seen.insert(key) {
            continue;
        }
        for r in b.unpack().expect("unpack") {
            let e = |x: &picosnitch_store::ExeRecord| [x.exe.clone(), x.name.clone(), x.cmdline.clone(), x.sha256.clone()];
            let mut v = vec![r.contime.to_string(), r.send.to_string(), r.recv.to_string(), r.events.to_string()];
            v.extend(e(&r.exe));
            v.extend(e(&r.pexe));
            v.extend(e(&r.gpexe));
            v.extend([r.uid, r.family, r.protocol, r.lport, r.rport].map(|n| n.to_string()));
            v.extend([r.laddr, r.raddr, r.domain]);
            v.push(r.netns.to_string());
            rows.push(v);
        }
    }
    sorted(rows)
}

fn spool_dir(d: &Daemon) -> PathBuf {
    d.db.parent().expect("db dir").join("remote-spool")
}

fn remote_status(d: &Daemon) -> serde_json::Value {
    d.status()["remote"].clone()
}

#[test]
fn rows_arrive_over_verified_tls_and_equal_the_local_history() {
    if !root_or_skip("rows_arrive_over_verified_tls_and_equal_the_local_history") {
        return;
    }
    let Some(pg) = start_or_skip("rows_arrive_over_verified_tls_and_equal_the_local_history", Options { tls: true }) else { return };
    prepare(&pg);
    let pw = password_file(&pg, PASSWORD);
    // "localhost": the supervisor resolves the name; the certificate names it.
    let mut d = Daemon::start(&section("localhost", pg.port, &pw, Some(&pg.ca_file()), ""));
    let st = d.wait_status("the remote connected", Duration::from_secs(30), |s| s["remote"]["connected"] == true);
    assert!(st["remote"]["tls"].as_str().unwrap_or_default().contains("verified against"), "{st:#}");
    assert_eq!(st["remote"]["warnings"], serde_json::json!([]), "the login has exactly the GRANTs it needs");

    let server = Traffic::new("remotesrv");
    let client = Traffic::new("remotecli");
    let srv = server.serve(&["tcp-server", "--accepts", "3", "--send", "1000"]);
    let c = client.run(&["tcp-client", "--to", &format!("127.0.0.1:{}", srv.port), "--send", "777", "--repeat", "3"]);
    srv.finish();
    let local = d.wait_rows(&client.path, Duration::from_secs(60), |r| sums(r).0 >= c.sent);
    assert_eq!(sums(&local), (3 * 777, 3 * 1000, 3));
    let deadline = Instant::now() + Duration::from_secs(30);
    let want = local_rows(&d.db(), Some(&client.path));
    while remote_rows(&pg, Some(&client.path)) != want {
        assert!(Instant::now() < deadline, "the client's rows did not arrive: {:?}\nstatus {:#}", remote_rows(&pg, Some(&client.path)), d.status());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(want[0][7], client.sha256(), "with its sha256");
    let ssl = pg.psql(DB, &format!("SELECT bool_and(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = '{USER}'")).expect("ssl");
    assert_eq!(ssl, "t", "the daemon's connection is encrypted");

    // The remote role: the service user, no capabilities, seccomp, and it cannot read
    // the password file again.
    let pid = d.role_pid("remote");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    for (field, want) in [("Uid:", SERVICE_UID.to_string()), ("CapEff:", "0000000000000000".into()), ("CapBnd:", "0000000000000000".into()), ("Seccomp:", "2".into()), ("NoNewPrivs:", "1".into())] {
        let have = status.lines().find_map(|l| l.strip_prefix(field)).unwrap_or_default();
        assert!(have.split_whitespace().all(|v| v == want), "remote {field} {have}");
    }

    // Everything, exactly once: the local history equals the remote one plus what still
    // waited in the spool when the daemon stopped.
    assert_eq!(d.stop(), Some(0));
    let local = local_rows(&d.db(), None);
    assert_eq!(remote_and_spooled(&pg, &spool_dir(&d)), local, "remote + spool == local");
    assert!(local.len() >= 6);
}

/// The server is stopped for 30 s during steady traffic, and the daemon itself is
/// restarted in the middle of the outage: once the server is back, every row of the
/// local history is in the remote one exactly once (or, for the last seconds, still in
/// the spool when the test stops the daemon).
#[test]
fn a_30_second_outage_and_a_daemon_restart_lose_nothing_and_duplicate_nothing() {
    let name = "a_30_second_outage_and_a_daemon_restart_lose_nothing_and_duplicate_nothing";
    if !root_or_skip(name) {
        return;
    }
    let Some(mut pg) = start_or_skip(name, Options { tls: false }) else { return };
    prepare(&pg);
    let pw = password_file(&pg, PASSWORD);
    let mut d = Daemon::start(&section("127.0.0.1", pg.port, &pw, None, ""));
    d.wait_status("the remote connected", Duration::from_secs(30), |s| s["remote"]["connected"] == true);
    // Connections at 20 per second through the whole outage (50 s in all).
    let server = Traffic::new("outagesrv");
    let client = Traffic::new("outagecli");
    let srv = server.serve(&["tcp-server", "--accepts", "1000", "--send", "10"]);
    let port = srv.port;
    let client_path = client.path.clone();
    let load = std::thread::spawn(move || {
        let out = std::process::Command::new(&client_path)
            .args(["tcp-client", "--to", &format!("127.0.0.1:{port}"), "--send", "5", "--repeat", "1000", "--rate", "20"])
            .output()
            .expect("client");
        assert!(out.status.success());
    });
    // A row waits for its executable's hash (at most 30 s), which takes a while on a
    // loaded machine.
    let deadline = Instant::now() + Duration::from_secs(90);
    while remote_count(&pg) == 0 {
        assert!(Instant::now() < deadline, "no row arrived before the outage; status {:#}", d.status());
        std::thread::sleep(Duration::from_millis(200));
    }
    let remote_before = remote_count(&pg);
    pg.stop();
    let stopped = Instant::now();
    let local_before = count(&d.db(), "SELECT count(*) FROM connections");
    let st = d.wait_status("the outage in the status", Duration::from_secs(20), |s| s["remote"]["connected"] == false && !s["remote"]["last_error"].is_null());
    let error = st["remote"]["last_error"].as_str().unwrap_or_default().to_string();
    // The server ends the open connection ("terminating connection due to
    // administrator command"); the attempts after that find nobody listening.
    assert!(error.contains("terminating connection") || error.contains("cannot reach postgresql://appender@127.0.0.1"), "{error}");
    assert!(d.log().contains("remote database: not delivering"), "logged");

    // Halfway through the outage the daemon restarts; the spool is on disk.
    std::thread::sleep(Duration::from_secs(15).saturating_sub(stopped.elapsed()));
    let spooled_before_restart = d.status()["writer"]["remote_rows_spooled"].as_u64().unwrap_or(0);
    let local_at_restart = count(&d.db(), "SELECT count(*) FROM connections");
    println!("at the restart: {local_at_restart} rows in the local history, {spooled_before_restart} spooled, {remote_before} delivered before the outage");
    assert!(spooled_before_restart > 0 && local_at_restart > local_before, "rows were spooled during the outage: {spooled_before_restart}");
    d.restart();
    let st = d.wait_status("the restarted daemon's remote role", Duration::from_secs(30), |s| !s["remote"]["last_error"].is_null());
    assert_eq!(st["remote"]["connected"], false, "{st:#}");
    assert!(st["remote"]["spool_bytes"].as_u64().unwrap_or(0) > 0, "the spool survived the restart: {st:#}");

    std::thread::sleep(Duration::from_secs(30).saturating_sub(stopped.elapsed()));
    let local_at_return = count(&d.db(), "SELECT count(*) FROM connections");
    assert!(local_at_return > local_before + 200, "the local history went on: {local_before} -> {local_at_return}");
    pg.restart().expect("the server back");
    let restarted = Instant::now();
    // Drained: the remote holds at least every row the local history had when the
    // server came back.
    let deadline = restarted + Duration::from_secs(90);
    while remote_count(&pg) < local_at_return {
        assert!(Instant::now() < deadline, "the spool did not drain in 90 s: remote {} < local {local_at_return}; status {:#}", remote_count(&pg), d.status());
        std::thread::sleep(Duration::from_millis(100));
    }
    let drained = restarted.elapsed();
    println!(
        "drained {} rows spooled during a 30 s outage (daemon restarted in it) in {:.1} s after the server came back",
        local_at_return - remote_before,
        drained.as_secs_f64()
    );
    load.join().expect("load");
    srv.finish();
    assert_eq!(d.stop(), Some(0));
    let local = local_rows(&d.db(), None);
    let remote = remote_and_spooled(&pg, &spool_dir(&d));
    assert_eq!(remote.len(), local.len(), "row counts: remote + spool vs local");
    assert!(remote == local, "every row exactly once");
    let twice = pg.psql(DB, "SELECT count(*) FROM (SELECT source, seq FROM delivery GROUP BY 1, 2 HAVING count(*) > 1) d").expect("dups");
    assert_eq!(twice, "0");
    let sources: u32 = pg.psql(DB, "SELECT count(DISTINCT source) FROM delivery").expect("sources").parse().expect("a number");
    assert!(sources >= 2, "batches of both daemon runs arrived: {sources} sources");
    assert!(local.iter().filter(|r| r[4].ends_with("/outagecli")).count() >= 500, "the load ran through the outage");
}

fn remote_count(pg: &Postgres) -> i64 {
    pg.psql(DB, "SELECT count(*) FROM connections").expect("remote count").parse().expect("a number")
}

#[test]
fn a_wrong_password_is_reported_and_the_local_history_goes_on() {
    if !root_or_skip("a_wrong_password_is_reported_and_the_local_history_goes_on") {
        return;
    }
    let Some(pg) = start_or_skip("a_wrong_password_is_reported_and_the_local_history_goes_on", Options { tls: false }) else { return };
    prepare(&pg);
    let pw = password_file(&pg, "not the password");
    let d = Daemon::start(&section("127.0.0.1", pg.port, &pw, None, ""));
    let st = d.wait_status("the login error", Duration::from_secs(30), |s| !s["remote"]["last_error"].is_null());
    let error = st["remote"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("refused the login of \"appender\": password authentication failed"), "{error}");
    assert!(error.contains("check [database.remote] user and password_file"), "{error}");
    let text = std::process::Command::new(DAEMON).args(["status", "--config"]).arg(&d.config).output().expect("status");
    assert!(String::from_utf8_lossy(&text.stdout).contains("NOT DELIVERING: postgresql://appender@127.0.0.1"), "{}", String::from_utf8_lossy(&text.stdout));
    job_works(&d, "pwcli");
    assert_eq!(remote_status(&d)["rows_delivered"], 0);
}

#[test]
fn an_unreachable_host_and_a_full_spool_are_reported_and_counted() {
    if !root_or_skip("an_unreachable_host_and_a_full_spool_are_reported_and_counted") {
        return;
    }
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db/picosnitch.db");
    // A spool already at its limit (1 MiB) with one record nobody will deliver.
    let spool = dir.path().join("db/remote-spool");
    std::fs::create_dir_all(&spool).expect("spool dir");
    let mut a = picosnitch_spool::Appender::open(&spool, 2 << 20).expect("spool");
    a.append(&vec![7u8; (1 << 20) - 100]).expect("fill");
    drop(a);
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "x").expect("pw");
    let d = Daemon::start_in(dir, db, &section("127.0.0.1", closed, &pw, None, "spool_limit_bytes = 1048576\n"));
    let st = d.wait_status("the connect error", Duration::from_secs(30), |s| !s["remote"]["last_error"].is_null());
    let error = st["remote"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("cannot reach postgresql://appender@127.0.0.1:{closed}/picosnitch: 127.0.0.1:{closed}: Connection refused")), "{error}");
    job_works(&d, "fullcli");
    let st = d.wait_status("rows dropped for the full spool", Duration::from_secs(30), |s| s["writer"]["remote_rows_dropped"].as_u64().unwrap_or(0) > 0);
    assert_eq!(st["writer"]["remote_spool_full_events"], 1, "{st:#}");
    assert!(st["writer"]["remote_spool_error"].as_str().unwrap_or_default().contains("the remote spool is full"), "{st:#}");
    assert!(d.log().contains("remote spool full"), "logged");
    let text = std::process::Command::new(DAEMON).args(["status", "--config"]).arg(&d.config).output().expect("status");
    assert!(String::from_utf8_lossy(&text.stdout).contains("LOSSES: rows not spooled for the remote database"), "{}", String::from_utf8_lossy(&text.stdout));
    assert_eq!(st["writer"]["remote_rows_spooled"], 0);
}

/// The local history keeps working: a new program's connection is recorded.
fn job_works(d: &Daemon, tag: &str) {
    let server = Traffic::new(&format!("{tag}s"));
    let client = Traffic::new(tag);
    let srv = server.serve(&["tcp-server", "--send", "3"]);
    let c = client.run(&["tcp-client", "--to", &format!("127.0.0.1:{}", srv.port), "--send", "4"]);
    srv.finish();
    let rows = d.wait_rows(&client.path, Duration::from_secs(60), |r| sums(r).0 >= c.sent);
    assert_eq!(sums(&rows), (4, 3, 1));
}
