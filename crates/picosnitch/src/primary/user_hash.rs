//! Executables the primary may not open (a FUSE mount without `allow_other` refuses
//! root too) go by path to the user-hasher role, which opens them as the desktop user.
//! This is its queue in the primary: requests by (device, inode), each shared by every
//! process waiting for it, repeated to a restarted user-hasher, and given up on
//! (`!hash-timeout`) if no answer comes at all.
//!
//! No hash is cached here: the primary cannot stat such a file, so it could not tell a
//! rewritten one. The user-hasher caches by (device, inode, size, mtime), as the
//! primary does for the files it opens. fanotify cannot watch these files either (the
//! mark needs read access, which the mount refuses root).
use super::identity::{Exe, ExeInfo, NewlyHashed, Sha, SHA_REPLACED, SHA_TIMEOUT, SHA_UNREADABLE};
use picosnitch_ipc::events::FileId;
use picosnitch_ipc::hashing::{UserHashOutcome, UserHashReply, UserHashRequest};
use picosnitch_ipc::status::PrimaryStatus;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// Requests waiting to be sent, at most (each one a path).
const MAX_QUEUED: usize = 512;

struct Pending {
    req: UserHashRequest,
    waiting: Vec<Weak<RefCell<ExeInfo>>>,
    sent: bool,
}

pub struct UserHashes {
    inflight: HashMap<u64, Pending>,
    by_file: HashMap<(u64, u64), u64>,
    queue: VecDeque<u64>,
    next_id: u64,
    /// An answer (or a fresh link) came: the user-hasher is alive.
    last_progress: Instant,
    /// How long the user-hasher may stay silent with requests outstanding: its own
    /// timeout per file, with room for the few queued on the link.
    give_up_after: Duration,
}

impl UserHashes {
    pub fn new(hash_timeout: Duration) -> UserHashes {
        UserHashes {
            inflight: HashMap::new(),
            by_file: HashMap::new(),
            queue: VecDeque::new(),
            next_id: 0,
            last_progress: Instant::now(),
            give_up_after: hash_timeout * 2 + Duration::from_secs(30),
        }
    }

    /// Asks for the hash of `path`, which the kernel ran as `file`.
    pub fn ask(&mut self, path: &str, file: FileId, dev_mask: u64, exe: &Exe, status: &mut PrimaryStatus) -> Sha {
        let key = (u64::from(file.dev), file.ino);
        if let Some(p) = self.by_file.get(&key).and_then(|id| self.inflight.get_mut(id)) {
            p.waiting.push(Rc::downgrade(exe));
            return Sha::Pending;
        }
        if self.queue.len() >= MAX_QUEUED {
            status.hash_failures += 1;
            tracing::warn!(path, "too many executables waiting for the desktop user's hasher; this one is recorded unhashed");
            return Sha::Known(SHA_UNREADABLE.into());
        }
        self.next_id += 1;
        let id = self.next_id;
        let req = UserHashRequest { id, path: path.to_string(), dev: key.0, ino: key.1, dev_mask };
        self.inflight.insert(id, Pending { req, waiting: vec![Rc::downgrade(exe)], sent: false });
        self.by_file.insert(key, id);
        self.queue.push_back(id);
        status.user_hash_requests += 1;
        tracing::debug!(path, "the service may not open this executable: asking the desktop user's hasher");
        Sha::Pending
    }

    pub fn next_job(&mut self) -> Option<UserHashRequest> {
        while let Some(id) = self.queue.pop_front() {
            let Some(p) = self.inflight.get_mut(&id) else { continue };
            p.sent = true;
            if self.outstanding() == 1 {
                // The clock starts with the first request in flight.
                self.last_progress = Instant::now();
            }
            return self.inflight.get(&id).map(|p| p.req.clone());
        }
        None
    }

    pub fn outstanding(&self) -> usize {
        self.inflight.values().filter(|p| p.sent).count()
    }

    pub fn pending(&self) -> usize {
        self.inflight.len()
    }

    /// A new user-hasher: what the old one had not answered is asked again.
    pub fn relinked(&mut self) {
        let mut ids: Vec<u64> = self.inflight.iter().filter(|(_, p)| p.sent).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        for id in ids.into_iter().rev() {
            if let Some(p) = self.inflight.get_mut(&id) {
                p.sent = false;
            }
            self.queue.push_front(id);
        }
        self.last_progress = Instant::now();
    }

