//! Measures the remote copy against a throwaway PostgreSQL on loopback (started here,
//! removed at the end): how many rows per second the delivery loop moves from a full
//! spool to the server, and how long the spool of a 30 s outage takes to drain once
//! the server is back.
//!
//! ```sh
//! cargo run --release -p picosnitch-remote --example remote_bench -- [--rows 200000] [--rate 1000] [--outage 30] [--tls]
//! ```
//!
//! As root the server runs as the `postgres` account; otherwise as the current user.
//!
//! `--rows`: rows in the throughput phase; `--rate`: rows per second recorded during
//! the outage (the daemon at 1,000 new connections/s writes about that many); `--tls`:
//! both phases over TLS with the certificate verified. Batches are shaped like the
//! writer's: one per write period per 1,000 rows, with a few dozen executables, a
//! domain, and a new remote address for every row (the interning worst case).
use async_io::Timer;
use picosnitch_config::TlsMode;
use picosnitch_ipc::rows::{PackedRow, RowBatch};
use picosnitch_ipc::status::RemoteStatus;
use picosnitch_remote::drain::{DirectConnector, Drain, Step};
use picosnitch_remote::schema::{setup_sql, Tables};
use picosnitch_remote::tls::Tls;
use picosnitch_remote::Settings;
use picosnitch_spool::{Appended, Appender};
use picosnitch_store::ExeRecord;
use picosnitch_testpg::{Options, Postgres};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

const DB: &str = "picosnitch";
const USER: &str = "appender";
const PASSWORD: &str = "bench password";
/// Rows per batch: the primary splits a period's rows into batches that fit a link
/// message (60 KiB), which is about this many.
const BATCH_ROWS: usize = 1000;

struct Args {
    rows: usize,
    rate: usize,
    outage: u64,
    tls: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args { rows: 200_000, rate: 1000, outage: 30, tls: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next().and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a number"))
        };
        match flag.as_str() {
            "--rows" => a.rows = num("--rows")? as usize,
            "--rate" => a.rate = num("--rate")? as usize,
            "--outage" => a.outage = num("--outage")?,
            "--tls" => a.tls = true,
            other => return Err(format!("unknown argument {other:?}; see the example's header for its options")),
        }
    }
    Ok(a)
}

/// `n` rows of write period `seq`, shaped like the writer's batches.
fn batch(seq: u64, n: usize) -> RowBatch {
    let mut b = RowBatch::new("bench-primary".into(), seq);
    b.exes.push(ExeRecord::default());
    for i in 0..40u64 {
        // A few executables are new in each period (a command line with its number).
        let cmdline = if i < 4 { format!("/usr/bin/prog{i} --job {seq}") } else { format!("/usr/bin/prog{i} --serve") };
        b.exes.push(ExeRecord { exe: format!("/usr/bin/prog{i}"), name: format!("prog{i}"), cmdline, sha256: format!("{:064x}", i + 1) });
    }
    b.texts = vec![String::new(), "192.168.1.10".into(), "example.org".into()];
    for i in 0..n {
        b.texts.push(format!("10.{}.{}.{}", seq % 256, (i / 256) % 256, i % 256));
        b.rows.push(PackedRow {
            contime: 1_700_000_000 + seq as i64 * 10,
            send: 300 + i as u64,
            recv: 5000 + i as u64,
            events: 1,
            exe: 1 + (i % 40) as u32,
            pexe: 5,
            gpexe: 6,
            uid: 1000,
            family: 2,
            protocol: 6,
            lport: 30000 + (i % 30000) as u16,
            rport: 443,
            laddr: 1,
            raddr: 3 + i as u32,
            domain: if i % 4 == 0 { 2 } else { 0 },
            netns: 4_026_531_840,
        });
    }
    b
}

fn spool(a: &mut Appender, b: &RowBatch) -> Result<(), String> {
    let bytes = postcard::to_allocvec(b).map_err(|e| e.to_string())?;
    match a.append(&bytes).map_err(|e| e.to_string())? {
        Appended::Stored { .. } => Ok(()),
        Appended::Full { .. } => Err("the spool is full: raise its limit".into()),
    }
}

fn settings(pg: &Postgres, tls: bool) -> Result<Settings, String> {
    let tls = if tls { Tls::load(TlsMode::VerifyFull, &pg.ca_file()) } else { Tls::load(TlsMode::Disable, Path::new("")) }
        .map_err(|e| e.to_string())?;
    Ok(Settings {
        host: "localhost".into(),
        port: pg.port,
        user: USER.into(),
        database: DB.into(),
        password: Some(PASSWORD.into()),
        tables: Tables::new(""),
        tls,
        machine: "bench".into(),
    })
}

