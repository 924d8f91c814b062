use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{} is not a spool segment this picosnitch can read (it starts with {found:?}); move it away if it does not belong there", path.display())]
    Foreign { path: PathBuf, found: Vec<u8> },
    #[error("a record of {len} bytes is larger than a spool record may be ({max})")]
    TooLarge { len: usize, max: usize },
}

impl SpoolError {
    pub(crate) fn io<'a>(what: &'static str, path: &'a std::path::Path) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
        move |source| SpoolError::Io { what, path: path.to_path_buf(), source }
    }
}
