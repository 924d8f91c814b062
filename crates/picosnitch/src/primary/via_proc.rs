//! Executables the primary cannot open by path, asked of the opener role, which opens
//! `/proc/PID/exe` (the primary cannot: Landlock refuses ptrace-mode access across
//! domains). A binary deleted or replaced after its process started, or one in another
//! mount namespace, is hashed this way while its process still runs.
//!
//! The opener's descriptor is checked again here, by fstat, against the kernel's
//! (device, inode): the primary never hashes a file it did not ask for, whatever the
//! opener sends.
use super::identity::{Exe, ExeInfo, Sha};
use picosnitch_identity::exe::ExeIdentity;
use picosnitch_ipc::events::FileId;
use picosnitch_ipc::opening::{OpenReply, OpenRequest, Outcome};
use picosnitch_ipc::status::PrimaryStatus;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// Requests waiting or in flight; beyond this an executable keeps its path failure.
const MAX_PENDING: usize = 256;
/// An answer later than this is given up on (the rows wait for hashes far longer).
const ANSWER_WAIT: Duration = Duration::from_secs(5);

struct Pending {
    request: OpenRequest,
    exe: Weak<RefCell<ExeInfo>>,
    /// What the executable is recorded as if the opener cannot open it either.
    fallback: &'static str,
    asked: Instant,
    sent: bool,
}

/// A descriptor the opener found and the primary verified.
pub struct OpenedViaProc {
    pub exe: Exe,
    /// The kernel's (device, inode) that was asked for.
    pub file: FileId,
    pub fd: OwnedFd,
    pub size: u64,
    pub mtime_ns: i64,
}

#[derive(Default)]
pub struct ProcExeRequests {
    pending: HashMap<u64, Pending>,
    queue: VecDeque<u64>,
    next_id: u64,
    linked: bool,
}

impl ProcExeRequests {
    /// Asks the opener for `tgid`'s executable, if one is linked and the queue has room:
    /// the identity's sha256 is pending until it answers.
    pub fn ask(&mut self, tgid: u32, file: FileId, dev_mask: u64, exe: &Exe, fallback: &'static str) -> Option<Sha> {
        if !self.linked || tgid == 0 || self.pending.len() >= MAX_PENDING {
            return None;
        }
        self.next_id += 1;
        let id = self.next_id;
        // The kernel's device numbers fit 32 bits (12 major, 20 minor), and so does any
        // mask that matters.
        let request = OpenRequest { id, pid: tgid, dev: file.dev, ino: file.ino, dev_mask: u32::try_from(dev_mask).unwrap_or(u32::MAX) };
        self.pending.insert(id, Pending { request, exe: Rc::downgrade(exe), fallback, asked: Instant::now(), sent: false });
        self.queue.push_back(id);
        Some(Sha::Pending)
    }

    /// The next request to send.
    pub fn next_request(&mut self) -> Option<OpenRequest> {
        while let Some(id) = self.queue.pop_front() {
            if let Some(p) = self.pending.get_mut(&id) {
                p.sent = true;
                return Some(p.request);
            }
        }
        None
    }

    pub fn outstanding(&self) -> usize {
        self.pending.values().filter(|p| p.sent).count()
    }

    /// A new opener: what the old one never answered is asked again.
    pub fn linked(&mut self) {
        self.linked = true;
        let mut ids: Vec<u64> = self.pending.iter().filter(|(_, p)| p.sent).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        for id in ids.into_iter().rev() {
            if let Some(p) = self.pending.get_mut(&id) {
                p.sent = false;
            }
            self.queue.push_front(id);
        }
    }

    /// The opener is gone: new failures keep their path outcome until its replacement.
    pub fn unlinked(&mut self) {
        self.linked = false;
    }

    /// The opener's answer. A descriptor is returned only if it is the kernel's file.
    pub fn answered(&mut self, reply: OpenReply, fds: Vec<OwnedFd>, dev_mask: u64, status: &mut PrimaryStatus) -> Option<OpenedViaProc> {
        let p = self.pending.remove(&reply.id)?;
        let exe = p.exe.upgrade();
        let mut fds = fds.into_iter();
        let fd = fds.next();
        let failed = |status: &mut PrimaryStatus, why: &str| {
            status.exe_proc_failed += 1;
            tracing::warn!(pid = p.request.pid, why, "the opener's answer is refused");
        };
        if fds.next().is_some() {
            failed(status, "more than one descriptor");
            fail(exe.as_ref(), p.fallback, status);
            return None;
        }
        match (reply.outcome, fd) {
            (Outcome::Opened, Some(fd)) => {
                let st = match rustix::fs::fstat(&fd) {
                    Ok(st) => st,
                    Err(e) => {
                        failed(status, &format!("fstat: {e}"));
                        fail(exe.as_ref(), p.fallback, status);
                        return None;
                    }
                };
                let found = ExeIdentity::from_user_dev(st.st_dev, st.st_ino);
                let expected = ExeIdentity { dev: u64::from(p.request.dev), ino: p.request.ino };
                let regular = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
                if !regular || !found.matches(&expected, dev_mask) {
                    failed(status, "not the file asked for");
                    fail(exe.as_ref(), p.fallback, status);
                    return None;
                }
                status.exe_opened_via_proc += 1;
                tracing::debug!(pid = p.request.pid, answered_us = p.asked.elapsed().as_micros() as u64, "executable opened through /proc/PID/exe");
                let mtime_ns = st.st_mtime.saturating_mul(1_000_000_000).saturating_add(i64::try_from(st.st_mtime_nsec).unwrap_or(0));
                let size = u64::try_from(st.st_size).unwrap_or(0);
                exe.map(|exe| OpenedViaProc { exe, file: FileId { dev: p.request.dev, ino: p.request.ino }, fd, size, mtime_ns })
            }
            (Outcome::Opened, None) => {
                failed(status, "opened, but no descriptor came");
                fail(exe.as_ref(), p.fallback, status);
                None
            }
            (outcome, _) => {
                match outcome {
                    Outcome::Gone => status.exe_proc_gone += 1,
                    Outcome::Mismatch => status.exe_proc_mismatch += 1,
                    _ => {
                        status.exe_proc_failed += 1;
                        tracing::warn!(pid = p.request.pid, error = %std::io::Error::from_raw_os_error(reply.errno), "the opener cannot open /proc/PID/exe");
                    }
                }
                fail(exe.as_ref(), p.fallback, status);
                None
            }
        }
    }

