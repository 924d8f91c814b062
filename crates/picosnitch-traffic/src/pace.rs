//! Spreading a transfer over time: a fixed chunk per step and a fixed time between steps.
//! The benchmark needs it twice: a bulk transfer that lasts a few seconds (tools that
//! sample once a second never see one that ends in ten milliseconds, and real downloads
//! are not that short), and a slow drip of small writes over a minute.
use std::time::{Duration, Instant};

/// Chunk size when a transfer is not paced: big enough that the number of system calls
/// does not matter, small enough that no buffer has to hold the whole transfer.
pub const DEFAULT_CHUNK: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, Default, clap::Args)]
pub struct PaceArgs {
    /// Bytes per write of a TCP transfer (datagrams keep their --size).
    #[arg(long)]
    pub chunk: Option<usize>,
    /// Waits this long between writes or datagrams (default: no wait).
    #[arg(long)]
    pub every_ms: Option<u64>,
}

/// A schedule: step `i` is due `i * every` after the start, so a slow step does not
/// lower the average rate.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    chunk: usize,
    every: Option<Duration>,
    start: Instant,
}

impl Pace {
    pub fn new(args: PaceArgs) -> Pace {
        Pace {
            chunk: args.chunk.filter(|c| *c > 0).unwrap_or(DEFAULT_CHUNK),
            every: args.every_ms.filter(|ms| *ms > 0).map(Duration::from_millis),
            start: Instant::now(),
        }
    }

    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Starts the schedule now (each connection of a repeated client paces on its own).
    pub fn restart(&mut self) {
        self.start = Instant::now();
    }

    /// Sleeps until step `i` is due; returns at once when not paced.
    pub fn wait(&self, i: usize) {
        let Some(every) = self.every else { return };
        let due = self.start + every.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX));
        if let Some(left) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
    }
}
