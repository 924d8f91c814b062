//! The web UI in a real browser: Debian's headless Chromium, driven by Playwright's
//! `playwright-core` (tests/browser/webui.mjs), against a real `picosnitch webui`
//! (unprivileged, confined) on the history a real daemon recorded from real traffic.
//! The numbers each view shows are compared with the SQLite file; a filter, a
//! drill-down, the live tab, the dark theme and a phone-sized screen are exercised; a
//! missing history and a stopped daemon must be explained in the page. Screenshots of
//! every view are kept in `target/tmp/webui-artifacts/` (CARGO_TARGET_TMPDIR).
mod common;

use common::webui::WebUiProcess;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser script, bounded: it waits at most a minute for any one thing.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

fn artifacts(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webui-artifacts").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("artifacts directory");
    dir
}

/// Root, node and Chromium present, and playwright-core installed from the lock file
/// (`npm ci`, once); otherwise SKIPPED (or a failure under CI=true).
fn browser_or_skip(test: &str) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !node || !Path::new(CHROMIUM).exists() {
        let why = format!("{test} needs node and {CHROMIUM}: run scripts/install-deps.sh (chromium, nodejs, npm)");
        if std::env::var_os("CI").is_some() {
            panic!("{why}; CI installs them, this must not be skipped");
        }
        eprintln!("SKIPPED {why}");
        return false;
    }
    // Both tests of this file may start at once (nextest runs each in its own process):
    // one installs while the other waits on the lock.
    let lock = std::fs::File::create(Path::new(env!("CARGO_TARGET_TMPDIR")).join("webui-npm.lock")).expect("npm lock file");
    // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
    assert_eq!(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) }, 0, "locking for npm ci");
    if !Path::new(BROWSER_DIR).join("node_modules/playwright-core/package.json").exists() {
        // playwright-core never downloads a browser; it drives /usr/bin/chromium.
        let mut npm = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(BROWSER_DIR)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("npm ci in {BROWSER_DIR}: {e} (install npm: scripts/install-deps.sh)"));
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(st) = npm.try_wait().expect("npm ci") {
                assert!(st.success(), "npm ci in {BROWSER_DIR} failed: {st}");
                break;
            }
            if Instant::now() > deadline {
                let _ = npm.kill();
                let _ = npm.wait();
                panic!("npm ci in {BROWSER_DIR} took over 300 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    drop(lock);
    true
}

/// Runs the browser script; every JSON line it prints is handed to `on_step`, which may
/// act (make traffic) before the script goes on, and answer with a line for its stdin.
/// Returns the steps by name.
/// `expected_http_errors`: answers with a 4xx/5xx the page asked for on purpose (the
/// browser logs each such load as a console error).
fn run_browser(env: &[(&str, String)], expected_http_errors: bool, mut on_step: impl FnMut(&str, &Value) -> Option<String>) -> std::collections::HashMap<String, Value> {
    let mut child = Command::new("node")
        .arg("webui.mjs")
        .current_dir(BROWSER_DIR)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node webui.mjs");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let deadline = started + SCRIPT_TIMEOUT;
    let mut steps = std::collections::HashMap::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("browser script printed {line:?}: {e}"));
                let step = v["step"].as_str().unwrap_or_default().to_string();
                eprintln!("browser (+{:.1} s): {line}", started.elapsed().as_secs_f64());
                if let Some(answer) = on_step(&step, &v) {
                    use std::io::Write;
                    writeln!(stdin, "{answer}").expect("writing to the browser script");
                }
                if step == "failed" {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the browser script failed: {:#}", v);
                }
                let done = step == "done";
                steps.insert(step, v);
                if done {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the browser script did not finish within {SCRIPT_TIMEOUT:?}; steps so far: {:?}", steps.keys().collect::<Vec<_>>());
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // The script reads its stdin until it ends: end it so node can exit.
    drop(stdin);
    let st = child.wait().expect("node exit");
    assert!(st.success(), "node webui.mjs: {st}; steps: {steps:#?}");
    let done = steps.get("done").unwrap_or_else(|| panic!("no done step: {steps:#?}"));
    let problems: Vec<&Value> = done["problems"]
        .as_array()
        .map(|p| p.iter().filter(|m| !(expected_http_errors && m.as_str().is_some_and(|m| m.contains("Failed to load resource: the server responded with a status of")))).collect())
        .unwrap_or_default();
    assert!(problems.is_empty(), "console errors, page errors or CSP violations: {problems:?}");
    assert_eq!(done["outside"], serde_json::json!([]), "requests to anything but the web UI");
    steps
}

fn sql(d: &Daemon, q: &str) -> i64 {
    count(&d.db(), q)
}

#[test]
fn every_view_shows_what_the_daemon_recorded() {
    if !browser_or_skip("every_view_shows_what_the_daemon_recorded") {
        return;
    }
    let test_started = Instant::now();
    let d = Daemon::start("");
    let from = picosnitch_store_now() - 120;
    // The views are looked at through a filter on a network namespace of the test's own:
    // the machine's other traffic (other tests, other programs) is recorded too, so only
    // there are the numbers known and still. Two clients with different amounts, so
    // sorting and the chart have something to order.
    let ns = common::netns::Netns::new("wui");
    let server = Traffic::new("wui-srv");
    let big = Traffic::new("wui-big");
    let small = Traffic::new("wui-small");
    let srv = server.serve_with(ns.command(&server.path).args(["tcp-server", "--send", "300007", "--accepts", "2"]));
    let to_srv = format!("127.0.0.1:{}", srv.port);
    let b = run_in(&ns, &big, &["tcp-client", "--to", &to_srv, "--send", "70001"]);
    let s = run_in(&ns, &small, &["tcp-client", "--to", &to_srv, "--send", "1234"]);
    let sv = srv.finish();
    assert_eq!((sv.sent, sv.received), (b.received + s.received, b.sent + s.sent), "the exchange is complete");
    for (t, c) in [(&big, b), (&small, s), (&server, sv)] {
        d.wait_rows(&t.path, Duration::from_secs(120), |r| sums(r).0 >= c.sent && sums(r).1 >= c.received);
    }
    let to = picosnitch_store_now() + 1;
    let inode = ns.inode();
    let range = format!("contime >= {from} AND c.contime < {to} AND c.netns = {inode}");
    // Executables are counted by path (one path may have several hashes).
    let q = format!(
        "SELECT coalesce(sum(c.recv), 0), coalesce(sum(c.send), 0), coalesce(sum(c.events), 0), count(DISTINCT e.exe)
         FROM connections c JOIN executables e ON e.id = c.exe_id WHERE c.{range}"
    );
    let db: [i64; 4] = d.db().query_row(&q, [], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])).expect("totals");
    let moved = 2 * 300_007 + 70_001 + 1_234;
    assert_eq!(db, [moved, moved, 4, 3], "the database holds the exchange exactly: two connections seen from both ends");
    let exe_sum = |col: &str, t: &Traffic| {
        sql(&d, &format!("SELECT coalesce(sum(c.{col}), 0) FROM connections c JOIN executables e ON e.id = c.exe_id WHERE c.{range} AND e.exe = '{}'", t.path.display()))
    };
    let (big_recv, big_send, big_events) = (exe_sum("recv", &big), exe_sum("send", &big), exe_sum("events", &big));
    assert_eq!((big_send, big_recv), (b.sent, b.received), "the daemon recorded the client's exact bytes");

    eprintln!("recorded after {:.1} s", test_started.elapsed().as_secs_f64());
    let w = WebUiProcess::start(&d, &[]);
    let live = Traffic::new("wui-live");
    let mut live_counts = None;
    let art = artifacts("views");
    let steps = run_browser(
        &[
            ("WEBUI_URL", w.url()),
            ("ARTIFACTS", art.display().to_string()),
            ("MODE", "views".into()),
            ("RANGE_FROM", from.to_string()),
            ("RANGE_TO", to.to_string()),
            ("BASE_FILTER", format!("f=netns:{inode}")),
            ("FILTER_EXE", big.path.display().to_string()),
            ("LIVE_EXE", live.path.display().to_string()),
        ],
        false,
        |step, _| {
            if step == "live-ready" {
                let srv = server.serve(&["tcp-server", "--send", "4321"]);
                let c = live.run(&["tcp-client", "--to", &format!("127.0.0.1:{}", srv.port), "--send", "8765"]);
                srv.finish();
                live_counts = Some(c);
                return Some(serde_json::json!({ "send": c.sent, "recv": c.received }).to_string());
            }
            None
        },
    );
    let ov = &steps["overview"];
    assert_eq!(ov["banner"], "", "no problem shown");
    let cards = &ov["totals"];
    let shown = ["recv", "send", "connections", "executables", "namespaces"].map(|k| cards[k].as_i64().unwrap_or(-1));
    assert_eq!(shown, [db[0], db[1], db[2], db[3], 1], "overview cards {cards} (recv, send, connections, executables, namespaces) are the database's");
    assert!(ov["paths"].as_u64() >= Some(1), "the chart has areas: {ov}");
    let legend: i64 = ov["legend"].as_array().expect("legend").iter().map(|l| l["value"].as_i64().unwrap_or(0)).sum();
    assert_eq!(Some(legend), cards["total"].as_i64(), "the chart's series (top and rest, bytes both ways by default) add up to the total shown");
    let sent_legend: i64 = steps["overview-sent"]["legend"].as_array().expect("legend").iter().map(|v| v.as_i64().unwrap_or(0)).sum();
    assert_eq!(Some(sent_legend), steps["overview-sent"]["totals"]["send"].as_i64(), "with metric=send the series add up to the total sent");

    let ex = &steps["explore"];
    assert_eq!(ex["sorted"], true, "sorted by received, descending");
    let rows = ex["rows"].as_array().expect("rows");
    let row_of = |t: &Traffic| {
        let key = t.path.display().to_string();
        let r = rows.iter().find(|r| r["key"] == key.as_str()).unwrap_or_else(|| panic!("no row for {key} in {rows:#?}"));
        (r["recv"].as_i64().unwrap_or(-1), r["send"].as_i64().unwrap_or(-1))
    };
    assert_eq!(rows.len(), 3, "the three programs of the namespace: {rows:#?}");
    assert_eq!(row_of(&big), (big_recv, big_send));
    assert_eq!(row_of(&small), (s.received, s.sent));
    assert_eq!(row_of(&server), (sv.received, sv.sent));
    assert_eq!(rows[2]["key"], server.path.display().to_string(), "the server received least");
    assert_eq!(ex["totals"], serde_json::json!([moved, moved, 2 * moved, 4]), "the table's totals (received, sent, total, connections)");
    assert_eq!(steps["explore-sorted"]["ascending"], true);

    let f = &steps["filtered"];
    let chips = f["chips"].as_array().expect("chips");
    assert_eq!(chips.len(), 2, "the namespace and the executable: {chips:?}");
    assert!(chips[1].as_str().unwrap_or_default().contains("wui-big"), "{chips:?}");
    let in_filter: i64 = f["rows"].as_array().expect("rows").iter().map(|r| r["recv"].as_i64().unwrap_or(0)).sum();
    assert_eq!(in_filter, big_recv, "the filtered view holds the client's bytes only");

    let dr = &steps["drilldown"];
    assert!(dr["title"].as_str().unwrap_or_default().contains("wui-big"), "{dr}");
    assert_eq!((dr["recv"].as_i64(), dr["send"].as_i64(), dr["events"].as_i64()), (Some(big_recv), Some(big_send), Some(big_events)), "{dr}");
    assert!(dr["sparkline"].as_u64() >= Some(1), "{dr}");
    assert_eq!(dr["partial"], false, "a small history is counted whole");
    let users = dr["users"].as_array().expect("users");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!((users[0]["key"].as_str(), users[0]["recv"].as_i64()), (Some("0"), Some(big_recv)), "root ran it");
    let addrs = dr["addresses"].as_array().expect("addresses");
    assert_eq!((addrs[0]["key"].as_str(), addrs[0]["send"].as_i64()), (Some("127.0.0.1"), Some(big_send)), "{addrs:?}");
    let conns = dr["connections"].as_array().expect("connections");
    assert!(!conns.is_empty() && conns.iter().all(|c| c == &Value::String(big.path.display().to_string())), "{conns:?}");

    assert_eq!(steps["phone"]["overviewFits"], true, "the overview fits a phone's width");
    assert_eq!(steps["phone"]["exploreFits"], true, "explore with its drill-down fits a phone's width");

    let lc = live_counts.expect("the live traffic ran");
    let lv = &steps["live"];
    assert_eq!((lv["proc"]["send"].as_i64(), lv["proc"]["recv"].as_i64()), (Some(lc.sent), Some(lc.received)), "{lv}");
    assert_eq!(lv["filtered"], serde_json::json!([live.path.display().to_string()]), "the filter keeps only the live program");
    for shot in ["overview", "overview-dark", "explore-drilldown", "phone-overview", "phone-explore", "live"] {
        let png = art.join(format!("{shot}.png"));
        assert!(std::fs::metadata(&png).is_ok_and(|m| m.len() > 5_000), "screenshot {}", png.display());
    }
}

