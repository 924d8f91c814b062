//! Traffic summed per write period into rows: one row per (executable, parent,
//! grandparent, user, family, protocol, ports, addresses, domain, netns) and period,
//! with the period's bytes and its new connections (`events`).
//!
//! Rows are compared by identity (the shared executable and name values a flow points
//! to), not by their text, so summing costs no string hashing. A row whose executables
//! are still being hashed waits for the next period (keeping its time) rather than
//! being written without its sha256, up to a bound.
use super::identity::{Exe, Sha};
use picosnitch_config::LogConfig;
use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The fixed part of a flow's rows.
#[derive(Debug, Clone)]
pub struct FlowRow {
    /// The process, its parent, its grandparent.
    pub exes: [Exe; 3],
    pub names: [Rc<str>; 3],
    pub uid: u32,
    pub family: u16,
    pub protocol: u16,
    pub lport: u16,
    pub rport: u16,
    pub laddr: Option<IpAddr>,
    pub raddr: Option<IpAddr>,
    pub domain: Rc<str>,
    pub netns: u32,
}

/// What makes two flows' rows the same row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RowKey {
    exes: [*const (); 3],
    names: [*const u8; 3],
    uid: u32,
    family: u16,
    protocol: u16,
    lport: u16,
    rport: u16,
    laddr: Option<IpAddr>,
    raddr: Option<IpAddr>,
    domain: *const u8,
    netns: u32,
}

impl RowKey {
    fn of(r: &FlowRow) -> RowKey {
        RowKey {
            exes: [0, 1, 2].map(|i| Rc::as_ptr(&r.exes[i]).cast::<()>()),
            names: [0, 1, 2].map(|i| r.names[i].as_ptr()),
            uid: r.uid,
            family: r.family,
            protocol: r.protocol,
            lport: r.lport,
            rport: r.rport,
            laddr: r.laddr,
            raddr: r.raddr,
            domain: r.domain.as_ptr(),
            netns: r.netns,
        }
    }
}

/// Names what is summed: a flow of one monitor generation, or one execution.
pub type EntryKey = (u32, u64);

/// A row ready to be written.
#[derive(Debug, Clone)]
pub struct Summed {
    pub row: Rc<FlowRow>,
    pub contime: i64,
    pub send: u64,
    pub recv: u64,
    pub events: u64,
}

struct Entry {
    sum: Summed,
    since: Instant,
}

#[derive(Default)]
pub struct Periods {
    current: HashMap<EntryKey, Entry>,
    carried: Vec<Entry>,
}

/// What a flush produced.
pub struct Flushed {
    pub rows: Vec<Summed>,
    /// Rows left out by `[log] ignore_sha256`.
    pub ignored: u64,
    /// Rows written without a sha256 because hashing took longer than allowed.
    pub hash_timeouts: u64,
}

impl Periods {
    /// Adds traffic (and new connections) of one flow or execution.
    pub fn add(&mut self, key: EntryKey, row: &Rc<FlowRow>, contime: i64, send: u64, recv: u64, events: u64) {
        let e = self.current.entry(key).or_insert_with(|| Entry {
            sum: Summed { row: Rc::clone(row), contime, send: 0, recv: 0, events: 0 },
            since: Instant::now(),
        });
        let s = &mut e.sum;
        s.contime = s.contime.min(contime);
        s.send = s.send.saturating_add(send);
        s.recv = s.recv.saturating_add(recv);
        s.events = s.events.saturating_add(events);
    }

    /// Gives this period's row of `key` the domain `name` if it has none yet (a flow
    /// that closed before its name arrived); false if there is no such row.
    pub fn name_unnamed(&mut self, key: EntryKey, name: &Rc<str>) -> bool {
        let Some(e) = self.current.get_mut(&key) else { return false };
        if !e.sum.row.domain.is_empty() {
            return false;
        }
        let mut row = (*e.sum.row).clone();
        row.domain = Rc::clone(name);
        e.sum.row = Rc::new(row);
        true
    }

