//! Traffic summed per write period into rows: one row per (executable, parent,
//! grandparent, user, family, protocol, ports, addresses, domain, netns) and period,
//! with the period's bytes and its new connections (`events`).
//!
//! A row whose executables are still being hashed waits for the next period (keeping
//! its time) rather than being written without its sha256, up to a bound.
use super::identity::{Exe, Sha, SHA_TIMEOUT};
use picosnitch_config::LogConfig;
use picosnitch_store::{ConnectionRecord, ExeRecord};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The fixed part of a flow's rows.
#[derive(Debug)]
pub struct FlowRow {
    /// The process, its parent, its grandparent.
    pub exes: [Exe; 3],
    pub names: [String; 3],
    pub uid: u32,
    pub family: u16,
    pub protocol: u16,
    pub lport: u16,
    pub rport: u16,
    pub laddr: String,
    pub raddr: String,
    pub domain: String,
    pub netns: u32,
}

/// Names what is summed: a flow of one monitor generation, or one execution.
pub type EntryKey = (u32, u64);

struct Entry {
    row: Rc<FlowRow>,
    contime: i64,
    send: u64,
    recv: u64,
    events: u64,
    since: Instant,
}

#[derive(Default)]
pub struct Periods {
    current: HashMap<EntryKey, Entry>,
    carried: Vec<Entry>,
}

/// What a flush produced.
pub struct Flushed {
    pub rows: Vec<ConnectionRecord>,
    /// Rows left out by `[log] ignore_sha256`.
    pub ignored: u64,
    /// Rows written without a sha256 because hashing took longer than allowed.
    pub hash_timeouts: u64,
}

impl Periods {
    /// Adds traffic (and new connections) of one flow or execution.
    pub fn add(&mut self, key: EntryKey, row: &Rc<FlowRow>, contime: i64, send: u64, recv: u64, events: u64) {
        let e = self.current.entry(key).or_insert_with(|| Entry {
            row: Rc::clone(row),
            contime,
            send: 0,
            recv: 0,
            events: 0,
            since: Instant::now(),
        });
        e.contime = e.contime.min(contime);
        e.send = e.send.saturating_add(send);
        e.recv = e.recv.saturating_add(recv);
        e.events = e.events.saturating_add(events);
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.current.is_empty() && self.carried.is_empty()
    }

    /// Ends the period: rows whose hashes are known (or that waited `max_wait`), summed
    /// by row; the rest wait for the next period.
    pub fn flush(&mut self, max_wait: Duration, log: &LogConfig) -> Flushed {
        let now = Instant::now();
        let mut sums: HashMap<ConnectionRecord, (i64, u64, u64, u64)> = HashMap::new();
        let mut ignored = 0;
        let mut hash_timeouts = 0;
        let entries: Vec<Entry> = self.current.drain().map(|(_, e)| e).chain(self.carried.drain(..)).collect();
        for e in entries {
            let pending = e.row.exes.iter().any(|x| x.borrow().sha256 == Sha::Pending);
            if pending && now.saturating_duration_since(e.since) < max_wait {
                self.carried.push(e);
                continue;
            }
            if pending {
                hash_timeouts += 1;
            }
            let record = record_of(&e.row);
            if log.ignores_sha256(&record.exe.sha256) {
                ignored += 1;
                continue;
            }
            let s = sums.entry(record).or_insert((e.contime, 0, 0, 0));
            s.0 = s.0.min(e.contime);
            s.1 = s.1.saturating_add(e.send);
            s.2 = s.2.saturating_add(e.recv);
            s.3 = s.3.saturating_add(e.events);
        }
        let mut rows: Vec<ConnectionRecord> = sums
            .into_iter()
            .map(|(mut r, (contime, send, recv, events))| {
                r.contime = contime;
                r.send = i64::try_from(send).unwrap_or(i64::MAX);
                r.recv = i64::try_from(recv).unwrap_or(i64::MAX);
                r.events = i64::try_from(events).unwrap_or(i64::MAX);
                r
            })
            .collect();
        rows.sort_by_key(|r| r.contime);
        Flushed { rows, ignored, hash_timeouts }
    }
}

