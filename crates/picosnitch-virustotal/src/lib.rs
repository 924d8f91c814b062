//! picosnitch's VirusTotal v3 client: what the `virustotal` role uses to ask about a
//! sha256 (`GET /api/v3/files/{sha256}`), to upload a file VirusTotal does not know
//! (`POST /api/v3/files`) and to follow that upload's analysis
//! (`GET /api/v3/analyses/{id}`).
//!
//! - [`api`]: the JSON shapes of those answers and of VirusTotal's errors.
//! - [`client`]: the HTTPS requests (ureq on rustls; TLS always verified).
//! - [`pacing`]: one request every `[virustotal] request_limit_seconds`, and longer
//!   waits after a quota error.
pub mod api;
pub mod client;
mod error;
pub mod pacing;

pub use api::{AnalysisState, Stats};
pub use client::{Client, ClientConfig, Lookup};
pub use error::VtError;
pub use pacing::Pacing;

/// Where the real service is.
pub const DEFAULT_API_URL: &str = "https://www.virustotal.com";

/// The largest file `POST /api/v3/files` takes (VirusTotal's limit for that endpoint;
/// bigger files need an upload URL, which this client does not use).
pub const MAX_SIMPLE_UPLOAD: u64 = 32 * 1024 * 1024;

#[cfg(feature = "fake-server")]
pub mod fake;
