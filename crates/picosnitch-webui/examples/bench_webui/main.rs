//! Benchmark of the web UI's views on a big history.
//!
//!     cargo run --release -p picosnitch-webui --example bench_webui -- [--rows N] [--days D] [--db PATH] [--repeat N] [--regenerate] [--serve PORT]
//!
//! Builds (or reuses) a database of N rows over D days with the TUI benchmark's
//! generator (through the store's insert path), migrates it to the current schema,
//! serves it with the web UI in this process and times, over HTTP, what the page asks
//! for each view: Overview, Explore by every dimension, a row's drill-down (its
//! details and latest connections, fetched together), and Live, in every time range.
//! `--serve PORT` only serves it, to look at it in a browser.
#[path = "../../../picosnitch-tui/examples/bench_history/generate.rs"]
mod generate;
#[path = "../../tests/common/client.rs"]
mod client;

use picosnitch_feed::{Direction, FlowUpdate, UpdateKind};
use picosnitch_store::Store;
use picosnitch_webui::api::PageSettings;
use picosnitch_webui::http::{Limits, Listener};
use picosnitch_webui::live::Live;
use picosnitch_webui::users::UserNames;
use picosnitch_webui::{Settings, WebUi};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

struct Args {
    history: generate::HistoryArgs,
    serve: Option<u16>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { history: generate::HistoryArgs::new("/tmp/picosnitch-webui-bench.db"), serve: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        if a.history.take(&flag, &mut value)? {
            continue;
        }
        match flag.as_str() {
            "--serve" => a.serve = Some(value()?.parse().map_err(|e| format!("--serve: {e}"))?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}


/// The page's requests for one view, fetched at once as the page does; the time until
/// the last answer.
fn fetch_all(port: u16, paths: &[String]) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = paths.iter().map(|p| s.spawn(move || client::get(port, p))).collect();
        for (h, p) in handles.into_iter().zip(paths) {
            let a = h.join().expect("request thread");
            assert_eq!(a.status, 200, "{p}: {}", a.text());
        }
    });
    start.elapsed().as_secs_f64() * 1e3
}

