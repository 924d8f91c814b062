//! What the live feed adds up to: per-executable totals since the view opened, the
//! flows open now, listening ports, recent rates and the latest events.
use picosnitch_feed::{Direction, FlowUpdate, UpdateKind};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Events kept for the lower panel.
pub const RECENT_EVENTS: usize = 2_000;
/// Open flows remembered to count them down at `close`; beyond this (closes missed
/// for a long time) the count restarts rather than grow without bound.
const OPEN_FLOWS_LIMIT: usize = 200_000;
/// Seconds over which send and receive rates are averaged.
const RATE_SECONDS: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExeKey {
    pub exe: String,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct ExeStats {
    pub cmdline: String,
    pub sha256: String,
    /// Flows opened.
    pub conns: u64,
    /// Flows open now (opened and not yet closed while we watched).
    pub open: u64,
    pub send: u64,
    pub recv: u64,
    /// Local ports of flows that came in: where this program listens.
    pub listening: BTreeSet<u16>,
    /// Per-second (second, sent, received), newest last, for the rates.
    recent: VecDeque<(i64, u64, u64)>,
}

impl ExeStats {
    fn add_rate(&mut self, second: i64, send: u64, recv: u64) {
        match self.recent.back_mut() {
            Some(last) if last.0 == second => {
                last.1 += send;
                last.2 += recv;
            }
            _ => self.recent.push_back((second, send, recv)),
        }
        while self.recent.front().is_some_and(|f| f.0 <= second - RATE_SECONDS) {
            self.recent.pop_front();
        }
    }

    /// Bytes per second sent and received over the last few seconds before `now`.
    pub fn rates(&self, now: f64) -> (f64, f64) {
        let now = now.floor() as i64;
        let (s, r) = self.recent.iter().filter(|b| b.0 > now - RATE_SECONDS && b.0 <= now).fold((0, 0), |acc, b| (acc.0 + b.1, acc.1 + b.2));
        (s as f64 / RATE_SECONDS as f64, r as f64 / RATE_SECONDS as f64)
    }
}

/// A column the executable table can be sorted by; `s`/`S` cycle through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LiveSort {
    /// picosnitch 2.x's `top` sorted by bytes sent too.
    #[default]
    Sent,
    Received,
    SendRate,
    RecvRate,
    Conns,
    Open,
    Name,
    Executable,
}

impl LiveSort {
    const ORDER: [LiveSort; 8] =
        [LiveSort::Sent, LiveSort::Received, LiveSort::SendRate, LiveSort::RecvRate, LiveSort::Conns, LiveSort::Open, LiveSort::Name, LiveSort::Executable];

    pub fn next(self) -> LiveSort {
        let i = Self::ORDER.iter().position(|s| *s == self).unwrap_or(0);
        Self::ORDER[(i + 1) % Self::ORDER.len()]
    }

    pub fn prev(self) -> LiveSort {
        let i = Self::ORDER.iter().position(|s| *s == self).unwrap_or(0);
        Self::ORDER[(i + Self::ORDER.len() - 1) % Self::ORDER.len()]
    }

    pub fn label(self) -> &'static str {
        match self {
            LiveSort::Sent => "sent",
            LiveSort::Received => "received",
            LiveSort::SendRate => "send rate",
            LiveSort::RecvRate => "receive rate",
            LiveSort::Conns => "connections",
            LiveSort::Open => "open",
            LiveSort::Name => "name",
            LiveSort::Executable => "executable",
        }
    }
}

/// What is displayed; while paused, a copy taken at the moment of pausing.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    rows: Vec<(ExeKey, ExeStats)>,
    recent: VecDeque<FlowUpdate>,
}

#[derive(Debug, Default)]
pub struct LiveModel {
    rows: HashMap<ExeKey, ExeStats>,
    flows: HashMap<u64, ExeKey>,
    recent: VecDeque<FlowUpdate>,
    /// Updates received since the view opened (or was reset).
    pub updates: u64,
    /// Time of the first update counted.
    pub since: Option<f64>,
    pub sort: LiveSort,
    /// Lowercase text rows must contain to be shown; empty shows all.
    pub find: String,
    frozen: Option<Snapshot>,
}

impl LiveModel {
    pub fn apply(&mut self, u: &FlowUpdate) {
        self.updates += 1;
        self.since.get_or_insert(u.time);
        self.recent.push_front(u.clone());
        self.recent.truncate(RECENT_EVENTS);
        // A program starting is an event to list, not a row: the table is about traffic.
        if u.kind == UpdateKind::Exec {
            return;
        }
        if u.kind == UpdateKind::Open && self.flows.len() >= OPEN_FLOWS_LIMIT {
            self.flows.clear();
            self.rows.values_mut().for_each(|r| r.open = 0);
        }
        let key = ExeKey { exe: u.exe.clone(), name: u.name.clone() };
        let second = u.time.floor() as i64;
        let row = self.rows.entry(key.clone()).or_default();
        if !u.cmdline.is_empty() {
            row.cmdline.clone_from(&u.cmdline);
        }
        if !u.sha256.is_empty() {
            row.sha256.clone_from(&u.sha256);
        }
        row.send += u.send;
        row.recv += u.recv;
        if u.send + u.recv > 0 {
            row.add_rate(second, u.send, u.recv);
        }
        match u.kind {
            UpdateKind::Open => {
                row.conns += 1;
                if u.direction == Some(Direction::In) && u.lport > 0 {
                    row.listening.insert(u.lport);
                }
                if self.flows.insert(u.flow, key).is_none() {
                    row.open += 1;
                }
            }
            UpdateKind::Close => {
                if let Some(k) = self.flows.remove(&u.flow) {
                    if let Some(r) = self.rows.get_mut(&k) {
                        r.open = r.open.saturating_sub(1);
                    }
                }
            }
            UpdateKind::Bytes | UpdateKind::Exec | UpdateKind::Unknown => {}
        }
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    pub fn toggle_pause(&mut self) {
        self.frozen = match self.frozen {
            Some(_) => None,
            None => Some(Snapshot { rows: self.rows.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), recent: self.recent.clone() }),
        };
    }

