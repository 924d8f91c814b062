//! A thread that stays connected to the live feed: it reconnects when the daemon
//! restarts or drops us for falling behind, and says why when it cannot.
use crate::event_loop::Msg;
use picosnitch_feed::{ConnectError, FeedClient, FlowUpdate, ReadError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

/// Why there is no live data, in words for the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedProblem {
    /// No daemon (socket missing or nobody listening); says how to start one.
    NoDaemon(String),
    /// The socket exists but this user may not open it; says which group to join.
    Permission(String),
    /// The daemon turned us away (too many readers).
    Refused(String),
    /// The daemon speaks a newer format.
    Version(String),
    /// The daemon closed the feed: it stopped, or we fell behind.
    Closed,
    Failed(String),
}

impl FeedProblem {
    pub fn describe(&self) -> String {
        match self {
            FeedProblem::NoDaemon(m) | FeedProblem::Permission(m) | FeedProblem::Version(m) | FeedProblem::Failed(m) => m.clone(),
            FeedProblem::Refused(m) => format!("the daemon refused the live feed: {m}"),
            FeedProblem::Closed => "the daemon closed the live feed (it stopped or restarted); reconnecting".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    Connected,
    Update(Box<FlowUpdate>),
    Problem(FeedProblem),
}

fn classify(e: ConnectError) -> FeedProblem {
    let text = e.to_string();
    match e {
        ConnectError::NoDaemon { .. } => FeedProblem::NoDaemon(text),
        ConnectError::PermissionDenied { .. } => FeedProblem::Permission(text),
        ConnectError::Io { .. } => FeedProblem::Failed(text),
    }
}

/// How long to wait before connecting again after each kind of problem.
fn retry_after(p: &FeedProblem) -> Duration {
    match p {
        FeedProblem::Closed => Duration::from_millis(300),
        FeedProblem::NoDaemon(_) | FeedProblem::Failed(_) => Duration::from_secs(1),
        FeedProblem::Permission(_) | FeedProblem::Refused(_) => Duration::from_secs(2),
        FeedProblem::Version(_) => Duration::from_secs(10),
    }
}

/// Reads the feed at `path` into `tx` until `stop` is set or the receiver is gone.
/// When the UI cannot keep up, `tx` fills and this thread stops reading; the daemon
/// then drops us (it never waits for a reader) and we reconnect.
pub fn spawn(path: PathBuf, tx: SyncSender<Msg>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let send = |e: FeedEvent| tx.send(Msg::Feed(e)).is_ok();
        let pause = |d: Duration| {
            let until = std::time::Instant::now() + d;
            while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let problem = match FeedClient::connect(&path) {
                Err(e) => classify(e),
                Ok(mut client) => {
                    // A timeout lets the thread notice `stop` while the feed is quiet.
                    let _ = client.set_read_timeout(Some(Duration::from_millis(250)));
                    if !send(FeedEvent::Connected) {
                        return;
                    }
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        match client.next_update() {
                            Ok(Some(u)) => {
                                if !send(FeedEvent::Update(Box::new(u))) {
                                    return;
                                }
                            }
                            Ok(None) => break FeedProblem::Closed,
                            Err(ReadError::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                            Err(ReadError::Malformed(e)) => tracing::debug!(error = %e, "skipping a malformed live feed line"),
                            Err(ReadError::Refused(m)) => break FeedProblem::Refused(m),
                            Err(e @ ReadError::Version { .. }) => break FeedProblem::Version(e.to_string()),
                            Err(e @ ReadError::Io(_)) => break FeedProblem::Failed(e.to_string()),
                        }
                    }
                }
            };
            let wait = retry_after(&problem);
            if !send(FeedEvent::Problem(problem)) {
                return;
            }
            pause(wait);
        }
    })
}
