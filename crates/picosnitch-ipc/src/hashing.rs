//! Primary <-> hasher: an executable travels as an open descriptor (attached to the
//! request), so the hasher needs no filesystem access; the sha256 comes back.
use serde::{Deserialize, Serialize};

/// One descriptor attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashRequest {
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashReply {
    pub id: u64,
    /// Lowercase hex sha256, or why it could not be computed.
    pub result: Result<String, String>,
}
