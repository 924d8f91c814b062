//! The live feed, read by one thread however many pages are open (the daemon serves a
//! bounded number of readers): recent updates with sequence numbers, for pages that
//! poll for what is new, and per-executable totals since the web UI started.
use picosnitch_feed::{ConnectError, Direction, FeedClient, FlowUpdate, ReadError, UpdateKind};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Updates kept for pages that poll; one that falls further behind is told how many it
/// missed.
pub const RECENT: usize = 2_000;
/// Executables tracked; beyond it the one seen longest ago is forgotten.
pub const PROCESSES: usize = 5_000;
/// Listening ports remembered per executable.
const PORTS: usize = 16;

/// The feed's state, worded for the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedStatus {
    /// `starting`, `connected`, `no-daemon`, `permission`, `refused`, `version`,
    /// `closed` or `failed`.
    pub state: &'static str,
    pub message: String,
}

/// One update as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveEvent {
    pub seq: u64,
    pub time: f64,
    pub kind: UpdateKind,
    pub flow: u64,
    pub pid: u32,
    pub uid: u32,
    pub exe: String,
    pub name: String,
    pub cmdline: String,
    pub pname: String,
    pub family: u16,
    pub protocol: u16,
    pub laddr: String,
    pub lport: u16,
    pub raddr: String,
    pub rport: u16,
    pub domain: String,
    pub direction: Option<Direction>,
    pub send: u64,
    pub recv: u64,
}

/// Per executable, since the web UI started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProcessSummary {
    pub exe: String,
    pub name: String,
    /// Flows opened.
    pub connections: u64,
    /// Flows open now (opened and not yet closed, as far as seen).
    pub open: u64,
    pub send: u64,
    pub recv: u64,
    /// Local ports of flows that came in (listening).
    pub ports: BTreeSet<u16>,
    pub last_seen: f64,
}

#[derive(Debug)]
struct State {
    status: FeedStatus,
    next_seq: u64,
    recent: VecDeque<LiveEvent>,
    processes: HashMap<(String, String), ProcessSummary>,
    /// Flows seen opening, so a close is counted once against `open`.
    open_flows: HashMap<u64, (String, String)>,
}

/// What `/api/live` answers.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSnapshot {
    pub status: FeedStatus,
    /// The newest sequence number; ask for `after` it next time.
    pub seq: u64,
    /// Updates after the one asked for, oldest first, at most the limit.
    pub events: Vec<LiveEvent>,
    /// Updates between `after` and the first of `events` that are no longer kept.
    pub missed: u64,
    pub processes: Vec<ProcessSummary>,
    pub process_count: usize,
}

#[derive(Clone)]
pub struct Live {
    state: Arc<Mutex<State>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            state: Arc::new(Mutex::new(State {
                status: FeedStatus { state: "starting", message: "connecting to the live feed".into() },
                next_seq: 1,
                recent: VecDeque::with_capacity(RECENT),
                processes: HashMap::new(),
                open_flows: HashMap::new(),
            })),
        }
    }
}

