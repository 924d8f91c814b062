//! The reading side, for `picosnitch top`, `tui` and the web UI: a blocking reader of
//! one connection, with errors that tell the user what to do.
use crate::update::{FlowUpdate, FORMAT_VERSION};
use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the daemon serves the feed unless `[data] runtime_dir` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/picosnitch/events.sock";

/// The file name of the feed socket inside the runtime directory.
pub const SOCKET_NAME: &str = "events.sock";

/// Why connecting failed, worded for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no picosnitch daemon is running (no live feed at {path}); start one with `sudo picosnitch daemon` or `systemctl start picosnitch`")]
    NoDaemon { path: PathBuf },
    #[error("permission denied opening the live feed {path}: join the `{group}` group (sudo usermod -aG {group} $USER, then log in again) or run as root")]
    PermissionDenied { path: PathBuf, group: String },
    #[error("connecting to the live feed {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Why reading stopped or a line was skipped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the daemon refused the connection: {0}")]
    Refused(String),
    #[error("the live feed speaks format version {found}, newer than this picosnitch knows ({known}); upgrade picosnitch")]
    Version { found: u32, known: u32 },
    /// One line did not parse; the next call reads on.
    #[error("malformed live feed line: {0}")]
    Malformed(serde_json::Error),
    #[error("reading the live feed: {0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// The read timeout set with [`FeedClient::set_read_timeout`] passed with no update:
    /// not an error of the feed; call again.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ReadError::Io(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
    }
}

pub struct FeedClient {
    reader: BufReader<UnixStream>,
    path: PathBuf,
    line: Vec<u8>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    v: u32,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    error: String,
}

/// The group that may read `path` (the history, the feed socket), for telling a user
/// which group to join; picosnitch's own if unknown or root.
fn group_of(path: &Path) -> String {
    crate::owning_group(path).filter(|g| g != "root").unwrap_or_else(|| "picosnitch".into())
}

impl FeedClient {
    pub fn connect(path: &Path) -> Result<FeedClient, ConnectError> {
        match UnixStream::connect(path) {
            Ok(stream) => Ok(FeedClient { reader: BufReader::new(stream), path: path.to_path_buf(), line: Vec::new() }),
            // No socket, or a socket nobody listens on (left by a daemon that died).
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
                Err(ConnectError::NoDaemon { path: path.to_path_buf() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(ConnectError::PermissionDenied { path: path.to_path_buf(), group: group_of(path) })
            }
            Err(source) => Err(ConnectError::Io { path: path.to_path_buf(), source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `None` blocks until a line arrives; with a timeout, reading returns
    /// `ReadError::Io` of kind `WouldBlock`/`TimedOut` when none came.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.reader.get_ref().set_read_timeout(timeout)
    }

    /// The next update; `Ok(None)` when the daemon closed the feed (it stopped, or
    /// dropped this reader for falling behind).
    pub fn next_update(&mut self) -> Result<Option<FlowUpdate>, ReadError> {
        loop {
            // A timeout mid-line keeps the partial line for the next call.
            let n = self.reader.read_until(b'\n', &mut self.line)?;
            if n == 0 || self.line.last() != Some(&b'\n') {
                // End of file, perhaps in the middle of a line: the daemon went away.
                self.line.clear();
                return Ok(None);
            }
            let line = std::mem::take(&mut self.line);
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let envelope: Envelope = serde_json::from_slice(text).map_err(ReadError::Malformed)?;
            if envelope.kind == "error" {
                return Err(ReadError::Refused(envelope.error));
            }
            if envelope.v != FORMAT_VERSION {
                return Err(ReadError::Version { found: envelope.v, known: FORMAT_VERSION });
            }
            return serde_json::from_slice(text).map(Some).map_err(ReadError::Malformed);
        }
    }
}
