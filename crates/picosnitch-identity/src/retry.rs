//! EINTR retry for rustix calls, and the rustix to std error conversion.
use std::io;

/// Runs `f` until it returns something other than EINTR; converts the error to `io::Error`.
pub(crate) fn retry_eintr<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}
