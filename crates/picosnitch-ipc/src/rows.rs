//! Primary <-> writer: finished rows in numbered batches, acknowledged once committed.
//!
//! The primary keeps every batch until its acknowledgement arrives and sends the
//! unacknowledged ones again on a new link after a writer restart; the writer commits
//! (source, seq) with the rows, so a batch it already has is acknowledged, not written.
use picosnitch_store::ConnectionRecord;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowBatch {
    /// Names the sending primary process; its batch numbers rise from 1.
    pub source: String,
    pub seq: u64,
    pub rows: Vec<ConnectionRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowAck {
    /// Every batch up to and including this one is committed.
    pub seq: u64,
}