/// The row for a flow, with contime and counters zero.
fn record_of(row: &FlowRow) -> ConnectionRecord {
    let exe = |i: usize| {
        let x = row.exes[i].borrow();
        let sha256 = match &x.sha256 {
            Sha::Known(s) => s.clone(),
            Sha::Pending => SHA_TIMEOUT.to_string(),
        };
        if x.exe.is_empty() && row.names[i].is_empty() && x.cmdline.is_empty() && sha256.is_empty() {
            return ExeRecord::default();
        }
        ExeRecord { exe: x.exe.clone(), name: row.names[i].clone(), cmdline: x.cmdline.clone(), sha256 }
    };
    ConnectionRecord {
        contime: 0,
        send: 0,
        recv: 0,
        events: 0,
        exe: exe(0),
        pexe: exe(1),
        gpexe: exe(2),
        uid: i64::from(row.uid),
        family: i64::from(row.family),
        protocol: i64::from(row.protocol),
        lport: i64::from(row.lport),
        rport: i64::from(row.rport),
        laddr: row.laddr.clone(),
        raddr: row.raddr.clone(),
        domain: row.domain.clone(),
        netns: i64::from(row.netns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primary::identity::ExeInfo;
    use std::cell::RefCell;

    fn exe(path: &str, sha: Sha) -> Exe {
        let cmdline = if path.is_empty() { String::new() } else { format!("{path} -x") };
        Rc::new(RefCell::new(ExeInfo { exe: path.into(), cmdline, sha256: sha }))
    }

    fn row(e: Exe, lport: u16) -> Rc<FlowRow> {
        let empty = exe("", Sha::Known(String::new()));
        Rc::new(FlowRow {
            exes: [e, Rc::clone(&empty), empty],
            names: ["curl".into(), String::new(), String::new()],
            uid: 1000,
            family: 2,
            protocol: 6,
            lport,
            rport: 443,
            laddr: "10.0.0.2".into(),
            raddr: "10.0.0.1".into(),
            domain: String::new(),
            netns: 1,
        })
    }

    #[test]
    fn flows_with_equal_rows_are_summed_with_the_earliest_time() {
        let mut p = Periods::default();
        let curl = exe("/usr/bin/curl", Sha::Known("aa".into()));
        let r = row(Rc::clone(&curl), 5000);
        p.add((1, 1), &r, 100, 10, 20, 1);
        p.add((1, 1), &r, 101, 5, 0, 0);
        p.add((1, 2), &row(curl, 5000), 99, 1, 1, 1);
        let f = p.flush(Duration::from_secs(30), &LogConfig::default());
        assert_eq!(f.rows.len(), 1);
        let x = &f.rows[0];
        assert_eq!((x.contime, x.send, x.recv, x.events), (99, 16, 21, 2));
        assert_eq!(x.exe.name, "curl");
        assert_eq!(x.pexe, ExeRecord::default(), "an empty parent is the empty record (id 0)");
    }

    #[test]
    fn rows_wait_for_their_hash_then_go() {
        let mut p = Periods::default();
        let e = exe("/usr/bin/wget", Sha::Pending);
        p.add((1, 1), &row(Rc::clone(&e), 1), 100, 1, 1, 1);
        let f = p.flush(Duration::from_secs(30), &LogConfig::default());
        assert!(f.rows.is_empty() && !p.is_empty(), "carried");
        e.borrow_mut().sha256 = Sha::Known("bb".into());
        p.add((1, 1), &row(Rc::clone(&e), 1), 200, 2, 2, 0);
        let f = p.flush(Duration::from_secs(30), &LogConfig::default());
        assert_eq!(f.rows.len(), 1, "same row summed across the carry");
        assert_eq!((f.rows[0].contime, f.rows[0].send, f.rows[0].exe.sha256.as_str()), (100, 3, "bb"));
        // A hash that never comes: written marked after the wait.
        let slow = exe("/opt/slow", Sha::Pending);
        p.add((1, 3), &row(slow, 1), 300, 1, 1, 1);
        let f = p.flush(Duration::ZERO, &LogConfig::default());
        assert_eq!((f.rows[0].exe.sha256.as_str(), f.hash_timeouts), (SHA_TIMEOUT, 1));
    }

    #[test]
    fn ignored_sha256_rows_are_left_out_and_counted() {
        let mut p = Periods::default();
        let sha = "c".repeat(64);
        p.add((1, 1), &row(exe("/x", Sha::Known(sha.clone())), 1), 1, 1, 1, 1);
        let log = LogConfig { ignore_sha256: vec![sha], ..Default::default() };
        let f = p.flush(Duration::from_secs(1), &log);
        assert_eq!((f.rows.len(), f.ignored), (0, 1));
    }
}
