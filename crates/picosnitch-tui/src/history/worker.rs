//! Queries run on their own thread against a read-only connection, so the screen
//! never waits for SQLite; a newer request interrupts the one running.
use crate::event_loop::Msg;
use jiff::tz::TimeZone;
use picosnitch_store::{ConnectionRecord, Filter, GroupKey, HistoryQuery, HistoryRow, QueryInterrupt, Store, StoreError, TimeRange};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum HistoryRequest {
    /// Grouped sums; with `local_days`, hour buckets of a Time view are summed into
    /// local calendar days.
    Group { query: HistoryQuery, local_days: bool },
    /// The newest `limit` connections behind the filters.
    Connections { range: TimeRange, filters: Vec<Filter>, limit: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub enum HistoryData {
    Rows(Vec<HistoryRow>),
    /// With VirusTotal's verdict on each sha256 that has one.
    Connections(Vec<ConnectionRecord>, std::collections::HashMap<String, String>),
}

/// Why there is no history to show, worded for the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryProblem {
    /// The database does not exist yet; it says who creates it.
    Missing(String),
    Permission(String),
    Failed(String),
}

impl HistoryProblem {
    pub fn describe(&self) -> &str {
        match self {
            HistoryProblem::Missing(m) | HistoryProblem::Permission(m) | HistoryProblem::Failed(m) => m,
        }
    }
}

#[derive(Debug)]
pub struct HistoryReply {
    pub generation: u64,
    pub result: Result<HistoryData, HistoryProblem>,
    pub elapsed: Duration,
    /// Oldest and newest connection time, to stop stepping back past the history.
    pub bounds: Option<(i64, i64)>,
}

/// The problem shown while the database file does not exist.
pub fn missing(path: &Path) -> HistoryProblem {
    HistoryProblem::Missing(format!(
        "No history yet: {} does not exist. The daemon creates it when it starts: run `sudo picosnitch daemon` or `systemctl start picosnitch`. This view retries every few seconds.",
        path.display()
    ))
}

/// The problem shown when this user may not read the database.
pub fn permission(path: &Path) -> HistoryProblem {
    let group = picosnitch_feed::owning_group(path);
    HistoryProblem::Permission(match group.as_deref() {
        Some(g) if g != "root" => format!(
            "Permission denied reading {}: members of the `{g}` group may read the history; join it (sudo usermod -aG {g} $USER, then log in again) or run as root.",
            path.display()
        ),
        _ => format!(
            "Permission denied reading {}: only root may read it. Set `group = \"picosnitch\"` under [data] in /etc/picosnitch/config.toml to share it with that group, or run as root.",
            path.display()
        ),
    })
}

/// Opens the database when it appears, reopens it when the daemon replaces the file,
/// and answers requests.
pub struct StoreSource {
    path: PathBuf,
    tz: TimeZone,
    store: Option<(Store, (u64, u64))>,
    /// Handed the interrupt handle of each connection opened.
    on_open: Box<dyn FnMut(QueryInterrupt) + Send>,
}

impl StoreSource {
    pub fn new(path: PathBuf, tz: TimeZone) -> StoreSource {
        StoreSource { path, tz, store: None, on_open: Box::new(|_| {}) }
    }

    fn store(&mut self) -> Result<&Store, HistoryProblem> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.store = None;
                return Err(missing(&self.path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(permission(&self.path)),
            Err(e) => return Err(HistoryProblem::Failed(format!("reading {}: {e}", self.path.display()))),
        };
        let identity = (meta.dev(), meta.ino());
        // Opened as immutable while no writer ran: once one runs, reopen to see its rows.
        let writer_appeared = || PathBuf::from(format!("{}-wal", self.path.display())).exists();
        if self.store.as_ref().is_some_and(|(s, _)| s.is_snapshot()) && writer_appeared() {
            self.store = None;
        }
        if self.store.as_ref().is_none_or(|(_, id)| *id != identity) {
            if let Err(e) = std::fs::File::open(&self.path) {
                return Err(if e.kind() == std::io::ErrorKind::PermissionDenied {
                    permission(&self.path)
                } else {
                    HistoryProblem::Failed(format!("opening {}: {e}", self.path.display()))
                });
            }
            let store = Store::open_read_only(&self.path).map_err(|e| HistoryProblem::Failed(e.to_string()))?;
            (self.on_open)(store.interrupt_handle());
            self.store = Some((store, identity));
        }
        match &self.store {
            Some((s, _)) => Ok(s),
            None => Err(missing(&self.path)),
        }
    }

    /// Runs one request.
    pub fn run(&mut self, request: &HistoryRequest) -> Result<Answer, RunFailure> {
        let tz = self.tz.clone();
        let store = self.store().map_err(RunFailure::Problem)?;
        let fail = |e: StoreError| match e {
            StoreError::Interrupted { .. } => RunFailure::Interrupted,
            other => RunFailure::Problem(HistoryProblem::Failed(other.to_string())),
        };
        let bounds = store.history_bounds().map_err(fail)?;
        let data = match request {
            HistoryRequest::Group { query, local_days } => {
                let rows = store.history(query).map_err(fail)?.rows;
                HistoryData::Rows(if *local_days { by_local_day(rows, &tz) } else { rows })
            }
            HistoryRequest::Connections { range, filters, limit } => {
                let rows = store.history_connections(*range, filters, *limit).map_err(fail)?;
                let shas = rows.iter().flat_map(|r| [r.exe.sha256.as_str(), r.pexe.sha256.as_str(), r.gpexe.sha256.as_str()]);
                let verdicts = store.verdict_summaries(shas).map_err(fail)?;
                HistoryData::Connections(rows, verdicts)
            }
        };
        Ok(Answer { data, bounds })
    }
}

/// What a request found, and the history's oldest and newest connection time.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub data: HistoryData,
    pub bounds: Option<(i64, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunFailure {
    /// A newer request interrupted it.
    Interrupted,
    Problem(HistoryProblem),
}

/// Sums hour rows into the local day each hour starts in.
fn by_local_day(rows: Vec<HistoryRow>, tz: &TimeZone) -> Vec<HistoryRow> {
    let mut days: BTreeMap<i64, HistoryRow> = BTreeMap::new();
    for r in rows {
        let GroupKey::Int(hour) = r.key else { continue };
        let day = jiff::Timestamp::from_second(hour)
            .ok()
            .and_then(|t| t.to_zoned_datetime(tz.clone()).start_of_day().ok())
            .map_or(hour - hour.rem_euclid(86_400), |z| z.timestamp().as_second());
        let d = days.entry(day).or_insert_with(|| HistoryRow { key: GroupKey::Int(day), label: String::new(), send: 0, recv: 0, events: 0 });
        d.send += r.send;
        d.recv += r.recv;
        d.events += r.events;
    }
    days.into_values().collect()
}

/// The UI's handle on the query thread.
pub struct Worker {
    requests: Sender<(u64, HistoryRequest)>,
    interrupt: Arc<Mutex<Option<QueryInterrupt>>>,
    busy: Arc<AtomicBool>,
}

impl Worker {
    pub fn spawn(path: PathBuf, tz: TimeZone, out: SyncSender<Msg>) -> Worker {
        let (requests, rx) = std::sync::mpsc::channel();
        let interrupt = Arc::new(Mutex::new(None));
        let busy = Arc::new(AtomicBool::new(false));
        let mut source = StoreSource::new(path, tz);
        let slot = interrupt.clone();
        source.on_open = Box::new(move |handle| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(handle);
            }
        });
        let flag = busy.clone();
        std::thread::spawn(move || serve(source, &rx, &out, &flag));
        Worker { requests, interrupt, busy }
    }

    /// Queues a request; a query still running for an older one is interrupted.
    pub fn submit(&self, generation: u64, request: HistoryRequest) {
        if self.busy.load(Ordering::Acquire) {
            if let Ok(guard) = self.interrupt.lock() {
                if let Some(i) = guard.as_ref() {
                    i.interrupt();
                }
            }
        }
        let _ = self.requests.send((generation, request));
    }
}

