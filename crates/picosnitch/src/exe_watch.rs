//! Change detection for executables with fanotify: a hashed executable is marked for
//! FAN_MODIFY and FAN_CLOSE_WRITE, so a binary rewritten in place (same path, inode,
//! size and even mtime) is hashed again on its next use instead of keeping the cached
//! hash. The group is made by the monitor at start (fanotify_init needs CAP_SYS_ADMIN)
//! and used by the primary (marking an inode through an open descriptor needs no
//! capability, only read access, which the primary has).
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// What the kernel said about the marked executables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This (st_dev, st_ino), as userspace sees them, was written to.
    Written { dev: u64, ino: u64 },
    /// The group's queue overflowed (or an event could not be read): any executable
    /// may have changed.
    Overflow,
}

/// A notification-class group; `None` (logged) when the kernel or privileges refuse.
pub fn create() -> Option<OwnedFd> {
    let flags = libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK;
    let event_flags = (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32;
    // SAFETY: fanotify_init takes two integer arguments and returns a new descriptor.
    let fd = unsafe { libc::fanotify_init(flags, event_flags) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(error = %e, "fanotify_init failed: a binary rewritten in place keeps its cached hash until its size or mtime changes");
        return None;
    }
    // SAFETY: fd is a new descriptor owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Watches the file behind `file` (an open descriptor of an executable) for writes.
pub fn mark(group: BorrowedFd<'_>, file: BorrowedFd<'_>) -> std::io::Result<()> {
    let mask = libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE;
    // SAFETY: both descriptors are open for the duration of the call; a null path
    // marks the inode of `file` itself.
    let rc = unsafe { libc::fanotify_mark(group.as_raw_fd(), libc::FAN_MARK_ADD, mask, file.as_raw_fd(), std::ptr::null()) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads every event waiting (the group is non-blocking), closing the descriptors the
/// kernel opened for them. Bounded: at most 64 reads per call.
pub fn read_changes(group: BorrowedFd<'_>) -> Vec<Change> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    for _ in 0..64 {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::read(group.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::WouldBlock {
                // The event is consumed even when its file could not be opened for us:
                // what changed is unknown, so everything may have.
                tracing::warn!(error = %e, "reading fanotify events failed; forgetting every cached hash");
                out.push(Change::Overflow);
            }
            break;
        }
        if n == 0 {
            break;
        }
        parse(&buf[..n as usize], &mut out);
    }
    out
}

const META_LEN: usize = std::mem::size_of::<libc::fanotify_event_metadata>();

fn parse(mut buf: &[u8], out: &mut Vec<Change>) {
    while buf.len() >= META_LEN {
        // SAFETY: at least META_LEN bytes; read_unaligned copes with any alignment.
        let meta: libc::fanotify_event_metadata = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
        let len = (meta.event_len as usize).clamp(META_LEN, buf.len());
        if meta.mask & libc::FAN_Q_OVERFLOW != 0 {
            out.push(Change::Overflow);
        }
        if meta.fd >= 0 {
            // SAFETY: the kernel installed this descriptor for us; we own and close it.
            let fd = unsafe { OwnedFd::from_raw_fd(meta.fd) };
            match rustix::fs::fstat(&fd) {
                Ok(st) => out.push(Change::Written { dev: st.st_dev, ino: st.st_ino }),
                Err(_) => out.push(Change::Overflow),
            }
        }
        buf = &buf[len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_write_to_a_marked_file_is_reported_with_its_identity() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            if std::env::var_os("CI").is_some() {
                panic!("needs root (fanotify_init needs CAP_SYS_ADMIN) and CI runs as root");
            }
            eprintln!("SKIPPED a_write_to_a_marked_file_is_reported_with_its_identity: fanotify_init needs root");
            return;
        }
        let group = create().expect("fanotify group");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("exe");
        std::fs::write(&path, b"#!/bin/sh\n").expect("write");
        let file = std::fs::File::open(&path).expect("open");
        mark(group.as_fd(), file.as_fd()).expect("mark");
        assert!(read_changes(group.as_fd()).is_empty(), "nothing before a write");
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).expect("open for write");
        w.write_all(b"#!/bin/bash").expect("rewrite in place");
        drop(w);
        let md = std::fs::metadata(&path).expect("stat");
        let changes = read_changes(group.as_fd());
        assert!(changes.contains(&Change::Written { dev: md.dev(), ino: md.ino() }), "{changes:?}");
    }
}
