//! Packs summed rows into batches for the writer: each batch carries every executable
//! and address its rows need, once, and stays under the link's message size.
use super::identity::{Sha, SHA_TIMEOUT};
use super::periods::{FlowRow, Summed};
use picosnitch_ipc::link::encoded_len;
use picosnitch_ipc::rows::{PackedRow, RowBatch, PACKED_ROW_MAX};
use picosnitch_ipc::MAX_MESSAGE;
use picosnitch_store::ExeRecord;
use rustc_hash::FxHashMap as HashMap;
use std::rc::Rc;

/// Room left for the batch's own fields (source, seq, lengths).
const HEADROOM: usize = 512;

pub struct Packer {
    source: String,
    batch: RowBatch,
    used: usize,
    exes: HashMap<(*const (), *const u8), u32>,
    texts: HashMap<String, u32>,
    done: Vec<RowBatch>,
}

impl Packer {
    pub fn new(source: String, first_seq: u64) -> Packer {
        let mut p = Packer {
            source: source.clone(),
            batch: RowBatch::new(source, first_seq),
            used: 0,
            exes: HashMap::default(),
            texts: HashMap::default(),
            done: Vec::new(),
        };
        p.reset(first_seq);
        p
    }

    fn reset(&mut self, seq: u64) {
        self.batch = RowBatch::new(self.source.clone(), seq);
        self.exes.clear();
        self.texts.clear();
        // Index 0 of each table is the empty value, as in the database.
        self.batch.exes.push(ExeRecord::default());
        self.batch.texts.push(String::new());
        self.texts.insert(String::new(), 0);
        self.used = self.source.len() + HEADROOM;
    }

    /// The bytes `row`'s new table entries would add to the current batch.
    fn cost(&self, row: &FlowRow) -> usize {
        let mut c = PACKED_ROW_MAX;
        for i in 0..3 {
            if !self.exes.contains_key(&exe_key(row, i)) {
                c += exe_record(row, i).map_or(0, |e| encoded_len(&e).unwrap_or(MAX_MESSAGE));
            }
        }
        for t in texts(row) {
            if !self.texts.contains_key(&t) {
                c += t.len() + 5;
            }
        }
        c
    }

    pub fn add(&mut self, s: &Summed) {
        if self.used + self.cost(&s.row) > MAX_MESSAGE && !self.batch.rows.is_empty() {
            let next = self.batch.seq + 1;
            let full = std::mem::replace(&mut self.batch, RowBatch::new(String::new(), 0));
            self.done.push(full);
            self.reset(next);
        }
        self.used += self.cost(&s.row);
        let r = &s.row;
        let [laddr, raddr, domain] = texts(r).map(|t| self.text(t));
        let packed = PackedRow {
            contime: s.contime,
            send: s.send,
            recv: s.recv,
            events: s.events,
            exe: self.exe(r, 0),
            pexe: self.exe(r, 1),
            gpexe: self.exe(r, 2),
            uid: r.uid,
            family: r.family,
            protocol: r.protocol,
            lport: r.lport,
            rport: r.rport,
            laddr,
            raddr,
            domain,
            netns: r.netns,
        };
        self.batch.rows.push(packed);
    }

    fn exe(&mut self, row: &FlowRow, i: usize) -> u32 {
        let key = exe_key(row, i);
        if let Some(idx) = self.exes.get(&key) {
            return *idx;
        }
        let idx = match exe_record(row, i) {
            Some(e) => {
                self.batch.exes.push(e);
                (self.batch.exes.len() - 1) as u32
            }
            None => 0,
        };
        self.exes.insert(key, idx);
        idx
    }

    fn text(&mut self, t: String) -> u32 {
        if let Some(idx) = self.texts.get(&t) {
            return *idx;
        }
        self.batch.texts.push(t.clone());
        let idx = (self.batch.texts.len() - 1) as u32;
        self.texts.insert(t, idx);
        idx
    }

    /// The batches, numbered from `first_seq` on.
    pub fn finish(mut self) -> Vec<RowBatch> {
        if !self.batch.rows.is_empty() {
            let last = std::mem::replace(&mut self.batch, RowBatch::new(String::new(), 0));
            self.done.push(last);
        }
        self.done
    }
}

fn exe_key(row: &FlowRow, i: usize) -> (*const (), *const u8) {
    (Rc::as_ptr(&row.exes[i]).cast::<()>(), row.names[i].as_ptr())
}

/// The stored form of executable `i` of a row; None for the empty record.
fn exe_record(row: &FlowRow, i: usize) -> Option<ExeRecord> {
    let x = row.exes[i].borrow();
    let sha256 = match &x.sha256 {
        Sha::Known(s) => s.clone(),
        Sha::Pending => SHA_TIMEOUT.to_string(),
    };
    let name = &*row.names[i];
    if x.exe.is_empty() && name.is_empty() && x.cmdline.is_empty() && sha256.is_empty() {
        return None;
    }
    Some(ExeRecord { exe: x.exe.clone(), name: name.to_string(), cmdline: x.cmdline.clone(), sha256 })
}

fn texts(row: &FlowRow) -> [String; 3] {
    let a = |x: Option<std::net::IpAddr>| x.map(|a| a.to_string()).unwrap_or_default();
    [a(row.laddr), a(row.raddr), row.domain.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primary::identity::ExeInfo;
    use std::cell::RefCell;

    #[test]
    fn batches_share_tables_and_fit_a_message() {
        let exe = Rc::new(RefCell::new(ExeInfo { exe: "/usr/bin/curl".into(), cmdline: "c".repeat(3000), sha256: Sha::Known("ab".repeat(32)) }));
        let empty = Rc::new(RefCell::new(ExeInfo { exe: String::new(), cmdline: String::new(), sha256: Sha::Known(String::new()) }));
        let name: Rc<str> = Rc::from("curl");
        let none: Rc<str> = Rc::from("");
        let mut p = Packer::new("src".into(), 7);
        for port in 0..5000u16 {
            let row = Rc::new(FlowRow {
                exes: [Rc::clone(&exe), Rc::clone(&empty), Rc::clone(&empty)],
                names: [Rc::clone(&name), Rc::clone(&none), Rc::clone(&none)],
                uid: 0,
                family: 2,
                protocol: 6,
                lport: port,
                rport: 80,
                laddr: "127.0.0.1".parse().ok(),
                raddr: format!("10.0.{}.{}", port / 250, port % 250).parse().ok(),
                domain: Rc::clone(&none),
                netns: 1,
            });
            p.add(&Summed { row, contime: 1, send: 2, recv: 3, events: 1 });
        }
        let batches = p.finish();
        assert!(batches.len() > 1, "5000 distinct addresses do not fit one message");
        assert_eq!(batches.iter().map(|b| b.seq).collect::<Vec<_>>(), (7..7 + batches.len() as u64).collect::<Vec<_>>());
        let mut total = 0;
        for b in &batches {
            assert!(picosnitch_ipc::link::encode(b).is_ok(), "batch {} fits", b.seq);
            let rows = b.unpack().expect("unpack");
            assert!(rows.iter().all(|r| r.exe.exe == "/usr/bin/curl" && r.pexe == ExeRecord::default()));
            assert_eq!(b.exes.len(), 2, "the empty record and curl, once per batch");
            total += rows.len();
        }
        assert_eq!(total, 5000);
    }
}
