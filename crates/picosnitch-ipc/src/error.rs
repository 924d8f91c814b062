use std::io;

#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("{what}: {source}")]
    Io { what: &'static str, source: io::Error },
    #[error("encoding a message: {0}")]
    Encode(postcard::Error),
    #[error("decoding a {len}-byte message: {source}; the roles are from different builds? restart the daemon")]
    Decode { len: usize, source: postcard::Error },
    #[error("a message of {len} bytes exceeds the link limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("a message arrived truncated (more than {limit} bytes, or more descriptors than expected)")]
    Truncated { limit: usize },
    #[error("expected {expected} descriptor(s) with the message, got {got}")]
    Descriptors { expected: usize, got: usize },
}

impl IpcError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(io::Error) -> IpcError {
        move |source| IpcError::Io { what, source }
    }

    /// The peer went away (it died or closed its end): expected during restarts.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, IpcError::Io { source, .. } if matches!(
            source.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
        ))
    }
}
