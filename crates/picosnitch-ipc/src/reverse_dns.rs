//! Primary <-> rdns: an address to look up, and what the resolver said.
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtrRequest {
    pub addr: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PtrOutcome {
    /// The name a PTR record gives the address, kept for `ttl` seconds.
    Named { name: String, ttl: u32 },
    /// The resolver knows no name for it.
    NoName,
    /// No reply within `[monitoring] reverse_dns_timeout_ms`.
    TimedOut,
    /// A reply that does not parse or does not fit the query, a resolver error, or the
    /// role's queue full: the address is not named now (asked again later).
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtrReplyMsg {
    pub addr: IpAddr,
    pub outcome: PtrOutcome,
}
