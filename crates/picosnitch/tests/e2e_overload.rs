//! Overload: a flow the daemon cannot record is counted where `picosnitch status` shows
//! it. The monitor is stopped (SIGSTOP) while a burst of connections runs, so the
//! smallest ring buffer overflows: every flow missing from the history must be covered
//! by what the kernel counted as lost. (Until the kernel's counters became readable from
//! the confined monitor, each of them read 0 and such losses were silent.)
mod common;

use common::*;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 2000;

fn ring_full_flow(st: &serde_json::Value) -> u64 {
    st["monitor"]["kernel"]["ringbuf_full_flow"].as_u64().unwrap_or(0)
}

fn events_of(d: &Daemon, exe: &std::path::Path) -> i64 {
    rows_of(&d.db(), exe).iter().map(|r| r.events).sum()
}

#[test]
fn flows_lost_with_a_full_ring_are_counted() {
    if !root_or_skip("flows_lost_with_a_full_ring_are_counted") {
        return;
    }
    // 16 pages: 64 KiB, room for about 300 flow announcements.
    let d = Daemon::start("[monitoring]\nperf_ring_buffer_pages = 16\n");
    let before = d.wait_status("the first kernel counters", Duration::from_secs(30), |st| {
        st["monitor"]["kernel"]["ringbuf_full_flow"].is_u64()
    });
    let lost_before = ring_full_flow(&before);
    let server = Traffic::new("ovl-srv");
    let client = Traffic::new("ovl-cli");
    let n = CONNECTIONS.to_string();
    let srv = server.serve(&["tcp-server", "--accepts", &n, "--send", "10"]);
    let monitor = d.role_pid("monitor");
    // SAFETY: signalling the test daemon's own monitor process.
    assert_eq!(unsafe { libc::kill(monitor as i32, libc::SIGSTOP) }, 0, "stopping the monitor");
    let to = format!("127.0.0.1:{}", srv.port);
    let c = client.run(&["tcp-client", "--to", &to, "--send", "10", "--repeat", &n]);
    let s = srv.finish();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(monitor as i32, libc::SIGCONT) }, 0, "resuming the monitor");
    assert_eq!((c.sent, s.received), (10 * CONNECTIONS as i64, 10 * CONNECTIONS as i64), "the generators' own counts");

    // Settled: the history of both ends unchanged for 3 s (rows are written every second).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (-1, -1);
    let mut still_since = Instant::now();
    let recorded = loop {
        let now = (events_of(&d, &client.path), events_of(&d, &server.path));
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if now.0 + now.1 > 0 && still_since.elapsed() >= Duration::from_secs(3) {
            break now.0 + now.1;
        }
        assert!(Instant::now() < deadline, "the history kept changing for 60 s: {now:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let missing = 2 * CONNECTIONS as i64 - recorded;
    assert!(missing > 0, "{recorded} of {} flows recorded: a 64 KiB ring while the monitor was stopped should have lost some", 2 * CONNECTIONS);
    // The status is rewritten every 2 s; the counter covers the whole machine's losses.
    let st = d.wait_status("the kernel to count the lost announcements", Duration::from_secs(30), |st| {
        ring_full_flow(st).saturating_sub(lost_before) >= missing as u64
    });
    assert_eq!(st["monitor"]["counter_read_failures"], 0, "{:#}", st["monitor"]);

    let out = std::process::Command::new(DAEMON)
        .args(["status", "--config"])
        .arg(&d.config)
        .output()
        .expect("picosnitch status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kernel ringbuf_full_flow"), "the loss is shown in `picosnitch status`:\n{text}");
}