    /// The flow's row changed (its domain became known): this period's traffic of the
    /// flow goes to the new row. Earlier periods' rows stay as they were.
    pub fn set_row(&mut self, key: EntryKey, row: &Rc<FlowRow>) {
        if let Some(e) = self.current.get_mut(&key) {
            e.sum.row = Rc::clone(row);
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.current.is_empty() && self.carried.is_empty()
    }

    /// Ends the period: rows whose hashes are known (or that waited `max_wait`), summed
    /// by row; the rest wait for the next period.
    #[cfg(test)]
    pub fn flush(&mut self, max_wait: Duration, log: &LogConfig) -> Flushed {
        self.flush_holding(max_wait, log, |_, _| false)
    }

    /// [`Periods::flush`], keeping in the current period (under their key, where a name
    /// can still reach them, and adding the next period's traffic) the entries `hold`
    /// names by key and age: flows whose reverse DNS lookup is still out.
    pub fn flush_holding(&mut self, max_wait: Duration, log: &LogConfig, hold: impl Fn(&EntryKey, Duration) -> bool) -> Flushed {
        let now = Instant::now();
        let mut sums: HashMap<RowKey, Summed> = HashMap::default();
        let mut ignored = 0;
        let mut hash_timeouts = 0;
        let mut held: Vec<(EntryKey, Entry)> = Vec::new();
        let mut entries: Vec<Entry> = Vec::with_capacity(self.current.len() + self.carried.len());
        for (k, e) in self.current.drain() {
            if hold(&k, now.saturating_duration_since(e.since)) {
                held.push((k, e));
            } else {
                entries.push(e);
            }
        }
        entries.append(&mut self.carried);
        for e in entries {
            let pending = e.sum.row.exes.iter().any(|x| x.borrow().sha256 == Sha::Pending);
            if pending && now.saturating_duration_since(e.since) < max_wait {
                self.carried.push(e);
                continue;
            }
            if pending {
                hash_timeouts += 1;
            }
            // A domain learnt after the flow opened (a TLS server name) may be ignored.
            if matches!(&e.sum.row.exes[0].borrow().sha256, Sha::Known(s) if log.ignores_sha256(s))
                || log.ignores_domain(&e.sum.row.domain)
            {
                ignored += 1;
                continue;
            }
            match sums.entry(RowKey::of(&e.sum.row)) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(e.sum);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let s = o.get_mut();
                    s.contime = s.contime.min(e.sum.contime);
                    s.send = s.send.saturating_add(e.sum.send);
                    s.recv = s.recv.saturating_add(e.sum.recv);
                    s.events = s.events.saturating_add(e.sum.events);
                }
            }
        }
        self.current.shrink_to(64);
        self.current.extend(held);
        let mut rows: Vec<Summed> = sums.into_values().collect();
        rows.sort_by_key(|r| r.contime);
        Flushed { rows, ignored, hash_timeouts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primary::identity::{ExeInfo, SHA_TIMEOUT};
    use std::cell::RefCell;

    fn exe(path: &str, sha: Sha) -> Exe {
        let cmdline = if path.is_empty() { String::new() } else { format!("{path} -x") };
        Rc::new(RefCell::new(ExeInfo { exe: path.into(), cmdline, sha256: sha }))
    }

    fn row(e: &Exe, name: &Rc<str>, lport: u16) -> Rc<FlowRow> {
        let empty = exe("", Sha::Known(String::new()));
        let none: Rc<str> = Rc::from("");
        Rc::new(FlowRow {
            exes: [Rc::clone(e), Rc::clone(&empty), empty],
            names: [Rc::clone(name), Rc::clone(&none), Rc::clone(&none)],
            uid: 1000,
            family: 2,
            protocol: 6,
            lport,
            rport: 443,
            laddr: "10.0.0.2".parse().ok(),
            raddr: "10.0.0.1".parse().ok(),
            domain: none,
            netns: 1,
        })
    }

    #[test]
    fn flows_with_the_same_row_are_summed_with_the_earliest_time() {
        let mut p = Periods::default();
        let curl = exe("/usr/bin/curl", Sha::Known("aa".into()));
        let name: Rc<str> = Rc::from("curl");
        let r1 = row(&curl, &name, 5000);
        p.add((1, 1), &r1, 100, 10, 20, 1);
        p.add((1, 1), &r1, 101, 5, 0, 0);
        // Another flow whose row has the same parts (a second FlowRow value).
        let mut r2 = row(&curl, &name, 5000);
        Rc::get_mut(&mut r2).expect("unique").exes = [Rc::clone(&curl), Rc::clone(&r1.exes[1]), Rc::clone(&r1.exes[2])];
        Rc::get_mut(&mut r2).expect("unique").names = r1.names.clone();
        Rc::get_mut(&mut r2).expect("unique").domain = Rc::clone(&r1.domain);
        p.add((1, 2), &r2, 99, 1, 1, 1);
        // A different local port is a different row.
        p.add((1, 3), &row(&curl, &name, 5001), 99, 1, 1, 1);
        let f = p.flush(Duration::from_secs(30), &LogConfig::default());
        assert_eq!(f.rows.len(), 2);
        let x = f.rows.iter().find(|r| r.row.lport == 5000).expect("row");
        assert_eq!((x.contime, x.send, x.recv, x.events), (99, 16, 21, 2));
    }

    /// A row held for its flow's name stays under its key: the name reaches it, the next
    /// period's traffic adds to it, and it goes once no longer held.
    #[test]
    fn rows_held_for_a_name_are_named_then_go() {
        let mut p = Periods::default();
        let e = exe("/usr/bin/ssh", Sha::Known("bb".into()));
        let name: Rc<str> = Rc::from("ssh");
        p.add((1, 1), &row(&e, &name, 22), 100, 3, 4, 1);
        p.add((1, 2), &row(&e, &name, 23), 100, 1, 1, 1);
        let f = p.flush_holding(Duration::from_secs(30), &LogConfig::default(), |k, _| *k == (1, 1));
        assert_eq!(f.rows.iter().map(|r| r.row.lport).collect::<Vec<_>>(), [23], "the other row goes");
        p.add((1, 1), &row(&e, &name, 22), 101, 5, 0, 0);
        assert!(p.name_unnamed((1, 1), &Rc::from("host.example")));
        let f = p.flush_holding(Duration::from_secs(30), &LogConfig::default(), |_, _| false);
        assert_eq!(f.rows.len(), 1);
        let r = &f.rows[0];
        assert_eq!((&*r.row.domain, r.contime, r.send, r.recv, r.events), ("host.example", 100, 8, 4, 1));
        assert!(p.is_empty());
    }

    #[test]
    fn rows_wait_for_their_hash_then_go() {
        let mut p = Periods::default();
        let e = exe("/usr/bin/wget", Sha::Pending);
        let name: Rc<str> = Rc::from("wget");
        let r = row(&e, &name, 1);
        p.add((1, 1), &r, 100, 1, 1, 1);
        let f = p.flush(Duration::from_secs(30), &LogConfig::default());
        assert!(f.rows.is_empty() && !p.is_empty(), "carried");
        e.borrow_mut().sha256 = Sha::Known("bb".into());
        p.add((1, 1), &r, 200, 2, 2, 0);
        let f = p.flush(Duration::from_secs(30), &LogConfig::default());
        assert_eq!(f.rows.len(), 1, "same row summed across the carry");
        assert_eq!((f.rows[0].contime, f.rows[0].send), (100, 3));
        // A hash that never comes: the row goes anyway after the wait, counted.
        let slow = exe("/opt/slow", Sha::Pending);
        p.add((1, 3), &row(&slow, &name, 1), 300, 1, 1, 1);
        let f = p.flush(Duration::ZERO, &LogConfig::default());
        assert_eq!((f.rows.len(), f.hash_timeouts), (1, 1));
        let _ = SHA_TIMEOUT;
    }

    #[test]
    fn ignored_sha256_rows_are_left_out_and_counted() {
        let mut p = Periods::default();
        let sha = "c".repeat(64);
        let name: Rc<str> = Rc::from("x");
        p.add((1, 1), &row(&exe("/x", Sha::Known(sha.clone())), &name, 1), 1, 1, 1, 1);
        let log = LogConfig { ignore_sha256: vec![sha], ..Default::default() };
        let f = p.flush(Duration::from_secs(1), &log);
        assert_eq!((f.rows.len(), f.ignored), (0, 1));
    }
}
