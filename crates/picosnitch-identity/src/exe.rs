//! Opening a process's executable and proving it is the file the kernel exec'd.
//!
//! The kernel reports, at exec time, the (device, inode) of the binary and its path.
//! Between then and now the binary may have been replaced (package upgrade), so we never
//! hash "whatever is at the path": we open, fstat the descriptor, and only hand it out if
//! its (device, inode) is the kernel's. The descriptor, not the path, is then hashed.
use crate::procfs;
use rustix::fs::{Mode, OFlags};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `BTRFS_SUPER_MAGIC` from linux/magic.h.
pub const BTRFS_SUPER_MAGIC: u32 = 0x9123_683E;

/// Bits of the minor number in the kernel's internal `dev_t` (`MINORBITS`).
const KERNEL_MINOR_BITS: u32 = 20;
const KERNEL_MINOR_MASK: u64 = (1 << KERNEL_MINOR_BITS) - 1;

/// A binary as the kernel names it: `dev` in the kernel's internal encoding
/// (`major << 20 | minor`, what BPF reads from `inode->i_sb->s_dev`) and the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExeIdentity {
    pub dev: u64,
    pub ino: u64,
}

impl ExeIdentity {
    /// From a userspace `st_dev` (glibc `makedev` encoding) and inode.
    pub fn from_user_dev(st_dev: u64, ino: u64) -> Self {
        Self {
            dev: kernel_dev_from_user(st_dev),
            ino,
        }
    }

    /// Device major number.
    pub fn major(&self) -> u32 {
        // The kernel's major is 12 bits; anything above is not a valid encoding anyway.
        u32::try_from(self.dev >> KERNEL_MINOR_BITS).unwrap_or(u32::MAX)
    }

    /// Device minor number.
    pub fn minor(&self) -> u32 {
        // Masked to 20 bits, always fits.
        u32::try_from(self.dev & KERNEL_MINOR_MASK).unwrap_or(u32::MAX)
    }

    /// Same inode, and the same device under `dev_mask` (see [`detect_dev_mask`]).
    pub fn matches(&self, other: &ExeIdentity, dev_mask: u64) -> bool {
        self.ino == other.ino && (self.dev & dev_mask) == (other.dev & dev_mask)
    }
}

/// Userspace `st_dev` (glibc/`makedev` encoding) to the kernel's `major << 20 | minor`.
pub fn kernel_dev_from_user(st_dev: u64) -> u64 {
    let major = u64::from(rustix::fs::major(st_dev));
    let minor = u64::from(rustix::fs::minor(st_dev));
    (major << KERNEL_MINOR_BITS) | (minor & KERNEL_MINOR_MASK)
}

/// The kernel's `major << 20 | minor` to a userspace `st_dev` (`makedev`).
pub fn user_dev_from_kernel(kernel_dev: u64) -> u64 {
    let id = ExeIdentity {
        dev: kernel_dev,
        ino: 0,
    };
    rustix::fs::makedev(id.major(), id.minor())
}

/// Which path yielded the verified descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeSource {
    /// `/proc/<tgid>/exe`: works even if the binary was deleted or renamed.
    ProcExe,
    /// The path the kernel reported.
    Path,
}

/// A read-only, close-on-exec descriptor of the very binary the kernel reported.
#[derive(Debug)]
pub struct Verified {
    pub fd: OwnedFd,
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// The kernel-reported path if it was given, else the target of `/proc/<tgid>/exe`
    /// (without " (deleted)"); empty if neither is known.
    pub path: PathBuf,
    pub source: ExeSource,
}

/// What [`open_verified`] found.
#[derive(Debug)]
pub enum Opened {
    Verified(Verified),
    /// A file was opened but it is not the kernel's binary (replaced since exec, or the
    /// pid now runs something else). Record it as such; never hash it in its place.
    /// `found_dev` is in the kernel encoding. `path` is what was opened last.
    Mismatch {
        found_dev: u64,
        found_ino: u64,
        path: PathBuf,
    },
}

