//! The writer queue: rows wait here, in numbered batches, until the writer has
//! committed them. A batch is sent at most a couple at a time (so a writer that stops
//! reading, a full disk, can never make the primary wait) and is sent again, in order,
//! to a restarted writer. Beyond `limit` rows new rows are dropped and counted.
use super::pack::Packer;
use super::periods::Summed;
use picosnitch_ipc::rows::RowBatch;
use std::collections::VecDeque;

/// Batches in flight to the writer at once; small enough that their messages always
/// fit in the link's socket buffer, so sending never waits.
pub const WINDOW: usize = 2;

pub struct Outbox {
    source: String,
    next_seq: u64,
    queue: VecDeque<RowBatch>,
    /// How many batches at the front of `queue` were sent and await acknowledgement.
    in_flight: usize,
    rows: u64,
    limit: u64,
    pub rows_dropped: u64,
    /// What the dropped rows held: connections opened (their events) and payload bytes.
    pub events_dropped: u64,
    pub bytes_dropped: u64,
    pub rows_acknowledged: u64,
}

impl Outbox {
    pub fn new(source: String, limit: u64) -> Self {
        Outbox {
            source,
            next_seq: 1,
            queue: VecDeque::new(),
            in_flight: 0,
            rows: 0,
            limit,
            rows_dropped: 0,
            events_dropped: 0,
            bytes_dropped: 0,
            rows_acknowledged: 0,
        }
    }

    pub fn rows_queued(&self) -> u64 {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues rows; returns how many were dropped for lack of room.
    pub fn push(&mut self, rows: &[Summed]) -> u64 {
        let room = self.limit.saturating_sub(self.rows) as usize;
        let dropped = rows.len().saturating_sub(room) as u64;
        self.rows_dropped += dropped;
        let (keep, lost) = rows.split_at(rows.len().min(room));
        for r in lost {
            self.events_dropped += r.events;
            self.bytes_dropped += r.send + r.recv;
        }
        if keep.is_empty() {
            return dropped;
        }
        let mut packer = Packer::new(self.source.clone(), self.next_seq);
        for r in keep {
            packer.add(r);
        }
        for batch in packer.finish() {
            self.rows += batch.rows.len() as u64;
            self.next_seq = batch.seq + 1;
            self.queue.push_back(batch);
        }
        dropped
    }

    /// Queues VirusTotal verdicts as a batch of their own: they are committed and
    /// acknowledged like rows, so a writer restart loses none.
    pub fn push_verdicts(&mut self, verdicts: Vec<picosnitch_store::Verdict>) {
        if verdicts.is_empty() {
            return;
        }
        let mut batch = RowBatch::new(self.source.clone(), self.next_seq);
        batch.verdicts = verdicts;
        self.next_seq += 1;
        self.queue.push_back(batch);
    }

    /// The next batch to send, if the window has room.
    pub fn next_to_send(&self) -> Option<&RowBatch> {
        if self.in_flight >= WINDOW {
            return None;
        }
        self.queue.get(self.in_flight)
    }

    pub fn mark_sent(&mut self) {
        self.in_flight = (self.in_flight + 1).min(self.queue.len());
    }

    /// Everything up to `seq` is committed.
    pub fn ack(&mut self, seq: u64) {
        while self.queue.front().is_some_and(|b| b.seq <= seq) {
            if let Some(b) = self.queue.pop_front() {
                self.rows -= b.rows.len() as u64;
                self.rows_acknowledged += b.rows.len() as u64;
                self.in_flight = self.in_flight.saturating_sub(1);
            }
        }
    }

    /// A new writer: everything unacknowledged goes again, oldest first.
    pub fn rewind(&mut self) {
        self.in_flight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::primary::identity::{ExeInfo, Sha};
    use crate::primary::periods::FlowRow;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn rows(n: usize) -> Vec<Summed> {
        let exe = Rc::new(RefCell::new(ExeInfo { exe: "/x".into(), cmdline: String::new(), sha256: Sha::Known("a".into()) }));
        let name: Rc<str> = Rc::from("x");
        let row = Rc::new(FlowRow {
            exes: [Rc::clone(&exe), Rc::clone(&exe), exe],
            names: [Rc::clone(&name), Rc::clone(&name), Rc::clone(&name)],
            uid: 0,
            family: 2,
            protocol: 6,
            lport: 1,
            rport: 2,
            laddr: None,
            raddr: None,
            domain: name,
            netns: 0,
        });
        (0..n).map(|i| Summed { row: Rc::clone(&row), contime: i as i64, send: 1, recv: 1, events: 1 }).collect()
    }

    #[test]
    fn window_ack_and_resend_after_a_writer_restart() {
        let mut o = Outbox::new("p".into(), 1000);
        for _ in 0..3 {
            o.push(&rows(1));
        }
        assert_eq!(o.next_to_send().map(|b| b.seq), Some(1));
        o.mark_sent();
        assert_eq!(o.next_to_send().map(|b| b.seq), Some(2));
        o.mark_sent();
        assert!(o.next_to_send().is_none(), "window of two");
        o.ack(1);
        assert_eq!(o.next_to_send().map(|b| b.seq), Some(3));
        o.mark_sent();
        // The writer dies: 2 and 3 go again, in order.
        o.rewind();
        assert_eq!(o.next_to_send().map(|b| b.seq), Some(2));
        o.ack(3);
        assert!(o.is_empty());
        assert_eq!((o.rows_queued(), o.rows_acknowledged), (0, 3));
    }

    #[test]
    fn rows_beyond_the_limit_are_dropped_and_counted() {
        let mut o = Outbox::new("p".into(), 5);
        assert_eq!(o.push(&rows(3)), 0);
        assert_eq!(o.push(&rows(4)), 2);
        assert_eq!((o.rows_queued(), o.rows_dropped), (5, 2));
        assert_eq!(o.events_dropped, 2, "each test row is one connection");
    }
}