/// Steps the drain until `rows` rows are delivered; the time it took, and the time
/// until it was (again) connected.
async fn drain_until(
    drain: &mut Drain<DirectConnector>,
    status: &RefCell<RemoteStatus>,
    rows: u64,
    limit: Duration,
) -> Result<(Duration, Duration), String> {
    let start = Instant::now();
    let mut connected = None;
    while status.borrow().rows_delivered < rows {
        if start.elapsed() > limit {
            return Err(format!("not drained within {limit:?}: {:#?}", status.borrow()));
        }
        let step_began = start.elapsed();
        match drain.step().await {
            Step::Progress => {}
            Step::Idle => {
                Timer::after(Duration::from_millis(10)).await;
            }
            Step::Waiting(at) => {
                Timer::at(at).await;
            }
        }
        // The step that logged in also delivered a group: the reconnection is when
        // it began.
        if connected.is_none() && status.borrow().connected {
            connected = Some(step_began);
        }
    }
    let took = start.elapsed();
    Ok((took, connected.unwrap_or(took)))
}

fn main() -> Result<(), String> {
    let a = args()?;
    let mut pg = Postgres::start(Options { tls: a.tls })?;
    pg.psql("postgres", &format!("CREATE DATABASE {DB} ENCODING 'UTF8'"))?;
    pg.psql("postgres", &format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"))?;
    pg.psql(DB, &setup_sql(&Tables::new(""), USER, DB))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let spool_dir = dir.path().join("spool");
    let mut appender = Appender::open(&spool_dir, 4 << 30).map_err(|e| e.to_string())?;
    let status = Rc::new(RefCell::new(RemoteStatus::default()));
    let connector = DirectConnector { host: "localhost".into(), port: pg.port };
    let mut drain = Drain::new(settings(&pg, a.tls)?, connector, &spool_dir, Rc::clone(&status));
    let transport = if a.tls { "TLS (verify-full)" } else { "plain TCP" };

    // 1. Throughput: a spool holding `rows` rows, delivered as fast as it goes.
    let mut seq = 0;
    let mut spooled = 0u64;
    while (spooled as usize) < a.rows {
        seq += 1;
        let n = BATCH_ROWS.min(a.rows - spooled as usize);
        spool(&mut appender, &batch(seq, n))?;
        spooled += n as u64;
    }
    let (took, _) = smol::block_on(drain_until(&mut drain, &status, spooled, Duration::from_secs(600)))?;
    println!(
        "throughput: {spooled} rows ({seq} batches of {BATCH_ROWS}) delivered over {transport} in {:.2} s: {:.0} rows/s",
        took.as_secs_f64(),
        spooled as f64 / took.as_secs_f64()
    );

    // 2. An outage: the server down for `outage` s while `rate` rows/s are spooled
    // (one batch a second), then back; how long until the spool is empty.
    pg.stop();
    let before = status.borrow().rows_delivered;
    let outage_start = Instant::now();
    let mut outage_rows = 0u64;
    smol::block_on(futures_lite::future::or(
        async {
            // The loop keeps trying (and failing) through the outage, as in the daemon.
            drain.run().await;
            Ok::<(), String>(())
        },
        async {
            for s in 0..a.outage {
                Timer::at(outage_start + Duration::from_secs(s)).await;
                seq += 1;
                spool(&mut appender, &batch(seq, a.rate))?;
                outage_rows += a.rate as u64;
            }
            Timer::at(outage_start + Duration::from_secs(a.outage)).await;
            Ok(())
        },
    ))?;
    let errors = status.borrow().last_error.clone().unwrap_or_default();
    pg.restart()?;
    let (took, reconnected) = smol::block_on(drain_until(&mut drain, &status, before + outage_rows, Duration::from_secs(600)))?;
    println!(
        "outage: {} s at {} rows/s, {outage_rows} rows spooled (the loop said: {errors})\n  drained {:.2} s after the server was back: reconnected after {:.2} s (the retry wait, at most 10 s), then delivered in {:.2} s",
        a.outage,
        a.rate,
        took.as_secs_f64(),
        reconnected.as_secs_f64(),
        (took - reconnected).as_secs_f64()
    );
    let remote: u64 = pg.psql(DB, "SELECT count(*) FROM connections")?.parse().map_err(|e| format!("count: {e}"))?;
    if remote != spooled + outage_rows {
        return Err(format!("the server holds {remote} rows, {} were spooled", spooled + outage_rows));
    }
    println!("check: the server holds exactly the {remote} rows spooled");
    Ok(())
}