fn enc(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_webui: {e}");
            std::process::exit(2);
        }
    };
    args.history.prepare();
    // Opening for writing migrates an older history (schema 3 counts namespaces).
    let started = Instant::now();
    drop(Store::open(&args.history.db).expect("open for writing (migrating)"));
    eprintln!("opened (and migrated if needed) in {:.1} s", started.elapsed().as_secs_f64());

    let listener = std::net::TcpListener::bind(("127.0.0.1", args.serve.unwrap_or(0))).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let live = Live::default();
    let settings = Settings {
        database: args.history.db.clone(),
        feed_socket: PathBuf::from("/nonexistent/events.sock"),
        allowed_hosts: vec![],
        page: PageSettings { theme: String::new(), scroll_zoom: true },
        query_threads: 2,
    };
    let (stop_tx, stop) = async_channel::bounded::<()>(1);
    let web_live = live.clone();
    let server = std::thread::spawn(move || {
        let web = WebUi::with_live(settings, UserNames::load(), web_live);
        picosnitch_webui::run(web, vec![Listener::Tcp(listener)], Limits::default(), stop)
    });
    // A busy feed: 2,000 updates from 300 programs, as kept for the Live view.
    for i in 0..2_000u64 {
        live.record(&FlowUpdate {
            v: 1,
            kind: [UpdateKind::Open, UpdateKind::Bytes, UpdateKind::Close][(i % 3) as usize],
            flow: i / 3,
            time: 1.0e9 + i as f64,
            exe: format!("/usr/bin/prog{:03}", i % 300),
            name: format!("prog{:03}", i % 300),
            raddr: format!("10.0.{}.{}", i % 200, i % 250),
            rport: 443,
            domain: format!("host{}.example", i % 500),
            direction: Some(Direction::Out),
            send: i * 10,
            recv: i * 80,
            ..Default::default()
        });
    }
    if args.serve.is_some() {
        eprintln!("serving http://127.0.0.1:{port}/ until interrupted");
        let _ = server.join();
        return;
    }
    // Wait for the server to answer.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let meta = client::get(port, "/api/meta").json();
    println!(
        "database {} ({} MB), history {}..{}; {} runs of each, page cache warm, times in ms from the first request to the last answer",
        args.history.db.display(),
        std::fs::metadata(&args.history.db).map_or(0, |m| m.len() / 1_000_000),
        meta["database"]["oldest"],
        meta["database"]["newest"],
        args.history.repeat
    );
    // "Now" is just after the newest row, as when the daemon has just written: each
    // preset becomes from/to ending there (the page sends range=NAME, which the server
    // turns into the same span ending at its clock).
    let now = meta["database"]["newest"].as_i64().expect("a history") + 1;
    let mut ranges: Vec<(String, String)> =
        picosnitch_webui::api::params::RANGES.iter().map(|(n, s)| (n.to_string(), format!("from={}&to={}", now - s, now + 1))).collect();
    ranges.push(("all".into(), "range=all".into()));
    let dims: Vec<&str> = picosnitch_webui::api::DIMS.iter().map(|d| d.id).collect();
    let mut per_view: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut worst: Vec<(f64, String)> = Vec::new();
    let mut full: Vec<(f64, String)> = Vec::new();
    let mut time = |view: &'static str, what: String, paths: Vec<String>, per_view: &mut BTreeMap<&str, Vec<f64>>| {
        let mut t: Vec<f64> = (0..args.history.repeat).map(|_| fetch_all(port, &paths)).collect();
        t.sort_by(f64::total_cmp);
        worst.push((generate::percentile(&t, 0.95), format!("{view} {what}")));
        per_view.entry(view).or_default().extend(t);
    };
    for (name, r) in &ranges {
        // Overview: totals, the top 8 over time (the page asks for ~125 buckets on a
        // wide screen).
        time("overview", format!("range={name}"), vec![format!("/api/overview?{r}&metric=total&by=exe&top=8&buckets=125")], &mut per_view);
        for g in &dims {
            time("explore", format!("range={name} group={g}"), vec![format!("/api/explore?{r}&group={g}&sort=total&order=desc&limit=200&offset=0")], &mut per_view);
        }
        // Drill-down into the biggest row and the tenth of the busiest dimensions.
        for g in ["exe", "name", "pexe", "user", "rport", "domain", "raddr"] {
            let rows = client::get(port, &format!("/api/explore?{r}&group={g}&sort=total&order=desc&limit=10")).json();
            let Some(rows) = rows["rows"].as_array() else { continue };
            for (n, row) in rows.iter().enumerate().filter(|(n, _)| *n == 0 || *n == 9) {
                let key = match &row["key"] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let k = enc(&key);
                time(
                    "drilldown",
                    format!("range={name} {g} row {}", n + 1),
                    vec![
                        format!("/api/drilldown?{r}&group={g}&key={k}&metric=total"),
                        format!("/api/connections?{r}&f={g}:{k}&limit=50"),
                    ],
                    &mut per_view,
                );
                // What "Count the whole range" costs: once, it is slow by nature.
                let t = fetch_all(port, &[format!("/api/drilldown?{r}&group={g}&key={k}&metric=total&full=1")]);
                full.push((t, format!("range={name} {g} row {}", n + 1)));
            }
        }
    }
    time("live", "after=0".into(), vec!["/api/live?after=0&limit=500&top=200".into()], &mut per_view);
    println!("{:<10} {:>8} {:>8} {:>8} {:>8}", "view", "requests", "p50", "p95", "max");
    for (view, mut t) in per_view {
        t.sort_by(f64::total_cmp);
        println!("{view:<10} {:>8} {:>8.1} {:>8.1} {:>8.1}", t.len(), generate::percentile(&t, 0.5), generate::percentile(&t, 0.95), generate::percentile(&t, 1.0));
    }
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("slowest (p95):");
    for (p95, what) in worst.iter().take(15) {
        println!("  {p95:>8.1}  {what}");
    }
    full.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut ft: Vec<f64> = full.iter().map(|f| f.0).collect();
    ft.sort_by(f64::total_cmp);
    println!("drill-down breakdowns over the whole range (full=1, once each): p50 {:.0}  p95 {:.0}  max {:.0}; slowest:", generate::percentile(&ft, 0.5), generate::percentile(&ft, 0.95), generate::percentile(&ft, 1.0));
    for (t, what) in full.iter().take(5) {
        println!("  {t:>8.0}  {what}");
    }
    let _ = stop_tx.try_send(());
    drop(stop_tx);
    let _ = server.join();
}
