//! Sums rows that agree on every non-counter column: one row per write period per
//! (executable, parent, grandparent, user, addresses, ports, domain, netns).
use crate::record::ConnectionRecord;
use std::collections::HashMap;

#[derive(Default)]
pub struct Aggregator {
    rows: HashMap<ConnectionRecord, (i64, i64, i64)>,
}

impl Aggregator {
    pub fn add(&mut self, mut rec: ConnectionRecord) {
        let counters = (rec.send, rec.recv, rec.events);
        rec.send = 0;
        rec.recv = 0;
        rec.events = 0;
        let slot = self.rows.entry(rec).or_default();
        slot.0 = slot.0.saturating_add(counters.0);
        slot.1 = slot.1.saturating_add(counters.1);
        slot.2 = slot.2.saturating_add(counters.2);
    }

    pub fn drain(&mut self) -> Vec<ConnectionRecord> {
        self.rows
            .drain()
            .map(|(mut rec, (s, r, e))| {
                rec.send = s;
                rec.recv = r;
                rec.events = e;
                rec
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
