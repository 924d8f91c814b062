//! picosnitch's live feed: every flow update as a line of JSON on a Unix socket.
//!
//! The daemon side binds (or adopts) the socket and publishes:
//!
//! ```no_run
//! # use picosnitch_feed::*;
//! # fn demo(update: FlowUpdate) -> Result<(), FeedError> {
//! let access = SocketAccess { mode: 0o660, gid: Some(977) };
//! let (server, hub) = FeedServer::bind("/run/picosnitch/events.sock".as_ref(), access, FeedLimits::default())?;
//! std::thread::spawn(move || async_io::block_on(server.run())); // or spawn on the daemon's executor
//! hub.publish(&update); // never waits
//! hub.close();          // readers see end-of-file; the socket file is removed
//! # Ok(()) }
//! ```
//!
//! Readers use [`FeedClient`], whose errors say what to do (start the daemon, join the
//! group).
//!
#![doc = include_str!("../FORMAT.md")]
mod client;
mod error;
mod group;
mod hub;
mod server;
mod update;

pub use client::{ConnectError, FeedClient, ReadError, DEFAULT_SOCKET, SOCKET_NAME};
pub use error::FeedError;
pub use group::owning_group;
pub use hub::{FeedHub, FeedLimits, FeedStats};
pub use server::{bind_listener, FeedServer, SocketAccess};
pub use update::{Direction, FeedNotice, FlowUpdate, UpdateKind, FORMAT_VERSION};