/// Neither `/proc/<tgid>/exe` nor the kernel path could be opened.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ExeOpenError {
    pub tgid: u32,
    /// The kernel-reported path (may be empty: then it was not tried).
    pub path: PathBuf,
    pub proc_error: io::Error,
    /// `None` if the path was empty and so not tried.
    pub path_error: Option<io::Error>,
}

impl ExeOpenError {
    /// The process is gone and its binary with it (or no path to fall back on): every
    /// attempt failed with NotFound or ESRCH. Worth counting, not worth a warning.
    pub fn is_vanished(&self) -> bool {
        procfs::is_vanished_io(&self.proc_error)
            && self.path_error.as_ref().is_none_or(procfs::is_vanished_io)
    }

    /// The binary is at its path but this process may not open it, even with
    /// CAP_DAC_READ_SEARCH: a FUSE mount without `allow_other` refuses every user but
    /// its owner (root included), who may be able to hash it. Judged by the path alone:
    /// `/proc/<tgid>/exe` is refused for other reasons too (Landlock's ptrace check).
    pub fn is_denied(&self) -> bool {
        self.path_error.as_ref().is_some_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "cannot open executable of pid {}: /proc/{}/exe: {}",
            self.tgid, self.tgid, self.proc_error
        );
        if let Some(e) = &self.path_error {
            s.push_str(&format!("; {}: {e}", self.path.display()));
        }
        s
    }
}

impl fmt::Display for ExeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExeSource::ProcExe => "/proc/<tgid>/exe",
            ExeSource::Path => "kernel path",
        })
    }
}

/// Opens the executable of `tgid` that the kernel reported as `expected` (dev in kernel
/// encoding) at `kernel_path` (may be empty), and verifies it by fstat.
///
/// Tries `/proc/<tgid>/exe` first, then `kernel_path`. Each is opened
/// `O_RDONLY|O_CLOEXEC|O_NOCTTY|O_NONBLOCK` (non-blocking so a FIFO planted at the path
/// cannot hang us; it has no effect on regular files). The first whose (dev under
/// `dev_mask`, ino) equals `expected` is returned as [`Opened::Verified`]. If something
/// was opened but nothing matched, [`Opened::Mismatch`] with the last one found. If
/// nothing could be opened, [`ExeOpenError`] naming both attempts.
pub fn open_verified(
    tgid: u32,
    expected: ExeIdentity,
    kernel_path: &Path,
    dev_mask: u64,
) -> Result<Opened, ExeOpenError> {
    let proc_path = PathBuf::from(format!("/proc/{tgid}/exe"));
    let mut mismatch = None;

    let proc_error = match open_and_stat(&proc_path) {
        Ok((fd, found, size, mtime_ns)) => {
            if found.matches(&expected, dev_mask) {
                let path = if kernel_path.as_os_str().is_empty() {
                    procfs::read_exe_link(tgid)
                        .map(|l| l.path)
                        .unwrap_or_default()
                } else {
                    kernel_path.to_path_buf()
                };
                return Ok(Opened::Verified(Verified {
                    fd,
                    size,
                    mtime_ns,
                    path,
                    source: ExeSource::ProcExe,
                }));
            }
            let path = if kernel_path.as_os_str().is_empty() {
                procfs::read_exe_link(tgid)
                    .map(|l| l.path)
                    .unwrap_or(proc_path.clone())
            } else {
                kernel_path.to_path_buf()
            };
            mismatch = Some((found, path));
            None
        }
        Err(e) => Some(e),
    };

    let path_error = if kernel_path.as_os_str().is_empty() {
        None
    } else {
        match open_and_stat(kernel_path) {
            Ok((fd, found, size, mtime_ns)) => {
                if found.matches(&expected, dev_mask) {
                    return Ok(Opened::Verified(Verified {
                        fd,
                        size,
                        mtime_ns,
                        path: kernel_path.to_path_buf(),
                        source: ExeSource::Path,
                    }));
                }
                mismatch = Some((found, kernel_path.to_path_buf()));
                None
            }
            Err(e) => Some(e),
        }
    };

    match (mismatch, proc_error) {
        (Some((found, path)), _) => Ok(Opened::Mismatch {
            found_dev: found.dev,
            found_ino: found.ino,
            path,
        }),
        (None, Some(proc_error)) => Err(ExeOpenError {
            tgid,
            path: kernel_path.to_path_buf(),
            proc_error,
            path_error,
        }),
        // Unreachable: no mismatch means the proc attempt failed. Kept total anyway.
        (None, None) => Err(ExeOpenError {
            tgid,
            path: kernel_path.to_path_buf(),
            proc_error: io::Error::other("no attempt made"),
            path_error,
        }),
    }
}

