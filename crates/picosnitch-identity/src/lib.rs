//! Who made a connection: the identity of a process's executable.
//!
//! - [`exe`]: open a process's binary and check it is the very file the kernel saw at
//!   exec time (device and inode), so a replaced binary is never hashed in its place.
//! - [`hash`]: sha256 of an open file descriptor.
//! - [`fdpass`]: hand descriptors to the hasher process over a unix socket (SCM_RIGHTS)
//!   and read its replies.
//! - [`hasher_role`]: the hasher process's whole body; it never opens a path, so it can
//!   run with no filesystem access.
//! - [`cache`]: sha256 by (dev, ino, size, mtime) so an unchanged binary is hashed once.
//! - [`procfs`]: `/proc/<pid>` readers (cmdline, stat, status, exe link, pid list).
pub mod cache;
pub mod exe;
pub mod fdpass;
pub mod hash;
pub mod hasher_role;
pub mod procfs;

mod retry;

pub use cache::{CacheKey, HashCache};
pub use exe::{
    detect_dev_mask, dev_mask_for, open_verified, ExeIdentity, ExeOpenError, ExeSource, Opened,
    Verified,
};
pub use fdpass::{recv_fd, recv_hash_reply, send_fd, send_hash_reply, HashReply};
pub use hash::sha256_fd;
pub use hasher_role::serve_hasher;
pub use procfs::{ExeLink, ProcError, ProcStat, Uids};
