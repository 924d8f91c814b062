//! Processes the daemon must not miss: hundreds that connect once and exit within
//! milliseconds, bursts of short connections, and executions without any connection.
mod common;

use common::*;
use std::time::Duration;

#[test]
fn two_hundred_short_lived_processes_each_get_path_and_hash() {
    if !root_or_skip("two_hundred_short_lived_processes_each_get_path_and_hash") {
        return;
    }
    let d = Daemon::start("");
    let n = 200;
    let server = Traffic::new("shortsrv");
    let client = Traffic::new("shortcli");
    let srv = server.serve(&["tcp-server", "--accepts", &n.to_string(), "--send", "10"]);
    let to = format!("127.0.0.1:{}", srv.port);
    let mut pids = std::collections::HashSet::new();
    for _ in 0..n {
        // Each is its own process: exec, connect once, exit.
        let c = client.run(&["tcp-client", "--to", &to, "--send", "1000"]);
        assert_eq!((c.sent, c.received), (1000, 10));
        pids.insert(c.pid);
    }
    assert_eq!(pids.len(), n, "{n} distinct processes");
    srv.finish();
    let sha = client.sha256();
    let rows = d.wait_rows(&client.path, Duration::from_secs(60), |r| sums(r).2 >= n as i64 && sums(r).0 >= 1000 * n as i64);
    assert_eq!(sums(&rows), (1000 * n as i64, 10 * n as i64, n as i64), "every process, every byte, once");
    assert!(rows.iter().all(|r| r.sha256 == sha && r.exe == client.path.display().to_string()), "path and sha256 for each: {rows:#?}");
    let ports: std::collections::HashSet<i64> = rows.iter().map(|r| r.lport).collect();
    assert_eq!(ports.len(), n, "one row per connection (each has its own local port)");
    let st = d.status();
    for (k, v) in st["monitor"]["kernel"].as_object().expect("kernel counters") {
        if k != "path_truncated" {
            assert_eq!(v, 0, "kernel loss counter {k}");
        }
    }
}

#[test]
fn a_burst_of_short_connections_is_counted_exactly() {
    if !root_or_skip("a_burst_of_short_connections_is_counted_exactly") {
        return;
    }
    let d = Daemon::start("");
    let n = 2000;
    let server = Traffic::new("burstsrv");
    let client = Traffic::new("burstcli");
    let srv = server.serve(&["tcp-server", "--accepts", &n.to_string(), "--send", "1"]);
    let started = std::time::Instant::now();
    let c = client.run(&["tcp-client", "--to", &format!("127.0.0.1:{}", srv.port), "--send", "100", "--repeat", &n.to_string()]);
    let elapsed = started.elapsed();
    let s = srv.finish();
    eprintln!("{n} connections in {elapsed:?}");
    let crows = d.wait_rows(&client.path, Duration::from_secs(60), |r| sums(r).2 >= n as i64 && sums(r).0 >= c.sent);
    assert_eq!(sums(&crows), (c.sent, c.received, n as i64));
    let srows = d.wait_rows(&server.path, Duration::from_secs(60), |r| sums(r).2 >= n as i64 && sums(r).1 >= s.received);
    assert_eq!(sums(&srows), (s.sent, s.received, n as i64));
    let st = d.status();
    assert_eq!(st["monitor"]["records_undecodable"], 0);
    assert_eq!(st["primary"]["rows_dropped_queue_full"], 0);
}

#[test]
fn every_exe_records_executions_without_connections() {
    if !root_or_skip("every_exe_records_executions_without_connections") {
        return;
    }
    let d = Daemon::start("[monitoring]\nevery_exe = true\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("quiet-true");
    std::fs::copy("/bin/true", &exe).expect("copy /bin/true");
    let exe = exe.canonicalize().expect("canonical");
    for _ in 0..3 {
        assert!(std::process::Command::new(&exe).arg("--flag").status().expect("run").success());
    }
    let rows = d.wait_rows(&exe, Duration::from_secs(60), |r| sums(r).2 >= 3);
    assert_eq!(sums(&rows), (0, 0, 3));
    assert!(rows.iter().all(|r| r.family == 0 && r.protocol == 0 && r.sha256 == sha256_of(&exe)), "{rows:#?}");
    assert!(rows[0].cmdline.ends_with("quiet-true --flag"), "{}", rows[0].cmdline);
}
