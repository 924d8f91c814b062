//! Primary <-> hasher: an executable travels as an open descriptor (attached to the
//! request), so the hasher needs no filesystem access; the sha256 comes back. Files the
//! service cannot open go by path to a second hasher running as the desktop user.
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

/// Primary -> the desktop user's hasher: an executable the primary could not open
/// (permission denied even with CAP_DAC_READ_SEARCH, as on a FUSE mount without
/// `allow_other`), by path. The hasher opens it as the desktop user and hashes it only
/// if it is the file the kernel ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserHashRequest {
    pub id: u64,
    pub path: String,
    /// The kernel's device number of the executable (kernel encoding) and inode.
    pub dev: u64,
    pub ino: u64,
    /// The primary's device mask (0 on btrfs-like filesystems: inodes only).
    pub dev_mask: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserHashOutcome {
    /// Lowercase hex sha256.
    Hashed(String),
    /// The file at the path is not the one the kernel ran.
    Replaced,
    /// Not hashed within `[desktop] hash_timeout_seconds`.
    TimedOut,
    /// Why it could not be hashed.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserHashReply {
    pub id: u64,
    pub outcome: UserHashOutcome,
}