/// Opens `path` read-only and returns the descriptor with its identity, size, mtime (ns).
/// Non-blocking, like [`open_verified`]'s attempts.
pub fn open_and_stat(path: &Path) -> io::Result<(OwnedFd, ExeIdentity, u64, i64)> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let fd = crate::retry::retry_eintr(|| rustix::fs::open(path, flags, Mode::empty()))?;
    let file = File::from(fd);
    let md = file.metadata()?;
    let identity = ExeIdentity::from_user_dev(md.dev(), md.ino());
    let mtime_ns = md
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(md.mtime_nsec());
    Ok((OwnedFd::from(file), identity, md.size(), mtime_ns))
}

/// The device mask for binaries under `path`: 0 on btrfs (whose `st_dev` is a per-subvolume
/// anonymous device, not the superblock's `s_dev` the kernel reports), else all ones.
pub fn dev_mask_for(path: &Path) -> io::Result<u64> {
    let st = crate::retry::retry_eintr(|| rustix::fs::statfs(path))?;
    // f_type is a signed word; compare its low 32 bits (the magics are 32-bit).
    #[allow(clippy::unnecessary_cast)]
    let magic = (st.f_type as u64) & 0xffff_ffff;
    Ok(if magic == u64::from(BTRFS_SUPER_MAGIC) {
        0
    } else {
        u64::MAX
    })
}

