//! The hasher process: receives descriptors, answers with their sha256.
use crate::fdpass::{recv_fd, send_hash_reply};
use crate::hash::sha256_fd;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

/// The whole body of the hasher process: for each request on `sock` (see
/// [`crate::fdpass`]), hash the received descriptor, close it, and reply with the hex
/// sha256 or the error text. Returns `Ok(())` when the monitor closes its end.
///
/// Opens no path and touches no filesystem state: everything it reads arrives as a
/// descriptor, so it can run sandboxed with no filesystem access. A hashing failure is
/// a reply, not an exit; a broken or malformed stream is returned as an error.
pub fn serve_hasher(sock: UnixStream) -> io::Result<()> {
    let mut served: u64 = 0;
    loop {
        let Some((id, fd)) = recv_fd(&sock)? else {
            tracing::debug!(served, "hasher: monitor closed the socket");
            return Ok(());
        };
        let result = sha256_fd(fd.as_fd()).map_err(|e| e.to_string());
        drop(fd);
        if let Err(e) = &result {
            tracing::debug!(id, error = %e, "hasher: hashing failed");
        }
        send_hash_reply(&sock, id, result)?;
        served += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdpass::{recv_hash_reply, send_fd};
    use std::io::Write;
    use std::process::Command;

    fn sha256sum(path: &std::path::Path) -> String {
        let out = Command::new("sha256sum")
            .arg(path)
            .output()
            .expect("run sha256sum");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .split_whitespace()
            .next()
            .expect("hash")
            .to_owned()
    }

    #[test]
    fn end_to_end_three_files_and_an_error() {
        let (monitor, hasher) = UnixStream::pair().expect("socketpair");
        let server = std::thread::spawn(move || serve_hasher(hasher));

        let mut files = Vec::new();
        for (i, size) in [0usize, 1000, 300 * 1024].into_iter().enumerate() {
            let mut f = tempfile::NamedTempFile::new().expect("tempfile");
            f.write_all(&vec![i as u8 + 1; size]).expect("write");
            f.flush().expect("flush");
            files.push(f);
        }
        for (i, f) in files.iter().enumerate() {
            send_fd(&monitor, f.as_file().as_fd(), 100 + i as u64).expect("send");
        }
        // A pipe cannot be pread: the hasher replies with an error and keeps serving.
        let (r, _w) = std::io::pipe().expect("pipe");
        send_fd(&monitor, r.as_fd(), 200).expect("send pipe");

        for (i, f) in files.iter().enumerate() {
            let (id, res) = recv_hash_reply(&monitor).expect("recv").expect("reply");
            assert_eq!(id, 100 + i as u64);
            assert_eq!(res.expect("hash ok"), sha256sum(f.path()));
        }
        let (id, res) = recv_hash_reply(&monitor).expect("recv").expect("reply");
        assert_eq!(id, 200);
        assert!(res.is_err(), "pipe should fail to hash: {res:?}");

        drop(monitor);
        server
            .join()
            .expect("join")
            .expect("hasher exits cleanly on EOF");
    }
}