    /// The user-hasher's answer. A file hashed comes back for VirusTotal (by hash
    /// only: there is no descriptor to upload).
    pub fn done(&mut self, reply: UserHashReply, status: &mut PrimaryStatus) -> Option<NewlyHashed> {
        self.last_progress = Instant::now();
        let p = self.inflight.remove(&reply.id)?;
        self.by_file.remove(&(p.req.dev, p.req.ino));
        let (sha, hashed) = match reply.outcome {
            UserHashOutcome::Hashed(h) => (h, true),
            UserHashOutcome::Replaced => {
                status.exe_replaced += 1;
                tracing::info!(path = %p.req.path, "the executable was replaced since it started; not hashing the new file");
                (SHA_REPLACED.to_string(), false)
            }
            UserHashOutcome::TimedOut => {
                status.user_hash_timeouts += 1;
                tracing::warn!(path = %p.req.path, "not hashed in [desktop] hash_timeout_seconds: recorded as {SHA_TIMEOUT}");
                (SHA_TIMEOUT.to_string(), false)
            }
            UserHashOutcome::Failed(why) => {
                status.hash_failures += 1;
                tracing::warn!(path = %p.req.path, error = %why, "the desktop user's hasher could not hash an executable");
                (SHA_UNREADABLE.to_string(), false)
            }
        };
        set_all(&p.waiting, &sha);
        hashed.then(|| NewlyHashed { sha256: sha, exe: p.req.path, fd: None })
    }

    /// Gives up on every request if the user-hasher has said nothing for too long
    /// (gone, or stuck itself): they are recorded `!hash-timeout`.
    pub fn give_up_if_silent(&mut self, status: &mut PrimaryStatus) {
        if self.outstanding() == 0 || self.last_progress.elapsed() < self.give_up_after {
            return;
        }
        tracing::error!(pending = self.inflight.len(), "the desktop user's hasher has not answered; recording those executables unhashed");
        for (_, p) in self.inflight.drain() {
            status.user_hash_timeouts += 1;
            set_all(&p.waiting, SHA_TIMEOUT);
        }
        self.by_file.clear();
        self.queue.clear();
        self.last_progress = Instant::now();
    }
}

fn set_all(waiting: &[Weak<RefCell<ExeInfo>>], sha: &str) {
    for w in waiting {
        if let Some(exe) = w.upgrade() {
            exe.borrow_mut().sha256 = Sha::Known(sha.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe() -> Exe {
        Rc::new(RefCell::new(ExeInfo { exe: "/run/user/1000/mnt/app".into(), cmdline: String::new(), sha256: Sha::Pending }))
    }

    #[test]
    fn one_request_per_file_answers_every_process_waiting_for_it() {
        let mut u = UserHashes::new(Duration::from_secs(10));
        let mut st = PrimaryStatus::default();
        let file = FileId { dev: 55, ino: 7 };
        let (a, b) = (exe(), exe());
        assert_eq!(u.ask("/run/user/1000/mnt/app", file, u64::MAX, &a, &mut st), Sha::Pending);
        assert_eq!(u.ask("/run/user/1000/mnt/app", file, u64::MAX, &b, &mut st), Sha::Pending);
        let req = u.next_job().expect("one request");
        assert!(u.next_job().is_none());
        assert_eq!((req.dev, req.ino, req.path.as_str()), (55, 7, "/run/user/1000/mnt/app"));
        let new = u.done(UserHashReply { id: req.id, outcome: UserHashOutcome::Hashed("ab".repeat(32)) }, &mut st).expect("hashed");
        assert_eq!(new.sha256, "ab".repeat(32));
        assert_eq!(a.borrow().sha256, Sha::Known("ab".repeat(32)));
        assert_eq!(b.borrow().sha256, Sha::Known("ab".repeat(32)));
        assert_eq!((st.user_hash_requests, u.pending()), (1, 0));
    }

    #[test]
    fn a_timeout_is_recorded_and_counted_and_a_restart_asks_again() {
        let mut u = UserHashes::new(Duration::from_secs(10));
        let mut st = PrimaryStatus::default();
        let a = exe();
        u.ask("/x", FileId { dev: 1, ino: 2 }, u64::MAX, &a, &mut st);
        let first = u.next_job().expect("job");
        u.relinked();
        let again = u.next_job().expect("asked again");
        assert_eq!(first.id, again.id);
        assert!(u.done(UserHashReply { id: again.id, outcome: UserHashOutcome::TimedOut }, &mut st).is_none());
        assert_eq!(a.borrow().sha256, Sha::Known(SHA_TIMEOUT.into()));
        assert_eq!(st.user_hash_timeouts, 1);
    }

    #[test]
    fn a_silent_user_hasher_is_given_up_on() {
        let mut u = UserHashes::new(Duration::ZERO);
        u.give_up_after = Duration::ZERO;
        let mut st = PrimaryStatus::default();
        let a = exe();
        u.ask("/x", FileId { dev: 1, ino: 2 }, u64::MAX, &a, &mut st);
        u.give_up_if_silent(&mut st);
        assert_eq!(a.borrow().sha256, Sha::Pending, "nothing sent yet: nothing to give up on");
        u.next_job().expect("job");
        u.give_up_if_silent(&mut st);
        assert_eq!(a.borrow().sha256, Sha::Known(SHA_TIMEOUT.into()));
        assert_eq!((st.user_hash_timeouts, u.pending()), (1, 0));
    }
}