    /// Gives up on answers that are late.
    pub fn expire(&mut self, status: &mut PrimaryStatus) {
        let late: Vec<u64> = self.pending.iter().filter(|(_, p)| p.asked.elapsed() > ANSWER_WAIT).map(|(id, _)| *id).collect();
        if !late.is_empty() {
            tracing::warn!(requests = late.len(), "the opener did not answer in time; those executables keep their path's outcome");
        }
        for id in late {
            if let Some(p) = self.pending.remove(&id) {
                status.exe_proc_failed += 1;
                fail(p.exe.upgrade().as_ref(), p.fallback, status);
            }
        }
    }
}

/// Records the path's outcome after all (`!replaced` counts as a replaced executable,
/// as it did before the opener was asked).
fn fail(exe: Option<&Exe>, fallback: &'static str, status: &mut PrimaryStatus) {
    if fallback == super::identity::SHA_REPLACED {
        status.exe_replaced += 1;
    }
    if let Some(exe) = exe {
        exe.borrow_mut().sha256 = Sha::Known(fallback.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    fn exe() -> Exe {
        Rc::new(RefCell::new(ExeInfo { exe: "/x".into(), cmdline: String::new(), sha256: Sha::Pending }))
    }

    fn own_file() -> (FileId, std::fs::File) {
        let f = std::fs::File::open("/proc/self/exe").expect("own exe");
        let md = f.metadata().expect("stat");
        let dev = picosnitch_identity::exe::kernel_dev_from_user(md.dev()) as u32;
        (FileId { dev, ino: md.ino() }, f)
    }

    #[test]
    fn nothing_is_asked_without_an_opener() {
        let mut r = ProcExeRequests::default();
        assert_eq!(r.ask(42, FileId { dev: 1, ino: 2 }, u64::MAX, &exe(), "!replaced"), None);
        r.linked();
        assert_eq!(r.ask(0, FileId { dev: 1, ino: 2 }, u64::MAX, &exe(), "!replaced"), None, "not for pid 0");
    }

    #[test]
    fn only_the_file_asked_for_is_taken() {
        let mut r = ProcExeRequests::default();
        let mut st = PrimaryStatus::default();
        r.linked();
        let (file, f) = own_file();
        let good = exe();
        assert_eq!(r.ask(7, file, u64::MAX, &good, "!replaced"), Some(Sha::Pending));
        let req = r.next_request().expect("request");
        assert_eq!((req.pid, req.dev, req.ino), (7, file.dev, file.ino));
        let fd = f.as_fd().try_clone_to_owned().expect("dup");
        let opened = r.answered(OpenReply { id: req.id, outcome: Outcome::Opened, errno: 0 }, vec![fd], u64::MAX, &mut st).expect("verified");
        assert!(Rc::ptr_eq(&opened.exe, &good));
        assert_eq!(st.exe_opened_via_proc, 1);

        // Another file than the one asked for: refused, the fallback is recorded.
        let wrong = exe();
        r.ask(8, FileId { dev: file.dev, ino: file.ino + 1 }, u64::MAX, &wrong, "!replaced");
        let req = r.next_request().expect("request");
        let fd = f.as_fd().try_clone_to_owned().expect("dup");
        assert!(r.answered(OpenReply { id: req.id, outcome: Outcome::Opened, errno: 0 }, vec![fd], u64::MAX, &mut st).is_none());
        assert_eq!(wrong.borrow().sha256, Sha::Known("!replaced".into()));
        assert_eq!((st.exe_proc_failed, st.exe_replaced), (1, 1));

        // A process gone.
        let gone = exe();
        r.ask(9, file, u64::MAX, &gone, "!unreadable");
        let req = r.next_request().expect("request");
        assert!(r.answered(OpenReply { id: req.id, outcome: Outcome::Gone, errno: libc::ESRCH }, vec![], u64::MAX, &mut st).is_none());
        assert_eq!(gone.borrow().sha256, Sha::Known("!unreadable".into()));
        assert_eq!(st.exe_proc_gone, 1);
    }

    #[test]
    fn a_new_opener_is_asked_again() {
        let mut r = ProcExeRequests::default();
        r.linked();
        let e = exe();
        r.ask(7, FileId { dev: 1, ino: 2 }, u64::MAX, &e, "!replaced");
        let first = r.next_request().expect("request");
        assert_eq!(r.outstanding(), 1);
        r.unlinked();
        r.linked();
        assert_eq!(r.next_request().map(|q| q.id), Some(first.id));
    }
}
