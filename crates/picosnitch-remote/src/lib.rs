//! picosnitch's remote history: an INSERT-only copy of the local history's four tables
//! on a PostgreSQL server, fed from the spool the writer fills.
//!
//! - [`schema`]: the tables and GRANTs (`picosnitch remote-schema`).
//! - [`settings`], [`tls`]: what the role reads before it confines itself.
//! - [`session`]: one logged-in connection; exactly-once delivery of batches.
//! - [`drain`]: the loop that moves the spool to the server through outages.
mod error;
pub mod drain;
pub mod schema;
pub mod session;
pub mod settings;
pub mod tls;

pub use error::RemoteError;
pub use session::{Delivered, Session};
pub use settings::Settings;
