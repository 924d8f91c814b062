//! The one JSON line each run prints: its own application-level byte counts.
use std::io::Write;
use std::time::Duration;

/// Every blocking call gives up after this, so a test never hangs on a lost packet.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct Report {
    pub sent: u64,
    pub received: u64,
    pub sent_packets: u64,
    pub received_packets: u64,
    pub local_ports: Vec<u16>,
    /// Round-trip times of a request/response run, in the order they happened.
    pub round_trips: Vec<Duration>,
    /// From the start of the run to its end: benchmarks derive rates from it.
    pub elapsed: Duration,
}

impl Report {
    pub fn print(&self) {
        let mut line = serde_json::json!({
            "sent": self.sent,
            "received": self.received,
            "sent_packets": self.sent_packets,
            "received_packets": self.received_packets,
            // The first few only: a burst of thousands would make the line huge.
            "local_ports": self.local_ports.iter().take(32).collect::<Vec<_>>(),
            "connections": self.local_ports.len(),
            "pid": std::process::id(),
            "elapsed_seconds": self.elapsed.as_secs_f64(),
        });
        if !self.round_trips.is_empty() {
            line["round_trip_us"] = round_trip_summary(&self.round_trips);
        }
        println!("{line}");
    }
}

/// Percentiles of the round-trip times in microseconds (nearest rank).
fn round_trip_summary(times: &[Duration]) -> serde_json::Value {
    let mut us: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    us.sort_by(f64::total_cmp);
    let at = |p: f64| us[((p * (us.len() - 1) as f64).round() as usize).min(us.len() - 1)];
    serde_json::json!({
        "count": us.len(),
        "mean": us.iter().sum::<f64>() / us.len() as f64,
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": at(1.0),
    })
}

/// Tells the caller where a server listens, before it starts serving.
pub fn announce_port(port: u16) {
    println!("{}", serde_json::json!({ "listening": port }));
    let _ = std::io::stdout().flush();
}
