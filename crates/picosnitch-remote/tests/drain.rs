//! The delivery loop from a real spool to a real server, through an outage.
mod common;

use async_io::Timer;
use common::*;
use picosnitch_ipc::rows::RowBatch;
use picosnitch_ipc::status::RemoteStatus;
use picosnitch_remote::drain::{DirectConnector, Drain};
use picosnitch_spool::Appender;
use picosnitch_testpg::{start_or_skip, Options};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn spool(a: &mut Appender, b: &RowBatch) {
    let bytes = postcard::to_allocvec(b).expect("encode");
    assert!(matches!(a.append(&bytes).expect("append"), picosnitch_spool::Appended::Stored { .. }));
}

/// Runs the drain until `done` holds for the status, or panics after `limit`.
async fn until(status: &Rc<RefCell<RemoteStatus>>, limit: Duration, what: &str, done: impl Fn(&RemoteStatus) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(&status.borrow()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:#?}", status.borrow());
        Timer::after(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_spool_drains_exactly_once_through_an_outage() {
    let Some(mut pg) = start_or_skip("the_spool_drains_exactly_once_through_an_outage", Options { tls: false }) else { return };
    setup(&pg, "", "appender");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut appender = Appender::open(&dir.path().join("spool"), 64 << 20).expect("spool").with_segment_max(20_000);
    let status = Rc::new(RefCell::new(RemoteStatus::default()));
    let connector = DirectConnector { host: "localhost".into(), port: pg.port };
    let mut drain = Drain::new(settings(&pg, "", "appender", no_tls()), connector, &dir.path().join("spool"), Rc::clone(&status));
    let mut all: Vec<RowBatch> = Vec::new();
    let mut seq = 0;
    let mut next = |n: usize| {
        seq += 1;
        batch("primary-9-9", seq, n)
    };
    smol::block_on(futures_lite::future::or(
        async {
            drain.run().await;
        },
        async {
            for _ in 0..5 {
                let b = next(20);
                spool(&mut appender, &b);
                all.push(b);
            }
            until(&status, Duration::from_secs(30), "the first batches", |s| s.batches_delivered == 5).await;
            assert!(status.borrow().connected);
            pg.stop();
            // Batches keep coming while the server is down (the writer never waits).
            for _ in 0..20 {
                let b = next(30);
                spool(&mut appender, &b);
                all.push(b);
                Timer::after(Duration::from_millis(100)).await;
            }
            until(&status, Duration::from_secs(30), "the outage to show", |s| !s.connected && s.last_error.is_some()).await;
            let err = status.borrow().last_error.clone().unwrap_or_default();
            assert!(err.starts_with("cannot reach postgresql://appender@127.0.0.1") && err.contains("Connection refused"), "{err}");
            assert!(status.borrow().spool_bytes > 20_000, "the spool holds the batches");
            // A batch the server refuses (a row refers to an executable the batch lacks)
            // among good ones: found, counted, skipped; the good ones arrive.
            let mut bad = next(3);
            bad.rows[1].exe = 99;
            spool(&mut appender, &bad);
            for _ in 0..3 {
                let b = next(10);
                spool(&mut appender, &b);
                all.push(b);
            }
            pg.restart().expect("server back");
            let total = all.len() as u64;
            until(&status, Duration::from_secs(60), "the spool to drain", |s| s.batches_delivered == total && s.batches_rejected == 1).await;
            assert_eq!(status.borrow().rows_rejected, 3);
            assert!(status.borrow().last_error.is_none(), "{:?}", status.borrow().last_error);
            // Spooled twice (a writer that crashed before its acknowledgement): skipped.
            spool(&mut appender, &all[7].clone());
            until(&status, Duration::from_secs(30), "the duplicate", |s| s.batches_duplicate >= 1).await;
        },
    ));
    assert_eq!(arrived(&pg, ""), expected(&all), "every row exactly once, equal to what was spooled");
    let st = status.borrow();
    assert!(st.connects >= 2, "{st:#?}");
    assert_eq!(st.rows_delivered, all.iter().map(|b| b.rows.len() as u64).sum::<u64>());
    assert!(st.spool_segments <= 1, "delivered segments are removed: {st:#?}");
}
