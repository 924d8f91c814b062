//! Primary <-> writer: finished rows in numbered batches, acknowledged once committed.
//!
//! The primary keeps every batch until its acknowledgement arrives and sends the
//! unacknowledged ones again on a new link after a writer restart; the writer commits
//! (source, seq) with the rows, so a batch it already has is acknowledged, not written.
//!
//! A batch carries each executable and address once, in its own tables, and rows refer
//! to them by index: most rows of a period share their executables, and spelling them
//! out per row made the rows most of the pipeline's memory and CPU.
use picosnitch_store::{ConnectionRecord, ExeRecord, Verdict};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowBatch {
    /// Names the sending primary process; its batch numbers rise from 1.
    pub source: String,
    pub seq: u64,
    pub exes: Vec<ExeRecord>,
    /// Addresses and domains.
    pub texts: Vec<String>,
    pub rows: Vec<PackedRow>,
    /// VirusTotal verdicts that arrived since the last batch, committed with it.
    pub verdicts: Vec<Verdict>,
}

/// A `connections` row whose executables, addresses and domain are indexes into its
/// batch's tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedRow {
    pub contime: i64,
    pub send: u64,
    pub recv: u64,
    pub events: u64,
    pub exe: u32,
    pub pexe: u32,
    pub gpexe: u32,
    pub uid: u32,
    pub family: u16,
    pub protocol: u16,
    pub lport: u16,
    pub rport: u16,
    pub laddr: u32,
    pub raddr: u32,
    pub domain: u32,
    pub netns: u32,
}

/// Postcard's worst case for a [`PackedRow`] (every integer at its longest varint).
pub const PACKED_ROW_MAX: usize = 4 * 10 + 3 * 10 * 2 + 5 + 3 * 3 + 3 * 5 + 5;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("row batch {seq} refers to {what} {index}, but its table has {len}")]
pub struct BadIndex {
    pub seq: u64,
    pub what: &'static str,
    pub index: u32,
    pub len: usize,
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl RowBatch {
    pub fn new(source: String, seq: u64) -> Self {
        RowBatch { source, seq, exes: Vec::new(), texts: Vec::new(), rows: Vec::new(), verdicts: Vec::new() }
    }

    /// The rows spelled out, as the store takes them. A bad index (a bug, or a
    /// corrupted message) is an error rather than a wrong row.
    pub fn unpack(&self) -> Result<Vec<ConnectionRecord>, BadIndex> {
        let exe = |i: u32| {
            self.exes.get(i as usize).cloned().ok_or(BadIndex { seq: self.seq, what: "executable", index: i, len: self.exes.len() })
        };
        let text = |i: u32| {
            self.texts.get(i as usize).cloned().ok_or(BadIndex { seq: self.seq, what: "text", index: i, len: self.texts.len() })
        };
        self.rows
            .iter()
            .map(|r| {
                Ok(ConnectionRecord {
                    contime: r.contime,
                    send: clamp(r.send),
                    recv: clamp(r.recv),
                    events: clamp(r.events),
                    exe: exe(r.exe)?,
                    pexe: exe(r.pexe)?,
                    gpexe: exe(r.gpexe)?,
                    uid: i64::from(r.uid),
                    family: i64::from(r.family),
                    protocol: i64::from(r.protocol),
                    lport: i64::from(r.lport),
                    rport: i64::from(r.rport),
                    laddr: text(r.laddr)?,
                    raddr: text(r.raddr)?,
                    domain: text(r.domain)?,
                    netns: i64::from(r.netns),
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowAck {
    /// Every batch up to and including this one is committed (0: none, batches start at 1).
    pub seq: u64,
    /// sha256s the history already has a VirusTotal verdict for: sent (in pieces of
    /// [`VERDICTS_PER_ACK`], with `seq` 0) when a primary links, so a restarted daemon
    /// does not spend the API quota asking again.
    pub have_verdicts: Vec<String>,
}

/// sha256s per acknowledgement: 500 of 65 bytes fit well within a message.
pub const VERDICTS_PER_ACK: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_rows_unpack_and_bad_indexes_are_refused() {
        let mut b = RowBatch::new("p".into(), 3);
        b.exes.push(ExeRecord::default());
        b.exes.push(ExeRecord { exe: "/bin/x".into(), name: "x".into(), cmdline: "x -y".into(), sha256: "aa".into() });
        b.texts.push(String::new());
        b.texts.push("127.0.0.1".into());
        b.rows.push(PackedRow { contime: 5, send: 1, recv: 2, events: 1, exe: 1, raddr: 1, lport: 80, ..Default::default() });
        let rows = b.unpack().expect("unpack");
        assert_eq!((rows[0].exe.exe.as_str(), rows[0].pexe.exe.as_str(), rows[0].raddr.as_str(), rows[0].laddr.as_str()), ("/bin/x", "", "127.0.0.1", ""));
        assert_eq!((rows[0].send, rows[0].lport), (1, 80));
        b.rows[0].gpexe = 9;
        assert_eq!(b.unpack(), Err(BadIndex { seq: 3, what: "executable", index: 9, len: 2 }));
        let worst = PackedRow {
            contime: i64::MIN,
            send: u64::MAX,
            recv: u64::MAX,
            events: u64::MAX,
            exe: u32::MAX,
            pexe: u32::MAX,
            gpexe: u32::MAX,
            uid: u32::MAX,
            family: u16::MAX,
            protocol: u16::MAX,
            lport: u16::MAX,
            rport: u16::MAX,
            laddr: u32::MAX,
            raddr: u32::MAX,
            domain: u32::MAX,
            netns: u32::MAX,
        };
        assert!(crate::link::encoded_len(&worst).expect("encode") <= PACKED_ROW_MAX);
    }
}
