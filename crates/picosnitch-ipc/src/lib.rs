//! The wire between picosnitch's roles.
//!
//! Every link is a `SOCK_SEQPACKET` Unix socketpair: each message arrives whole or not
//! at all, descriptors can travel with a message (executables to the hasher, new links
//! from the supervisor), and a closed peer reads as end of stream. Messages are serde
//! types encoded with postcard; [`Link`] pairs the two for one direction of traffic.
//!
//! - [`seqpacket`]: the socket, blocking and async.
//! - [`link`]: typed send/receive over it.
//! - [`control`], [`events`], [`hashing`], [`opening`], [`rows`], [`virustotal`], [`notices`], [`reverse_dns`]: what each link carries.
mod error;
pub mod control;
pub mod events;
pub mod hashing;
pub mod link;
pub mod notices;
pub mod opening;
pub mod reverse_dns;
pub mod rows;
pub mod seqpacket;
pub mod status;
pub mod virustotal;

pub use error::IpcError;
pub use link::Link;
pub use seqpacket::SeqPacket;

/// The largest encoded message any link carries. Well under the default socket buffer
/// (net.core.wmem_default, about 208 KiB), which bounds a SOCK_SEQPACKET message;
/// senders split longer payloads (row batches, event batches) to fit.
pub const MAX_MESSAGE: usize = 60 * 1024;
