//! The history, read on a few threads of their own, each with its own read-only
//! connection: requests never wait for SQLite on the server's thread, a query that runs
//! too long is interrupted, and too many queued queries are refused instead of piling
//! up.
//!
//! A connection is opened when the database appears, reopened when the daemon replaces
//! the file (or starts writing to one that was opened as an immutable snapshot), and
//! every failure is turned into a sentence for the page.
use picosnitch_store::{QueryInterrupt, Store, StoreError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a query has no answer, worded for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No database yet; the daemon creates it.
    Missing(String),
    Permission(String),
    /// Another program holds a lock that keeps readers out.
    Locked(String),
    /// Took longer than the limit and was stopped.
    TooSlow(String),
    /// Too many queries waiting.
    Busy(String),
    Failed(String),
}

impl Problem {
    pub fn message(&self) -> &str {
        match self {
            Problem::Missing(m) | Problem::Permission(m) | Problem::Locked(m) | Problem::TooSlow(m) | Problem::Busy(m) | Problem::Failed(m) => m,
        }
    }

    /// The stable name the page acts on.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Missing(_) => "database-missing",
            Problem::Permission(_) => "database-permission",
            Problem::Locked(_) => "database-locked",
            Problem::TooSlow(_) => "query-too-slow",
            Problem::Busy(_) => "busy",
            Problem::Failed(_) => "database-error",
        }
    }

    /// 503 for what passes by itself (or once the daemon runs), 500 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            Problem::Failed(_) => 500,
            _ => 503,
        }
    }
}

pub fn missing(path: &Path) -> Problem {
    Problem::Missing(format!(
        "No history yet: {} does not exist. The daemon creates it when it starts: run `sudo picosnitch daemon` or `systemctl start picosnitch`. The page retries by itself.",
        path.display()
    ))
}

pub fn permission(path: &Path, group: Option<String>) -> Problem {
    Problem::Permission(match group.as_deref() {
        Some(g) if g != "root" => format!(
            "Permission denied reading {}: members of the `{g}` group may read the history. Run the web UI as a member of that group (or as root with `--user NAME` naming one).",
            path.display()
        ),
        _ => format!(
            "Permission denied reading {}: only root may read it. Set `group = \"picosnitch\"` under [data] in /etc/picosnitch/config.toml to share the history with that group, and run the web UI as a member.",
            path.display()
        ),
    })
}

/// Turns a store error into the page's sentence.
pub fn classify(path: &Path, e: StoreError) -> Problem {
    if e.is_locked() {
        return Problem::Locked(format!(
            "The database {} is locked by another program (an exclusive lock keeps readers out); the page retries by itself.",
            path.display()
        ));
    }
    if e.is_permission() {
        return permission(path, picosnitch_feed::owning_group(path));
    }
    match e {
        StoreError::Interrupted { .. } => Problem::TooSlow(format!("the query took longer than {} s and was stopped: choose a shorter time range or a narrower filter", QUERY_LIMIT.as_secs())),
        other => Problem::Failed(other.to_string()),
    }
}

/// A query stops after this long.
pub const QUERY_LIMIT: Duration = Duration::from_secs(20);

/// How long a reader waits for a lock before saying the database is locked.
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// A read-only connection that follows the file.
pub struct Reader {
    path: PathBuf,
    store: Option<(Store, (u64, u64))>,
}

impl Reader {
    pub fn new(path: PathBuf) -> Reader {
        Reader { path, store: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn store(&mut self) -> Result<&Store, Problem> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.store = None;
                return Err(missing(&self.path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(permission(&self.path, None)),
            Err(e) => return Err(Problem::Failed(format!("reading {}: {e}", self.path.display()))),
        };
        let identity = (meta.dev(), meta.ino());
        let writer_appeared = || PathBuf::from(format!("{}-wal", self.path.display())).exists();
        if self.store.as_ref().is_some_and(|(s, _)| s.is_snapshot()) && writer_appeared() {
            self.store = None;
        }
        if self.store.as_ref().is_none_or(|(_, id)| *id != identity) {
            self.store = None;
            if let Err(e) = std::fs::File::open(&self.path) {
                return Err(if e.kind() == std::io::ErrorKind::PermissionDenied {
                    permission(&self.path, picosnitch_feed::owning_group(&self.path))
                } else {
                    Problem::Failed(format!("opening {}: {e}", self.path.display()))
                });
            }
            let store = Store::open_read_only(&self.path).map_err(|e| classify(&self.path, e))?;
            // Scans of many rows (filtered views) read through a mapping of the file.
            if let Err(e) = store.set_mmap_size(1 << 40) {
                tracing::debug!(error = %e, "no memory-mapped reads");
            }
            store.set_busy_timeout(BUSY_WAIT).map_err(|e| classify(&self.path, e))?;
            self.store = Some((store, identity));
        }
        match &self.store {
            Some((s, _)) => Ok(s),
            None => Err(missing(&self.path)),
        }
    }
}

type Job = Box<dyn FnOnce(&mut Reader) + Send>;

/// The query threads, shared by every request.
#[derive(Clone)]
pub struct Database {
    jobs: async_channel::Sender<Job>,
    path: PathBuf,
}

impl Database {
    /// Starts `threads` readers of `path`, with at most `queue` queries waiting.
    pub fn start(path: PathBuf, threads: usize, queue: usize) -> Database {
        let (jobs, rx) = async_channel::bounded::<Job>(queue.max(1));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let mut reader = Reader::new(path.clone());
            let spawned = std::thread::Builder::new().name(format!("webui-db-{i}")).spawn(move || {
                while let Ok(job) = rx.recv_blocking() {
                    // A bug in one query must not take the thread (and every later
                    // request) with it: the request is told, the thread goes on.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut reader)));
                    if ran.is_err() {
                        tracing::error!("a query panicked; its request was answered with an error");
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a query thread");
            }
        }
        Database { jobs, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `query` on a query thread; stops it after [`QUERY_LIMIT`].
    pub async fn query<T, F>(&self, query: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = async_channel::bounded(1);
        // Where the running query's interrupt handle is, for the timeout below.
        let handle: Arc<Mutex<Option<QueryInterrupt>>> = Arc::new(Mutex::new(None));
        let slot = handle.clone();
        let job: Job = Box::new(move |reader| {
            // The request gave up while this waited in the queue: nothing to do.
            if tx.is_closed() {
                return;
            }
            let path = reader.path().to_path_buf();
            let result = reader.store().and_then(|store| {
                if let Ok(mut s) = slot.lock() {
                    *s = Some(store.interrupt_handle());
                }
                let r = query(store).map_err(|e| classify(&path, e));
                // Taken back under the lock: a late interrupt must not reach the next
                // query on this connection.
                if let Ok(mut s) = slot.lock() {
                    *s = None;
                }
                r
            });
            let _ = tx.send_blocking(result);
        });
        if self.jobs.try_send(job).is_err() {
            return Err(Problem::Busy("too many queries are waiting; try again in a moment".into()));
        }
        let waited = futures_lite::future::or(async { Some(rx.recv().await) }, async {
            async_io::Timer::after(QUERY_LIMIT).await;
            None
        })
        .await;
        match waited {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Problem::Failed("the query failed inside the web UI (a bug: its log says more)".into())),
            None => {
                if let Ok(s) = handle.lock() {
                    if let Some(i) = s.as_ref() {
                        i.interrupt();
                    }
                }
                Err(Problem::TooSlow(format!(
                    "the query took longer than {} s and was stopped: choose a shorter time range or a narrower filter",
                    QUERY_LIMIT.as_secs()
                )))
            }
        }
    }
}
