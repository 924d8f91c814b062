use std::path::PathBuf;

/// Errors of the daemon side.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{step}{}: {source}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Io { step: &'static str, path: Option<PathBuf>, source: std::io::Error },
    #[error("live feed socket {path} is in use by a running process (another picosnitch daemon?)")]
    InUse { path: PathBuf },
    #[error("live feed path {path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: PathBuf },
}