    pub fn reset(&mut self) {
        let (sort, find) = (self.sort, std::mem::take(&mut self.find));
        *self = LiveModel { sort, find, ..LiveModel::default() };
    }

    fn matches(&self, texts: &[&str]) -> bool {
        self.find.is_empty() || texts.iter().any(|t| t.to_lowercase().contains(&self.find))
    }

    /// Executable rows to show, found and sorted.
    pub fn table(&self, now: f64) -> Vec<(ExeKey, ExeStats)> {
        let mut rows: Vec<(ExeKey, ExeStats)> = match &self.frozen {
            Some(s) => s.rows.clone(),
            None => self.rows.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        rows.retain(|(k, v)| self.matches(&[&k.exe, &k.name, &v.cmdline, &v.sha256]));
        let rate = |v: &ExeStats| v.rates(now);
        rows.sort_by(|(ka, a), (kb, b)| {
            let order = match self.sort {
                LiveSort::Sent => b.send.cmp(&a.send),
                LiveSort::Received => b.recv.cmp(&a.recv),
                LiveSort::SendRate => rate(b).0.total_cmp(&rate(a).0),
                LiveSort::RecvRate => rate(b).1.total_cmp(&rate(a).1),
                LiveSort::Conns => b.conns.cmp(&a.conns),
                LiveSort::Open => b.open.cmp(&a.open),
                LiveSort::Name => ka.name.cmp(&kb.name),
                LiveSort::Executable => ka.exe.cmp(&kb.exe),
            };
            order.then_with(|| ka.cmp(kb))
        });
        rows
    }

    /// Events to show, newest first, found.
    pub fn events(&self) -> Vec<&FlowUpdate> {
        let recent = match &self.frozen {
            Some(s) => &s.recent,
            None => &self.recent,
        };
        recent
            .iter()
            .filter(|u| self.matches(&[&u.exe, &u.name, &u.cmdline, &u.domain, &u.raddr, &u.laddr, &u.pname, &u.rport.to_string(), &u.lport.to_string()]))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.updates == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(kind: UpdateKind, flow: u64, time: f64, exe: &str, send: u64, recv: u64) -> FlowUpdate {
        FlowUpdate {
            v: 1,
            kind,
            flow,
            time,
            exe: exe.into(),
            name: exe.rsplit('/').next().unwrap_or("").into(),
            send,
            recv,
            direction: Some(Direction::Out),
            ..Default::default()
        }
    }

    #[test]
    fn totals_open_flows_listening_ports_and_rates() {
        let mut m = LiveModel::default();
        m.apply(&up(UpdateKind::Open, 1, 100.0, "/usr/bin/curl", 10, 0));
        m.apply(&up(UpdateKind::Bytes, 1, 101.5, "/usr/bin/curl", 0, 5_000));
        m.apply(&up(UpdateKind::Open, 2, 102.0, "/usr/bin/curl", 1, 1));
        m.apply(&up(UpdateKind::Close, 1, 103.0, "/usr/bin/curl", 0, 24));
        let mut inbound = up(UpdateKind::Open, 3, 103.0, "/usr/sbin/sshd", 0, 0);
        inbound.direction = Some(Direction::In);
        inbound.lport = 22;
        m.apply(&inbound);
        let t = m.table(103.2);
        assert_eq!(t.len(), 2);
        let (k, curl) = &t[0];
        assert_eq!(k.name, "curl");
        assert_eq!((curl.conns, curl.open, curl.send, curl.recv), (2, 1, 11, 5_025));
        assert_eq!(curl.rates(103.2), (11.0 / 5.0, 5_025.0 / 5.0));
        assert_eq!(curl.rates(110.0), (0.0, 0.0), "rates fade after five seconds");
        assert_eq!(t[1].1.listening.iter().copied().collect::<Vec<_>>(), vec![22]);
        assert_eq!(m.events().len(), 5);
        assert_eq!(m.events()[0].flow, 3, "newest first");
    }

    #[test]
    fn sort_find_pause_reset() {
        let mut m = LiveModel::default();
        m.apply(&up(UpdateKind::Open, 1, 1.0, "/a/small", 1, 900));
        m.apply(&up(UpdateKind::Open, 2, 1.0, "/b/big", 500, 2));
        let names = |m: &LiveModel| m.table(1.0).into_iter().map(|(k, _)| k.name).collect::<Vec<_>>();
        assert_eq!(names(&m), ["big", "small"]);
        m.sort = m.sort.next();
        assert_eq!((m.sort, names(&m)), (LiveSort::Received, vec!["small".to_string(), "big".to_string()]));
        m.find = "bi".into();
        assert_eq!(names(&m), ["big"]);
        assert_eq!(m.events().len(), 1);
        m.find.clear();
        m.toggle_pause();
        m.apply(&up(UpdateKind::Open, 3, 2.0, "/c/new", 9, 9));
        assert_eq!(names(&m).len(), 2, "paused: the display stays as it was");
        m.toggle_pause();
        assert_eq!(names(&m).len(), 3, "resumed: what arrived meanwhile shows");
        m.reset();
        assert!(m.table(1.0).is_empty() && m.is_empty());
        assert_eq!(m.sort, LiveSort::Received, "reset keeps the chosen sort");
    }
}
