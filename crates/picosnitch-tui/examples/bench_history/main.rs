//! Benchmark of the history browser's queries on a big history.
//!
//!     cargo run --release -p picosnitch-tui --example bench_history -- [--rows N] [--days D] [--db PATH] [--repeat N] [--regenerate] [--rebuild]
//!
//! Builds (or reuses) a database of N rows over D days through the store's insert path,
//! then times what `picosnitch tui` does when it opens and when the user switches view
//! or time window, per view and window, and reports p50/p95.
mod generate;

use jiff::tz::TimeZone;
use picosnitch_store::{Dimension, ExeField, Filter, GroupKey, Role, Store};
use picosnitch_tui::history::views::{ViewKind, VIEWS};
use picosnitch_tui::history::windows::WINDOWS;
use picosnitch_tui::history::worker::{HistoryData, StoreSource};
use picosnitch_tui::history::request_for;
use std::time::Instant;

struct Args {
    history: generate::HistoryArgs,
    /// Also time recounting the summaries, as the migration to schema 2 does once.
    rebuild: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { history: generate::HistoryArgs::new("/tmp/picosnitch-bench.db"), rebuild: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        if a.history.take(&flag, &mut value)? {
            continue;
        }
        match flag.as_str() {
            "--rebuild" => a.rebuild = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}


fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Times `repeat` runs of the request the tui makes for a view, window and filters,
/// on one open source as the tui keeps it; returns sorted milliseconds and the rows.
fn time(source: &mut StoreSource, view: usize, window: usize, filters: &[Filter], now: i64, repeat: usize) -> (Vec<f64>, usize) {
    let Some(request) = request_for(view, window, 0, filters, now, &TimeZone::UTC) else { return (vec![], 0) };
    let mut t = Vec::with_capacity(repeat);
    let mut n = 0;
    for _ in 0..repeat {
        let start = Instant::now();
        let answer = source.run(&request).expect("query");
        t.push(ms(start));
        n = match answer.data {
            HistoryData::Rows(r) => r.len(),
            HistoryData::Connections(c, _) => c.len(),
        };
    }
    t.sort_by(f64::total_cmp);
    (t, n)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_history: {e}");
            std::process::exit(2);
        }
    };
    args.history.prepare();
    if args.rebuild {
        let (mut store, _) = Store::open(&args.history.db).expect("open for writing");
        let start = Instant::now();
        store.rebuild_summaries().expect("rebuild");
        println!("recounting every summary (the schema 2 migration's backfill): {:.0} s", start.elapsed().as_secs_f64());
    }
    // "Now" is just after the newest row, as when the daemon has just written.
    let newest = Store::open_read_only(&args.history.db).expect("open read-only").history_bounds().expect("bounds").expect("empty database").1;
    let now = newest + 1;
    println!("database {} ({} MB), timings in ms over {} runs each, page cache warm", args.history.db.display(), std::fs::metadata(&args.history.db).map_or(0, |m| m.len() / 1_000_000), args.history.repeat);

    // Opening: a new read-only connection and the first view (executables, all).
    let mut open = Vec::new();
    for _ in 0..args.history.repeat {
        let start = Instant::now();
        let mut source = StoreSource::new(args.history.db.clone(), TimeZone::UTC);
        let request = request_for(0, 0, 0, &[], now, &TimeZone::UTC).expect("first view");
        source.run(&request).expect("first query");
        open.push(ms(start));
    }
    open.sort_by(f64::total_cmp);
    println!("open + first view: p50 {:.1}  p95 {:.1}", generate::percentile(&open, 0.5), generate::percentile(&open, 0.95));

    let mut source = StoreSource::new(args.history.db.clone(), TimeZone::UTC);
    let mut all = Vec::new();
    let mut slow = Vec::new();
    println!("{:<26} {:<10} {:>8} {:>8} {:>7}", "view", "window", "p50", "p95", "rows");
    for (v, def) in VIEWS.iter().enumerate() {
        if def.kind == ViewKind::Live {
            continue;
        }
        for (w, win) in WINDOWS.iter().enumerate() {
            let (t, n) = time(&mut source, v, w, &[], now, args.history.repeat);
            let name = format!("{} {}", def.section, def.name.to_lowercase());
            let (p50, p95) = (generate::percentile(&t, 0.5), generate::percentile(&t, 0.95));
            println!("{name:<26} {:<10} {p50:>8.1} {p95:>8.1} {n:>7}", win.label);
            if p95 > 200.0 {
                slow.push(format!("{name} / {}", win.label));
            }
            all.extend(t);
        }
    }
    all.sort_by(f64::total_cmp);
    println!(
        "every view and window ({} queries): p50 {:.1}  p95 {:.1}  max {:.1}; over 200 ms at p95: {}",
        all.len(),
        generate::percentile(&all, 0.5),
        generate::percentile(&all, 0.95),
        generate::percentile(&all, 1.0),
        if slow.is_empty() { "none".to_string() } else { slow.join(", ") }
    );

    // Filtered views read `connections` (no summaries): the busiest executable's
    // domains and ports, a domain's executables, and drill-downs.
    let busiest = {
        let q = request_for(0, 0, 0, &[], now, &TimeZone::UTC).expect("view");
        match source.run(&q).expect("query").data {
            HistoryData::Rows(mut r) => {
                r.sort_by_key(|x| std::cmp::Reverse(x.events));
                r.first().map(|x| x.key.clone()).expect("an executable")
            }
            HistoryData::Connections(..) => unreachable!("a grouped view"),
        }
    };
    let exe = Filter { dim: Dimension::Exe(Role::Process, ExeField::Executable), key: busiest.clone(), exclude: false };
    let domain = Filter { dim: Dimension::Domain, key: GroupKey::Int(2), exclude: false };
    let view = |name: &str| VIEWS.iter().position(|v| v.name == name && v.section != "Parent" && v.section != "Grandparent").expect("view");
    let window = |label: &str| WINDOWS.iter().position(|w| w.label == label).expect("window");
    println!("filtered (raw rows), busiest executable {busiest:?}:");
    let mut filtered = Vec::new();
    for (what, v, f) in [
        ("executable > domains", view("Domain"), vec![exe.clone()]),
        ("executable > remote ports", view("Remote port"), vec![exe.clone()]),
        ("domain > executables", view("Executable"), vec![domain.clone()]),
        ("executable > connections", view("Connections"), vec![exe.clone()]),
    ] {
        for label in ["all", "1 day", "7 days", "1 hour"] {
            let (t, n) = time(&mut source, v, window(label), &f, now, args.history.repeat);
            println!("  {what:<28} {label:<8} p50 {:>8.1}  p95 {:>8.1}  rows {n}", generate::percentile(&t, 0.5), generate::percentile(&t, 0.95));
            filtered.extend(t);
        }
    }
    filtered.sort_by(f64::total_cmp);
    println!("filtered: p50 {:.1}  p95 {:.1}  max {:.1}", generate::percentile(&filtered, 0.5), generate::percentile(&filtered, 0.95), generate::percentile(&filtered, 1.0));
}
