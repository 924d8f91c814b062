//! VirusTotal end to end: the real daemon with a `[virustotal]` key asks a local HTTPS
//! VirusTotal (the `fake` module: the v3 API's files, uploads and analyses, with its
//! error answers) about the executables that use the network, and the verdicts land in
//! the history, in `picosnitch query`, in the log (a flagged file) and in the status.
mod common;

use common::*;
use picosnitch_virustotal::fake::FakeVirusTotal;
use picosnitch_virustotal::Stats;
use std::time::{Duration, Instant};


fn verdict(d: &Daemon, sha: &str, timeout: Duration) -> (String, i64, i64, i64) {
    let deadline = Instant::now() + timeout;
    loop {
        let found = d.db().query_row(
            "SELECT result, malicious, suspicious, undetected FROM virustotal WHERE sha256 = ?1",
            [sha],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        );
        if let Ok(v) = found {
            return v;
        }
        assert!(Instant::now() < deadline, "no verdict for {sha} after {timeout:?}; daemon log:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One connection from `client` to `server` (one server binary for the whole test:
/// every new file is hashed, and an 18 MB debug build takes a while on a busy machine).
fn connect_once(server: &Traffic, client: &Traffic) {
    let srv = server.serve(&["tcp-server", "--send", "3"]);
    client.run(&["tcp-client", "--to", &format!("127.0.0.1:{}", srv.port), "--send", "4"]);
    srv.finish();
}

#[test]
fn verdicts_are_looked_up_uploaded_stored_and_shown() {
    if !root_or_skip("verdicts_are_looked_up_uploaded_stored_and_shown") {
        return;
    }
    let fake = FakeVirusTotal::start(VT_KEY).expect("fake VirusTotal");
    let secrets = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(&virustotal_section(&fake, secrets.path(), true));

    let server = Traffic::new("vtsrv");
    let flagged = Traffic::distinct("vtflagged");
    let unknown = Traffic::distinct("vtunknown");
    let flagged_sha = flagged.sha256();
    let unknown_sha = unknown.sha256();
    assert_ne!(flagged_sha, unknown_sha);
    fake.add_file(&flagged_sha, Some(Stats { malicious: 4, suspicious: 1, undetected: 60, harmless: 3, ..Default::default() }));
    fake.set_upload_verdict(Stats { undetected: 62, harmless: 4, ..Default::default() });
    connect_once(&server, &flagged);
    connect_once(&server, &unknown);

    // Other executables on the machine may be asked about first, one a second.
    assert_eq!(verdict(&d, &flagged_sha, Duration::from_secs(100)), ("analysed".into(), 4, 1, 60));
    assert_eq!(verdict(&d, &unknown_sha, Duration::from_secs(60)), ("analysed".into(), 0, 0, 62));

    // The unknown file itself was uploaded, whole, through the descriptor the primary handed over.
    let requests = fake.requests();
    let size = std::fs::metadata(&unknown.path).expect("size").len() as usize;
    assert!(
        requests.iter().any(|r| r.uploaded.as_ref() == Some(&(unknown_sha.clone(), size))),
        "no upload of {} ({size} bytes) among {:?}",
        unknown.path.display(),
        requests.iter().filter_map(|r| r.uploaded.clone()).collect::<Vec<_>>()
    );
    assert!(!requests.iter().any(|r| r.uploaded.as_ref().is_some_and(|u| u.0 == flagged_sha)), "a known file is never uploaded");
    // Paced: one request per request_limit_seconds (1 s), with a little slack for timers.
    for pair in requests.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(900), "requests {} and {} only {gap:?} apart", pair[0].path, pair[1].path);
    }

    // The flagged executable is in the log, named, and counted in the status.
    let line = d.wait_log(&["VirusTotal flags an executable", &flagged.path.display().to_string()], Duration::from_secs(10));
    assert!(line.contains("4/68 malicious, 1 suspicious"), "{line}");
    let st = d.wait_status("virustotal counters", Duration::from_secs(10), |st| {
        st["virustotal"]["flagged"].as_u64() >= Some(1) && st["virustotal"]["files_uploaded"].as_u64() >= Some(1)
    });
    assert!(st["roles"].as_array().expect("roles").iter().any(|r| r["role"] == "virustotal" && r["ready"] == true));

    // picosnitch query shows the verdict beside the executable. On a busy machine the
    // first row may have been written before its hash ("!hash-timeout", after 30 s);
    // the hash is known now, so a new connection's row carries it.
    for (t, sha) in [(&flagged, &flagged_sha), (&unknown, &unknown_sha)] {
        if !rows_of(&d.db(), &t.path).iter().any(|r| &r.sha256 == sha) {
            connect_once(&server, t);
            d.wait_rows(&t.path, Duration::from_secs(60), |r| r.iter().any(|r| &r.sha256 == sha));
        }
    }
    let out = std::process::Command::new(DAEMON)
        .args(["query", "--config"])
        .arg(&d.config)
        .args(["--exe", "vtflagged"])
        .output()
        .expect("picosnitch query");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("4/68 malicious, 1 suspicious"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(DAEMON)
        .args(["query", "--format", "csv", "--config"])
        .arg(&d.config)
        .args(["--exe", "vtunknown"])
        .output()
        .expect("picosnitch query");
    assert!(String::from_utf8_lossy(&out.stdout).contains(",clean (0/66)"), "{}", String::from_utf8_lossy(&out.stdout));

    // A restarted primary learns from the writer which hashes have verdicts, and does
    // not spend the quota on them again.
    let before = fake.requests().iter().filter(|r| r.path.ends_with(&flagged_sha)).count();
    // SAFETY: signalling a process of the daemon this test started.
    unsafe { libc::kill(d.role_pid("primary") as i32, libc::SIGKILL) };
    d.wait_status("primary restarted", Duration::from_secs(30), |st| {
        st["roles"].as_array().is_some_and(|rs| rs.iter().any(|r| r["role"] == "primary" && r["restarts"] == 1 && r["ready"] == true))
    });
    let rows_before = rows_of(&d.db(), &flagged.path).len();
    connect_once(&server, &flagged);
    // The new primary hashes the file again (its cache went with the old one).
    d.wait_rows(&flagged.path, Duration::from_secs(60), |r| r.len() > rows_before);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(fake.requests().iter().filter(|r| r.path.ends_with(&flagged_sha)).count(), before, "asked again after a primary restart");

    // A key VirusTotal refuses is reported, not retried forever, and the role carries on.
    fake.set_api_key("rotated");
    let third = Traffic::distinct("vtrefused");
    connect_once(&server, &third);
    let st = d.wait_status("a refused key in the status", Duration::from_secs(60), |st| {
        st["virustotal"]["last_error"].as_str().is_some_and(|e| e.contains("WrongCredentialsError"))
    });
    assert!(st["virustotal"]["errors"].as_u64() >= Some(1));
    assert_eq!(d.stop(), Some(0), "the daemon stops cleanly with the virustotal role");
}

/// VirusTotal is optional: a key file that cannot be read turns the lookups off and
/// says why, and the history is recorded all the same.
#[test]
fn a_missing_key_file_turns_lookups_off_not_the_daemon() {
    if !root_or_skip("a_missing_key_file_turns_lookups_off_not_the_daemon") {
        return;
    }
    let d = Daemon::start("[virustotal]\napi_key_file = \"/nonexistent/picosnitch-vt-key\"\n");
    let line = d.wait_log(&["VirusTotal lookups are off"], Duration::from_secs(10));
    assert!(line.contains("/nonexistent/picosnitch-vt-key"), "{line}");
    let st = d.status();
    assert!(!st["roles"].as_array().expect("roles").iter().any(|r| r["role"] == "virustotal"), "{st}");
    let server = Traffic::new("vtoffsrv");
    let client = Traffic::new("vtoffcli");
    connect_once(&server, &client);
    let rows = d.wait_rows(&client.path, Duration::from_secs(60), |r| !r.is_empty());
    assert_eq!(sums(&rows), (4, 3, 1));
}
