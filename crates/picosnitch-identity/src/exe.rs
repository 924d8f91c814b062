//! Opening the executable the kernel reported, and proving it is the same file.
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The opened executable, checked against the kernel's (device, inode).
#[derive(Debug)]
pub struct Verified {
    pub fd: OwnedFd,
    pub size: u64,
    pub mtime_ns: i128,
    /// Where it was opened from (/proc/PID/exe or the path).
    pub opened: PathBuf,
}

#[derive(Debug)]
pub enum OpenOutcome {
    Verified(Verified),
    /// Something else lives at the path now: the binary was replaced after exec.
    Mismatch { found_dev: u64, found_ino: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("process {tgid} has exited and no path to its executable is known")]
    Vanished { tgid: u32 },
    #[error("opening {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
}

/// Opens the executable of `tgid`, first through /proc/TGID/exe (the very file even
/// when it was deleted or replaced), then by `path`. `want_dev` is in userspace
/// encoding; `dev_mask` is 0 on filesystems whose st_dev differs from the kernel's
/// s_dev (btrfs subvolumes).
pub fn open_verified(tgid: u32, want_dev: u64, want_ino: u64, path: &Path, dev_mask: u64) -> Result<OpenOutcome, OpenError> {
    let proc_exe = PathBuf::from(format!("/proc/{tgid}/exe"));
    let mut mismatch = None;
    let mut last_err = None;
    let candidates: Vec<&Path> = if path.as_os_str().is_empty() { vec![&proc_exe] } else { vec![&proc_exe, path] };
    for candidate in candidates {
        let file = match File::open(candidate) {
            Ok(f) => f,
            Err(e) => {
                last_err = Some(OpenError::Open { path: candidate.to_path_buf(), source: e });
                continue;
            }
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => {
                last_err = Some(OpenError::Open { path: candidate.to_path_buf(), source: e });
                continue;
            }
        };
        if meta.ino() == want_ino && (meta.dev() & dev_mask) == (want_dev & dev_mask) {
            let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
            return Ok(OpenOutcome::Verified(Verified { fd: file.into(), size: meta.len(), mtime_ns, opened: candidate.to_path_buf() }));
        }
        // /proc/PID/exe of a reused pid, or a replaced file at the path.
        mismatch = Some(OpenOutcome::Mismatch { found_dev: meta.dev(), found_ino: meta.ino() });
    }
    if let Some(m) = mismatch {
        return Ok(m);
    }
    Err(match last_err {
        Some(OpenError::Open { path: p, source }) if path.as_os_str().is_empty() && source.kind() == std::io::ErrorKind::NotFound && p == proc_exe => {
            OpenError::Vanished { tgid }
        }
        Some(e) => e,
        None => OpenError::Vanished { tgid },
    })
}

const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;

/// The device mask for executables under `path`: 0 on btrfs, whose st_dev names a
/// subvolume's anonymous device rather than the superblock's s_dev the kernel reports.
pub fn dev_mask_for(path: &Path) -> u64 {
    match rustix::fs::statfs(path) {
        Ok(st) if st.f_type as i64 == BTRFS_SUPER_MAGIC => 0,
        _ => u64::MAX,
    }
}

/// The mask for this machine, judged by the filesystems holding / and /usr.
pub fn detect_dev_mask() -> u64 {
    dev_mask_for(Path::new("/")) & dev_mask_for(Path::new("/usr"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_executable_verifies_and_a_wrong_inode_does_not() {
        let me = std::fs::metadata("/proc/self/exe").expect("stat self");
        let pid = std::process::id();
        let path = std::fs::read_link("/proc/self/exe").expect("readlink");
        match open_verified(pid, me.dev(), me.ino(), &path, u64::MAX).expect("open") {
            OpenOutcome::Verified(v) => assert_eq!(v.size, me.len()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            open_verified(pid, me.dev(), me.ino() + 1, &path, u64::MAX).expect("open"),
            OpenOutcome::Mismatch { .. }
        ));
        // With mask 0 only the inode has to agree.
        assert!(matches!(open_verified(pid, 12345, me.ino(), &path, 0).expect("open"), OpenOutcome::Verified(_)));
    }

    #[test]
    fn vanished_process_without_path() {
        let err = open_verified(u32::MAX - 1, 0, 1, Path::new(""), u64::MAX).expect_err("no such pid");
        assert!(matches!(err, OpenError::Vanished { .. }), "{err}");
    }

    #[test]
    fn exited_process_is_opened_by_path() {
        let ls = std::fs::metadata("/bin/ls").expect("stat");
        let out = open_verified(u32::MAX - 1, ls.dev(), ls.ino(), Path::new("/bin/ls"), u64::MAX).expect("by path");
        assert!(matches!(out, OpenOutcome::Verified(v) if v.opened == Path::new("/bin/ls")));
    }
}
