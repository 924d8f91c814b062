//! The publishing side: a set of subscribers, each with a bounded queue of lines.
use crate::update::FlowUpdate;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How many subscribers and how much backlog each may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedLimits {
    /// Connections beyond this get one error line and are closed.
    pub max_subscribers: usize,
    /// Lines queued for one subscriber beyond what its socket buffer holds; a subscriber
    /// that falls this far behind is dropped.
    pub queue_lines: usize,
}

impl Default for FeedLimits {
    fn default() -> Self {
        // 32 subscribers as picosnitch 2.x; 4096 lines is a few seconds of a busy
        // machine, and lines are shared between subscribers, not copied.
        FeedLimits { max_subscribers: 32, queue_lines: 4096 }
    }
}

/// Counters for `picosnitch status` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Subscribers connected now.
    pub subscribers: usize,
    /// Updates published (serialized at least once because someone listened).
    pub published: u64,
    /// Subscribers dropped because their queue was full.
    pub dropped_slow: u64,
    /// Connections refused because `max_subscribers` were connected.
    pub refused: u64,
}

pub(crate) type Line = Arc<[u8]>;

pub(crate) struct Subscriber {
    pub id: u64,
    pub lines: async_channel::Sender<Line>,
    /// Dropping this sender tells the subscriber's task to close the socket at once,
    /// even while it is stuck writing to a peer that stopped reading.
    pub _kick: async_channel::Sender<()>,
}

pub(crate) struct Shared {
    pub limits: FeedLimits,
    subscribers: Mutex<Vec<Subscriber>>,
    /// Mirrors subscribers.len(), so publishing with nobody listening costs no lock
    /// and no serialization.
    count: AtomicUsize,
    next_id: AtomicU64,
    published: AtomicU64,
    dropped_slow: AtomicU64,
    refused: AtomicU64,
    closed: AtomicBool,
    /// Closed by [`FeedHub::close`], which ends the accept loop.
    pub shutdown: async_channel::Sender<()>,
}

/// The daemon's handle for publishing; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct FeedHub {
    pub(crate) shared: Arc<Shared>,
}

impl FeedHub {
    pub(crate) fn new(limits: FeedLimits) -> (FeedHub, async_channel::Receiver<()>) {
        let (shutdown, shutdown_rx) = async_channel::bounded(1);
        let shared = Shared {
            limits,
            subscribers: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            published: AtomicU64::new(0),
            dropped_slow: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            shutdown,
        };
        (FeedHub { shared: Arc::new(shared) }, shutdown_rx)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Subscriber>> {
        // A panic while holding the lock leaves a plain Vec behind, still usable.
        self.shared.subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether anyone listens: lets the publisher skip building updates nobody reads.
    pub fn has_subscribers(&self) -> bool {
        self.shared.count.load(Ordering::Relaxed) > 0
    }

    /// Sends `update` to every subscriber. Never waits: the line is serialized once and
    /// offered to each subscriber's queue; a subscriber whose queue is full is dropped
    /// (its socket closed) and counted. The lock is held only to push into the queues.
    pub fn publish(&self, update: &FlowUpdate) {
        if self.shared.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.publish_line(Arc::from(update.to_line()));
    }

    pub(crate) fn publish_line(&self, line: Line) {
        let mut subs = self.lock();
        let before = subs.len();
        let mut slow = 0u64;
        subs.retain(|s| match s.lines.try_send(line.clone()) {
            Ok(()) => true,
            Err(async_channel::TrySendError::Full(_)) => {
                slow += 1;
                tracing::warn!(subscriber = s.id, "live feed subscriber fell behind; dropped");
                false
            }
            // Its task ended (peer hung up) and will remove it; nothing to count.
            Err(async_channel::TrySendError::Closed(_)) => false,
        });
        if subs.len() != before {
            self.shared.count.store(subs.len(), Ordering::Relaxed);
        }
        drop(subs);
        self.shared.published.fetch_add(1, Ordering::Relaxed);
        self.shared.dropped_slow.fetch_add(slow, Ordering::Relaxed);
    }

    /// Adds a subscriber unless the limit is reached; `None` means refused (counted).
    pub(crate) fn subscribe(&self) -> Option<(u64, async_channel::Receiver<Line>, async_channel::Receiver<()>)> {
        let mut subs = self.lock();
        if self.shared.closed.load(Ordering::Relaxed) || subs.len() >= self.shared.limits.max_subscribers {
            drop(subs);
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (lines, lines_rx) = async_channel::bounded(self.shared.limits.queue_lines.max(1));
        let (kick, kick_rx) = async_channel::bounded(1);
        subs.push(Subscriber { id, lines, _kick: kick });
        self.shared.count.store(subs.len(), Ordering::Relaxed);
        Some((id, lines_rx, kick_rx))
    }

    /// Forgets a subscriber whose connection ended.
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut subs = self.lock();
        subs.retain(|s| s.id != id);
        self.shared.count.store(subs.len(), Ordering::Relaxed);
    }

    pub fn stats(&self) -> FeedStats {
        FeedStats {
            subscribers: self.shared.count.load(Ordering::Relaxed),
            published: self.shared.published.load(Ordering::Relaxed),
            dropped_slow: self.shared.dropped_slow.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
        }
    }

    /// Disconnects every subscriber (they read end-of-file: the daemon stopped) and
    /// ends [`crate::FeedServer::run`], which removes a socket file it created.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        let mut subs = self.lock();
        subs.clear();
        self.shared.count.store(0, Ordering::Relaxed);
        drop(subs);
        self.shared.shutdown.close();
    }
}