fn problem_of_connect(e: &ConnectError) -> FeedStatus {
    let state = match e {
        ConnectError::NoDaemon { .. } => "no-daemon",
        ConnectError::PermissionDenied { .. } => "permission",
        ConnectError::Io { .. } => "failed",
    };
    FeedStatus { state, message: e.to_string() }
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters, not broken invariants.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_status(&self, state: &'static str, message: String) {
        self.lock().status = FeedStatus { state, message };
    }

    /// Starts the thread that keeps reading `socket`, reconnecting when the daemon
    /// restarts or drops this reader.
    pub fn start(&self, socket: PathBuf) {
        let live = self.clone();
        let spawned = std::thread::Builder::new().name("webui-feed".into()).spawn(move || live.read_forever(&socket));
        if let Err(e) = spawned {
            self.set_status("failed", format!("cannot start the live feed reader: {e}"));
        }
    }

    fn read_forever(&self, socket: &std::path::Path) {
        loop {
            let wait = match FeedClient::connect(socket) {
                Err(e) => {
                    let status = problem_of_connect(&e);
                    let wait = if status.state == "no-daemon" { Duration::from_secs(1) } else { Duration::from_secs(2) };
                    self.lock().status = status;
                    wait
                }
                Ok(mut client) => {
                    self.set_status("connected", format!("reading the live feed at {}", socket.display()));
                    self.read(&mut client)
                }
            };
            std::thread::sleep(wait);
        }
    }

    /// Reads until the feed ends; returns how long to wait before reconnecting.
    fn read(&self, client: &mut FeedClient) -> Duration {
        loop {
            match client.next_update() {
                Ok(Some(u)) => self.record(&u),
                Ok(None) => {
                    self.set_status("closed", "the daemon closed the live feed (it stopped or restarted); reconnecting".into());
                    return Duration::from_millis(300);
                }
                Err(ReadError::Malformed(e)) => tracing::debug!(error = %e, "skipping a malformed live feed line"),
                Err(e @ ReadError::Refused(_)) => {
                    self.set_status("refused", e.to_string());
                    return Duration::from_secs(2);
                }
                Err(e @ ReadError::Version { .. }) => {
                    self.set_status("version", e.to_string());
                    return Duration::from_secs(10);
                }
                Err(e) => {
                    self.set_status("failed", e.to_string());
                    return Duration::from_secs(1);
                }
            }
        }
    }

    /// Adds one update (public for tests and for feeding it from elsewhere).
    pub fn record(&self, u: &FlowUpdate) {
        let mut s = self.lock();
        let seq = s.next_seq;
        s.next_seq += 1;
        let key = (u.exe.clone(), u.name.clone());
        if u.kind != UpdateKind::Exec && u.kind != UpdateKind::Unknown {
            if s.processes.len() >= PROCESSES && !s.processes.contains_key(&key) {
                let oldest = s.processes.iter().min_by(|a, b| a.1.last_seen.total_cmp(&b.1.last_seen)).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    s.processes.remove(&k);
                }
            }
            let opened = u.kind == UpdateKind::Open && s.open_flows.len() < 4 * PROCESSES && s.open_flows.insert(u.flow, key.clone()).is_none();
            let closed = u.kind == UpdateKind::Close && s.open_flows.remove(&u.flow).is_some();
            let p = s.processes.entry(key).or_insert_with(|| ProcessSummary { exe: u.exe.clone(), name: u.name.clone(), ..Default::default() });
            p.send = p.send.saturating_add(u.send);
            p.recv = p.recv.saturating_add(u.recv);
            p.last_seen = u.time;
            if u.kind == UpdateKind::Open {
                p.connections += 1;
            }
            if opened {
                p.open += 1;
            }
            if closed {
                p.open = p.open.saturating_sub(1);
            }
            if u.direction == Some(Direction::In) && u.lport != 0 && p.ports.len() < PORTS {
                p.ports.insert(u.lport);
            }
        }
        if s.recent.len() >= RECENT {
            s.recent.pop_front();
        }
        s.recent.push_back(LiveEvent {
            seq,
            time: u.time,
            kind: u.kind,
            flow: u.flow,
            pid: u.pid,
            uid: u.uid,
            exe: u.exe.clone(),
            name: u.name.clone(),
            cmdline: u.cmdline.clone(),
            pname: u.pname.clone(),
            family: u.family,
            protocol: u.protocol,
            laddr: u.laddr.clone(),
            lport: u.lport,
            raddr: u.raddr.clone(),
            rport: u.rport,
            domain: u.domain.clone(),
            direction: u.direction,
            send: u.send,
            recv: u.recv,
        });
    }

    /// Updates after `after` (at most `limit`) and the busiest `top` executables whose
    /// name, path or listening port contains `find` (any case): a quiet program the
    /// user looks for is found even when hundreds of busier ones are running.
    pub fn snapshot(&self, after: u64, limit: usize, top: usize, find: &str) -> LiveSnapshot {
        let s = self.lock();
        let newest = s.next_seq - 1;
        let skip = s.recent.iter().take_while(|e| e.seq <= after).count();
        let pending: Vec<&LiveEvent> = s.recent.iter().skip(skip).collect();
        // The newest `limit` of what is pending: a page far behind skips ahead.
        let from = pending.len().saturating_sub(limit);
        let events: Vec<LiveEvent> = pending[from..].iter().map(|e| (*e).clone()).collect();
        let first = events.first().map_or(newest + 1, |e| e.seq);
        let missed = first.saturating_sub(after.min(newest) + 1);
        let find = find.to_lowercase();
        let wanted = |p: &ProcessSummary| {
            find.is_empty()
                || p.exe.to_lowercase().contains(&find)
                || p.name.to_lowercase().contains(&find)
                || p.ports.iter().any(|port| port.to_string().contains(&find))
        };
        let mut processes: Vec<ProcessSummary> = s.processes.values().filter(|p| wanted(p)).cloned().collect();
        processes.sort_by(|a, b| (b.send + b.recv).cmp(&(a.send + a.recv)).then(b.connections.cmp(&a.connections)).then(a.exe.cmp(&b.exe)));
        let process_count = processes.len();
        processes.truncate(top);
        LiveSnapshot { status: s.status.clone(), seq: newest, events, missed, processes, process_count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(kind: UpdateKind, flow: u64, exe: &str, send: u64, recv: u64) -> FlowUpdate {
        FlowUpdate {
            v: 1,
            kind,
            flow,
            time: 100.0 + flow as f64,
            exe: exe.into(),
            name: exe.rsplit('/').next().unwrap_or("").into(),
            direction: Some(Direction::Out),
            send,
            recv,
            ..Default::default()
        }
    }

    #[test]
    fn per_executable_totals_and_polling_by_sequence() {
        let live = Live::default();
        live.record(&update(UpdateKind::Open, 1, "/usr/bin/curl", 10, 0));
        live.record(&update(UpdateKind::Bytes, 1, "/usr/bin/curl", 5, 700));
        live.record(&FlowUpdate { direction: Some(Direction::In), lport: 22, ..update(UpdateKind::Open, 2, "/usr/sbin/sshd", 0, 3) });
        live.record(&update(UpdateKind::Close, 1, "/usr/bin/curl", 0, 1));
        let snap = live.snapshot(0, 100, 10, "");
        assert_eq!((snap.seq, snap.events.len(), snap.missed), (4, 4, 0));
        let curl = &snap.processes[0];
        assert_eq!((curl.name.as_str(), curl.connections, curl.open, curl.send, curl.recv), ("curl", 1, 0, 15, 701));
        let sshd = &snap.processes[1];
        assert_eq!((sshd.open, sshd.ports.iter().copied().collect::<Vec<_>>()), (1, vec![22]));
        let later = live.snapshot(3, 100, 10, "");
        assert_eq!(later.events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4]);
        assert!(live.snapshot(4, 100, 10, "").events.is_empty());
        // Found by name or port even when busier ones take the `top` places.
        assert_eq!(live.snapshot(4, 100, 1, "").processes[0].name, "curl");
        assert_eq!(live.snapshot(4, 100, 1, "SSH").processes.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec!["sshd"]);
        assert_eq!(live.snapshot(4, 100, 1, "22").processes[0].name, "sshd");
        assert!(live.snapshot(4, 100, 1, "nothing").processes.is_empty());
    }

    #[test]
    fn a_page_far_behind_is_told_what_it_missed() {
        let live = Live::default();
        for i in 0..(RECENT as u64 + 500) {
            live.record(&update(UpdateKind::Bytes, i, "/usr/bin/x", 1, 1));
        }
        let snap = live.snapshot(10, 300, 5, "");
        assert_eq!(snap.events.len(), 300);
        assert_eq!(snap.events.last().map(|e| e.seq), Some(snap.seq));
        assert_eq!(snap.missed, snap.seq - 300 - 10);
        assert_eq!(snap.processes[0].send, RECENT as u64 + 500);
    }
}
