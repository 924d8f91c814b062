/// Why `top` or `tui` could not run at all. Conditions the user can fix while the UI is
/// open (no daemon, no database yet, no permission) are shown on screen instead.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("{step}: {source}")]
    Terminal { step: &'static str, source: std::io::Error },
    /// The caller's sandbox could not be applied; the UI does not run unconfined.
    #[error("confining the terminal UI: {0}")]
    Confine(String),
}