/// Runs `t` inside `ns` to completion and returns its own counts.
fn run_in(ns: &common::netns::Netns, t: &Traffic, args: &[&str]) -> Counts {
    let out = ns.command(&t.path).args(args).output().expect("running picosnitch-traffic in the namespace");
    assert!(out.status.success(), "{} {args:?}: {}", t.path.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("generator output {text:?}: {e}"));
    Counts { sent: v["sent"].as_i64().unwrap_or(-1), received: v["received"].as_i64().unwrap_or(-1), pid: v["pid"].as_u64().unwrap_or(0) as u32 }
}

/// Unix seconds now.
fn picosnitch_store_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[test]
fn a_missing_history_and_a_stopped_daemon_are_explained_in_the_page() {
    if !browser_or_skip("a_missing_history_and_a_stopped_daemon_are_explained_in_the_page") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // The configuration of a daemon that never ran: no history yet, no live feed.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for sub in ["db", "run"] {
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
    }
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\npath = \"{}\"\n[data]\nruntime_dir = \"{}\"\nowner = \"{SERVICE_UID}\"\ngroup = \"{SERVICE_UID}\"\n",
            dir.path().join("db/picosnitch.db").display(),
            dir.path().join("run").display()
        ),
    )
    .expect("config");
    let w = WebUiProcess::start_config(&config, dir.path(), &[], &[]);
    let (status, body) = w.get("/api/overview?range=all");
    assert!((400..500).contains(&status) || status == 503, "{status}: {body}");
    let art = artifacts("problems");
    let steps = run_browser(&[("WEBUI_URL", w.url()), ("ARTIFACTS", art.display().to_string()), ("MODE", "problems".into())], true, |_, _| None);
    let p = &steps["problems"];
    let text = p["overview"]["text"].as_str().unwrap_or_default();
    assert!(text.contains("picosnitch.db"), "the banner names the missing file: {text}");
    let live = p["live"].as_str().unwrap_or_default();
    assert!(live.to_lowercase().contains("daemon"), "the live tab says the daemon is not running: {live}");
    for shot in ["problem-overview", "problem-live"] {
        assert!(art.join(format!("{shot}.png")).exists(), "{shot}");
    }
}
