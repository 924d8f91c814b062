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
}

impl Report {
    pub fn print(&self) {
        let line = serde_json::json!({
            "sent": self.sent,
            "received": self.received,
            "sent_packets": self.sent_packets,
            "received_packets": self.received_packets,
            // The first few only: a burst of thousands would make the line huge.
            "local_ports": self.local_ports.iter().take(32).collect::<Vec<_>>(),
            "connections": self.local_ports.len(),
            "pid": std::process::id(),
        });
        println!("{line}");
    }
}

/// Tells the caller where a server listens, before it starts serving.
pub fn announce_port(port: u16) {
    println!("{}", serde_json::json!({ "listening": port }));
    let _ = std::io::stdout().flush();
}