fn serve(mut source: StoreSource, rx: &Receiver<(u64, HistoryRequest)>, out: &SyncSender<Msg>, busy: &AtomicBool) {
    let Ok(mut next) = rx.recv() else { return };
    loop {
        // Only the newest request matters; older ones were for views already left.
        while let Ok(newer) = rx.try_recv() {
            next = newer;
        }
        let (generation, request) = &next;
        busy.store(true, Ordering::Release);
        let started = Instant::now();
        let outcome = source.run(request);
        busy.store(false, Ordering::Release);
        let result = match outcome {
            Ok(answer) => Some((Ok(answer.data), answer.bounds)),
            Err(RunFailure::Problem(problem)) => Some((Err(problem), None)),
            // Interrupted: a newer request is queued, or the interrupt was meant for a
            // query that had just finished; then this one runs again.
            Err(RunFailure::Interrupted) => None,
        };
        if let Some((result, bounds)) = result {
            let reply = HistoryReply { generation: *generation, result, elapsed: started.elapsed(), bounds };
            if out.send(Msg::History(reply)).is_err() {
                return;
            }
            match rx.recv() {
                Ok(r) => next = r,
                Err(_) => return,
            }
        } else {
            match rx.try_recv() {
                Ok(r) => next = r,
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return,
            }
        }
    }
}
