//! The whole body of the hasher process: it never opens a path, it only hashes the
//! files it is handed.
use crate::fdpass::{recv_fd, send_hash_reply};
use crate::hash::sha256_fd;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

/// Serves hash requests until the other end closes.
pub fn serve_hasher(sock: UnixStream) -> std::io::Result<()> {
    while let Some((id, fd)) = recv_fd(&sock)? {
        let reply = sha256_fd(fd.as_fd()).map_err(|e| format!("reading the executable: {e}"));
        drop(fd);
        send_hash_reply(&sock, id, &reply)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdpass::{recv_hash_reply, send_fd};

    #[test]
    fn hashes_what_it_is_sent() {
        let (a, b) = UnixStream::pair().expect("pair");
        let server = std::thread::spawn(move || serve_hasher(b));
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, content) in [&b""[..], b"abc", &[7u8; 300_000]].iter().enumerate() {
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, content).expect("write");
            let f = std::fs::File::open(&p).expect("open");
            send_fd(&a, f.as_fd(), i as u64).expect("send");
            let (id, reply) = recv_hash_reply(&a).expect("reply").expect("some");
            assert_eq!(id, i as u64);
            let want = crate::hash::sha256_fd(f.as_fd()).expect("local hash");
            assert_eq!(reply, Ok(want));
        }
        // Independent check of one digest: sha256("abc") from FIPS 180-2.
        let f = std::fs::File::open(dir.path().join("f1")).expect("open");
        send_fd(&a, f.as_fd(), 9).expect("send");
        let (_, reply) = recv_hash_reply(&a).expect("reply").expect("some");
        assert_eq!(reply, Ok("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string()));
        drop(a);
        server.join().expect("thread").expect("clean end");
    }

}
