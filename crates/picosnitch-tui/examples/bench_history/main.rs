//! Benchmark of the history browser's queries on a big history.
//!
//!     cargo run --release -p picosnitch-tui --example bench_history -- [--rows N] [--days D] [--db PATH] [--repeat N] [--regenerate]
//!
//! Builds (or reuses) a database of N rows over D days through the store's insert path,
//! then times what `picosnitch tui` does when it opens and when the user switches view
//! or time window, per view and window, and reports p50/p95.
mod generate;

use picosnitch_store::{Dimension, ExeField, HistoryQuery, Role, Store, TimeRange};
use std::path::PathBuf;
use std::time::Instant;

struct Args {
    rows: u64,
    days: u64,
    db: PathBuf,
    repeat: usize,
    regenerate: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { rows: 10_000_000, days: 30, db: PathBuf::from("/tmp/picosnitch-bench.db"), repeat: 10, regenerate: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value()?.parse().map_err(|e| format!("--rows: {e}"))?,
            "--days" => a.days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--db" => a.db = PathBuf::from(value()?),
            "--repeat" => a.repeat = value()?.parse().map_err(|e| format!("--repeat: {e}"))?,
            "--regenerate" => a.regenerate = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1);
    sorted[i]
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_history: {e}");
            std::process::exit(2);
        }
    };
    if args.regenerate || !args.db.exists() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", args.db.display()));
        }
        eprintln!("generating {} rows over {} days into {}", args.rows, args.days, args.db.display());
        let (mut store, _) = Store::open(&args.db).expect("open for writing");
        let shape = generate::Shape { rows: args.rows, days: args.days, end: picosnitch_store::unix_now(), seed: 42 };
        let secs = generate::generate(&mut store, &shape).expect("generate");
        eprintln!("generated in {secs:.0} s ({:.0} rows/s)", args.rows as f64 / secs);
    }
    let store = Store::open_read_only(&args.db).expect("open read-only");
    let (_, newest) = store.history_bounds().expect("bounds").expect("empty database");
    drop(store);
    let mut dims: Vec<(String, Dimension)> = Vec::new();
    for (rn, role) in [("process", Role::Process), ("parent", Role::Parent), ("grandparent", Role::Grandparent)] {
        for (f, field) in [("exe", ExeField::Executable), ("name", ExeField::Name), ("cmdline", ExeField::Command), ("sha256", ExeField::Sha256)] {
            dims.push((format!("{rn} {f}"), Dimension::Exe(role, field)));
        }
    }
    for (n, d) in [
        ("user", Dimension::User),
        ("local port", Dimension::LocalPort),
        ("remote port", Dimension::RemotePort),
        ("local address", Dimension::LocalAddress),
        ("remote address", Dimension::RemoteAddress),
        ("domain", Dimension::Domain),
        ("time", Dimension::Time { width: 3_600 }),
    ] {
        dims.push((n.into(), d));
    }
    let windows: [(&str, i64); 14] = [
        ("all", 0),
        ("1 min", 60),
        ("5 min", 300),
        ("15 min", 900),
        ("30 min", 1_800),
        ("1 h", 3_600),
        ("3 h", 10_800),
        ("6 h", 21_600),
        ("12 h", 43_200),
        ("1 d", 86_400),
        ("3 d", 259_200),
        ("7 d", 604_800),
        ("30 d", 2_592_000),
        ("365 d", 31_536_000),
    ];
    let store = Store::open_read_only(&args.db).expect("open read-only");
    let mut all = Vec::new();
    println!("{:<22} {:<7} {:>9} {:>9} {:>7}", "view", "window", "p50 ms", "p95 ms", "rows");
    for (name, dim) in &dims {
        for (wname, secs) in windows {
            let range = if secs == 0 { TimeRange::default() } else { TimeRange { start: Some(newest - secs), end: None } };
            let q = HistoryQuery { range, group: *dim, filters: vec![] };
            let mut t = Vec::new();
            let mut n = 0;
            for _ in 0..args.repeat {
                let s = Instant::now();
                n = store.history(&q).expect("query").rows.len();
                t.push(s.elapsed().as_secs_f64() * 1e3);
            }
            t.sort_by(f64::total_cmp);
            println!("{name:<22} {wname:<7} {:>9.1} {:>9.1} {n:>7}", percentile(&t, 0.5), percentile(&t, 0.95));
            all.extend(t);
        }
    }
    all.sort_by(f64::total_cmp);
    println!("all views and windows: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms", percentile(&all, 0.5), percentile(&all, 0.95), percentile(&all, 1.0));
}
