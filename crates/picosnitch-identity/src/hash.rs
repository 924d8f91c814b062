use sha2::{Digest, Sha256};
use std::os::fd::BorrowedFd;

const CHUNK: usize = 256 * 1024;

/// sha256 of the whole file behind `fd` as lowercase hex. Reads with pread from offset
/// 0, so the fd's shared offset neither matters nor moves.
pub fn sha256_fd(fd: BorrowedFd<'_>) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        let n = match rustix::io::pread(fd, &mut buf, offset) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::process::Command;

    fn sha256sum(path: &std::path::Path) -> String {
        let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
    }

    #[test]
    fn matches_sha256sum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").expect("write");
        let big = dir.path().join("big");
        std::fs::write(&big, (0..(1 << 20) + 3).map(|i| (i % 251) as u8).collect::<Vec<_>>()).expect("write");
        for p in [empty.as_path(), big.as_path(), std::path::Path::new("/bin/ls")] {
            let f = std::fs::File::open(p).expect("open");
            assert_eq!(sha256_fd(f.as_fd()).expect("hash"), sha256sum(p), "{}", p.display());
        }
    }
}