/// [`dev_mask_for`] of `/`; all ones (compare devices) if `/` cannot be statfs'd.
pub fn detect_dev_mask() -> u64 {
    match dev_mask_for(Path::new("/")) {
        Ok(mask) => mask,
        Err(e) => {
            tracing::warn!(error = %e, "statfs(\"/\") failed; comparing devices in full");
            u64::MAX
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_exe_identity() -> ExeIdentity {
        let md = std::fs::metadata("/proc/self/exe").expect("stat /proc/self/exe");
        ExeIdentity::from_user_dev(md.dev(), md.ino())
    }

    /// A pid that existed and is now gone (reaped).
    fn vanished_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        pid
    }

    #[test]
    fn dev_encoding_round_trips() {
        for (maj, min) in [(8u32, 1u32), (259, 0x12345), (0, 42), (4095, 0xfffff)] {
            let user = rustix::fs::makedev(maj, min);
            let k = kernel_dev_from_user(user);
            assert_eq!(k, (u64::from(maj) << 20) | u64::from(min));
            let id = ExeIdentity { dev: k, ino: 1 };
            assert_eq!((id.major(), id.minor()), (maj, min));
            assert_eq!(user_dev_from_kernel(k), user);
        }
    }

    #[test]
    fn own_process_verifies() {
        let expected = own_exe_identity();
        let opened = open_verified(std::process::id(), expected, Path::new(""), u64::MAX)
            .expect("open own exe");
        let Opened::Verified(v) = opened else {
            panic!("expected Verified, got {opened:?}");
        };
        assert_eq!(v.source, ExeSource::ProcExe);
        let md = File::from(v.fd).metadata().expect("fstat");
        assert_eq!(ExeIdentity::from_user_dev(md.dev(), md.ino()), expected);
        assert_eq!(v.size, md.size());
        assert_eq!(
            v.path,
            std::fs::read_link("/proc/self/exe").expect("readlink")
        );
        assert!(v.mtime_ns > 0);
    }

    #[test]
    fn received_fd_is_cloexec() {
        let opened = open_verified(
            std::process::id(),
            own_exe_identity(),
            Path::new(""),
            u64::MAX,
        )
        .expect("open");
        let Opened::Verified(v) = opened else {
            panic!("expected Verified");
        };
        let flags = rustix::io::fcntl_getfd(&v.fd).expect("getfd");
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }

    #[test]
    fn wrong_ino_is_mismatch() {
        let real = own_exe_identity();
        let wrong = ExeIdentity {
            dev: real.dev,
            ino: real.ino.wrapping_add(1),
        };
        let exe = std::env::current_exe().expect("current_exe");
        match open_verified(std::process::id(), wrong, &exe, u64::MAX).expect("open") {
            Opened::Mismatch {
                found_dev,
                found_ino,
                path,
            } => {
                assert_eq!((found_dev, found_ino), (real.dev, real.ino));
                assert_eq!(path, exe);
            }
            other => panic!("expected Mismatch, got {other:?}"),
        }
    }

    #[test]
    fn dev_mask_zero_ignores_device() {
        let real = own_exe_identity();
        let other_dev = ExeIdentity {
            dev: real.dev ^ 0x7,
            ino: real.ino,
        };
        let pid = std::process::id();
        assert!(matches!(
            open_verified(pid, other_dev, Path::new(""), u64::MAX),
            Ok(Opened::Mismatch { .. })
        ));
        assert!(matches!(
            open_verified(pid, other_dev, Path::new(""), 0),
            Ok(Opened::Verified(_))
        ));
    }

    #[test]
    fn falls_back_to_path_when_process_is_gone() {
        let exe = std::env::current_exe().expect("current_exe");
        let opened = open_verified(vanished_pid(), own_exe_identity(), &exe, u64::MAX)
            .expect("open via path");
        match opened {
            Opened::Verified(v) => {
                assert_eq!(v.source, ExeSource::Path);
                assert_eq!(v.path, exe);
            }
            other => panic!("expected Verified, got {other:?}"),
        }
    }

    #[test]
    fn only_a_refused_path_is_denied() {
        let err = |proc_kind, path_kind: Option<io::ErrorKind>| ExeOpenError {
            tgid: 1,
            path: PathBuf::from("/run/user/1000/mnt/app"),
            proc_error: io::Error::from(proc_kind),
            path_error: path_kind.map(io::Error::from),
        };
        use io::ErrorKind::{NotFound, PermissionDenied};
        assert!(err(PermissionDenied, Some(PermissionDenied)).is_denied());
        assert!(err(NotFound, Some(PermissionDenied)).is_denied());
        // /proc/PID/exe refused (Landlock) but the path is simply not there: nothing
        // the desktop user could open either.
        assert!(!err(PermissionDenied, Some(NotFound)).is_denied());
        assert!(!err(PermissionDenied, None).is_denied());
    }

    #[test]
    fn vanished_process_and_path_is_a_vanished_error() {
        let pid = vanished_pid();
        let err = open_verified(
            pid,
            own_exe_identity(),
            Path::new("/nonexistent/picosnitch-test-binary"),
            u64::MAX,
        )
        .expect_err("nothing to open");
        assert!(err.is_vanished(), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("/proc/{pid}/exe")), "{msg}");
        assert!(msg.contains("/nonexistent/picosnitch-test-binary"), "{msg}");

        let err = open_verified(pid, own_exe_identity(), Path::new(""), u64::MAX)
            .expect_err("nothing to open");
        assert!(err.is_vanished(), "{err}");
        assert!(err.path_error.is_none());
    }

    #[test]
    fn dev_mask_of_root_is_all_ones_or_zero() {
        let m = dev_mask_for(Path::new("/")).expect("statfs /");
        assert!(m == 0 || m == u64::MAX);
        assert_eq!(detect_dev_mask(), m);
        assert!(dev_mask_for(Path::new("/nonexistent/x")).is_err());
    }
}
