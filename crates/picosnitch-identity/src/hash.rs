//! sha256 of an open file descriptor.
use crate::retry::retry_eintr;
use sha2::{Digest, Sha256};
use std::io;
use std::os::fd::BorrowedFd;

/// Bytes read per pread.
const CHUNK: usize = 256 * 1024;

/// The sha256 of everything in `fd`, as 64 lowercase hex digits.
///
/// Reads with `pread` from offset 0, so the descriptor's file offset (which may be
/// shared with another process after fd passing) is neither used nor moved. Fails on a
/// descriptor that cannot be pread (pipe, socket: ESPIPE).
pub fn sha256_fd(fd: BorrowedFd<'_>) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut offset: u64 = 0;
    loop {
        let n = retry_eintr(|| rustix::io::pread(fd, &mut buf[..], offset))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "pread returned more than asked")
        })?;
        hasher.update(chunk);
        offset += n as u64;
    }
    Ok(to_hex(hasher.finalize().as_slice()))
}

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::fd::AsFd;
    use std::process::Command;

    fn sha256sum(path: &std::path::Path) -> String {
        let out = Command::new("sha256sum")
            .arg(path)
            .output()
            .expect("run sha256sum");
        assert!(out.status.success(), "sha256sum failed: {out:?}");
        let text = String::from_utf8(out.stdout).expect("utf-8 output");
        text.split_whitespace()
            .next()
            .expect("a hash in sha256sum output")
            .to_owned()
    }

    fn hash_path(path: &std::path::Path) -> String {
        let f = std::fs::File::open(path).expect("open");
        sha256_fd(f.as_fd()).expect("hash")
    }

    #[test]
    fn matches_sha256sum_of_bin_ls() {
        let p = std::path::Path::new("/bin/ls");
        assert_eq!(hash_path(p), sha256sum(p));
    }

    #[test]
    fn empty_file() {
        let f = tempfile::NamedTempFile::new().expect("tempfile");
        let h = hash_path(f.path());
        assert_eq!(
            h,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(h, sha256sum(f.path()));
    }

    #[test]
    fn one_mib_plus_three_and_offset_ignored() {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        let data: Vec<u8> = (0..(1024 * 1024 + 3))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        f.write_all(&data).expect("write");
        f.flush().expect("flush");
        // Leave the offset in the middle: pread must not care.
        f.as_file_mut().seek(SeekFrom::Start(12345)).expect("seek");
        let h = sha256_fd(f.as_file().as_fd()).expect("hash");
        assert_eq!(h, sha256sum(f.path()));
        assert_eq!(h.len(), 64);
        assert!(h
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn pipe_is_an_error() {
        let (r, _w) = std::io::pipe().expect("pipe");
        assert!(sha256_fd(r.as_fd()).is_err());
    }
}
