//! Who a process is: its executable's path, command line and sha256, from what the
//! kernel captured at the time of the event (the exec'd path and argv, the (device,
//! inode) of the binary) and, for processes that started before the daemon, /proc.
//!
//! The binary is opened and checked against the kernel's (device, inode) before it is
//! hashed, so a replaced binary is recorded as replaced, never hashed in its place.
//! Hashing happens in the hasher role; until its answer comes, an identity's sha256 is
//! pending and the rows that need it wait (see `periods`).
use lru::LruCache;
use picosnitch_identity::cache::{CacheKey, HashCache};
use picosnitch_identity::exe::{open_verified, ExeIdentity, Opened};
use picosnitch_identity::procfs;
use picosnitch_ipc::events::{ExecInfo, FileId, TaskInfo};
use picosnitch_ipc::status::PrimaryStatus;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::{Rc, Weak};

/// sha256 column values for executables that could not be hashed. They start with '!'
/// so they never collide with a hex digest.
pub const SHA_REPLACED: &str = "!replaced";
pub const SHA_UNREADABLE: &str = "!unreadable";
pub const SHA_UNKNOWN: &str = "!unknown";
pub const SHA_TIMEOUT: &str = "!hash-timeout";
pub const SHA_QUEUE_FULL: &str = "!hash-queue-full";

/// Command lines are cut here so a row always fits a message.
const MAX_CMDLINE: usize = 4096;
/// Hash requests waiting for the window (each holds an open descriptor).
const MAX_QUEUED_REQUESTS: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sha {
    Known(String),
    Pending,
}

/// One executable as run by one process (tgid): shared by every flow of that process.
#[derive(Debug)]
pub struct ExeInfo {
    pub exe: String,
    pub cmdline: String,
    pub sha256: Sha,
}

pub type Exe = Rc<RefCell<ExeInfo>>;

/// An executable hashed for the first time (since the hash cache last forgot it).
pub struct NewlyHashed {
    pub sha256: String,
    pub exe: String,
    pub fd: Option<OwnedFd>,
}

/// A hash request ready to go to the hasher.
pub struct HashJob {
    pub id: u64,
    pub fd: OwnedFd,
}

struct Inflight {
    key: CacheKey,
    waiting: Vec<Weak<RefCell<ExeInfo>>>,
    /// Kept until the answer, to ask again if the hasher restarts meanwhile.
    fd: Option<OwnedFd>,
    sent: bool,
}

pub struct Identities {
    /// The last exec of each process, from the kernel: what makes a process that exited
    /// before userspace looked at it still resolvable.
    execs: LruCache<u32, ExecInfo>,
    /// Last known path of each executable file, for parents never seen exec'ing.
    paths: LruCache<FileId, String>,
    resolved: LruCache<(u32, FileId), Exe>,
    /// Names of parents and grandparents: every flow needs them, and reading /proc for
    /// each was the primary's largest cost at a thousand connections a second.
    names: LruCache<(u32, FileId), Rc<str>>,
    /// Process names shared by every flow that has them: rows are summed by identity.
    interned: HashSet<Rc<str>>,
    hashes: HashCache,
    inflight: HashMap<u64, Inflight>,
    by_key: HashMap<CacheKey, u64>,
    /// Request ids in the order they should be sent.
    queue: VecDeque<u64>,
    next_id: u64,
    dev_mask: u64,
    log_commands: bool,
    empty: Exe,
    /// The fanotify group hashed executables are marked in (see crate::exe_watch).
    watch: Option<Rc<OwnedFd>>,
    /// Files the primary may not open, asked of the desktop user's hasher (only with
    /// `[desktop] user`).
    pub by_desktop_user: Option<super::user_hash::UserHashes>,
    /// Executables not openable by path, asked of the opener role (see via_proc).
    pub via_proc: super::via_proc::ProcExeRequests,
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl Identities {
    pub fn new(dev_mask: u64, log_commands: bool) -> Self {
        Identities {
            execs: LruCache::new(cap(32768)),
            paths: LruCache::new(cap(16384)),
            resolved: LruCache::new(cap(16384)),
            names: LruCache::new(cap(16384)),
            interned: HashSet::new(),
            hashes: HashCache::new(8192),
            inflight: HashMap::new(),
            by_key: HashMap::new(),
            queue: VecDeque::new(),
            next_id: 0,
            dev_mask,
            log_commands,
            empty: Rc::new(RefCell::new(ExeInfo { exe: String::new(), cmdline: String::new(), sha256: Sha::Known(String::new()) })),
            watch: None,
            by_desktop_user: None,
            via_proc: Default::default(),
        }
    }

    pub fn dev_mask(&self) -> u64 {
        self.dev_mask
    }

    pub fn saw_exec(&mut self, info: ExecInfo) {
        if !info.path.is_empty() {
            self.paths.put(info.task.exe, info.path.clone());
        }
        // A new program in an old process: what was resolved for the old one is stale.
        self.resolved.pop(&(info.task.tgid, info.task.exe));
        self.names.pop(&(info.task.tgid, info.task.exe));
        self.execs.put(info.task.tgid, info);
    }

    /// The executables of the process, its parent and its grandparent.
    pub fn resolve_task(&mut self, task: &TaskInfo, status: &mut PrimaryStatus) -> [Exe; 3] {
        [
            self.resolve(task.tgid, task.exe, status),
            self.resolve(task.ppid, task.pexe, status),
            self.resolve(task.gppid, task.gpexe, status),
        ]
    }

    /// One shared value per distinct name.
    pub fn intern(&mut self, name: &str) -> Rc<str> {
        if let Some(n) = self.interned.get(name) {
            return Rc::clone(n);
        }
        if self.interned.len() >= 65_536 {
            self.interned.clear(); // rows summing by identity only get less merged
        }
        let n: Rc<str> = Rc::from(name);
        self.interned.insert(Rc::clone(&n));
        n
    }

    /// The name of a parent or grandparent (the process itself is named by the thread
    /// that made the flow, from the kernel).
    pub fn name_of(&mut self, tgid: u32, file: FileId) -> Rc<str> {
        if tgid == 0 || file.is_none() {
            return self.intern("");
        }
        if let Some(n) = self.names.get(&(tgid, file)) {
            return Rc::clone(n);
        }
        let name = if let Some(e) = self.execs.get(&tgid).filter(|e| e.task.exe == file) {
            e.task.comm.clone()
        } else {
            match procfs::read_stat(tgid) {
                Ok(s) => s.comm,
                Err(_) => self.paths.get(&file).map(|p| basename(p)).unwrap_or_default(),
            }
        };
        let name = self.intern(&name);
        self.names.put((tgid, file), Rc::clone(&name));
        name
    }

    fn resolve(&mut self, tgid: u32, file: FileId, status: &mut PrimaryStatus) -> Exe {
        if tgid == 0 || file.is_none() {
            return Rc::clone(&self.empty); // kernel threads, and the top of the tree
        }
        if let Some(e) = self.resolved.get(&(tgid, file)) {
            return Rc::clone(e);
        }
        let seen = self.execs.get(&tgid).filter(|e| e.task.exe == file);
        let (path, argv) = match seen {
            Some(e) => (e.path.clone(), Some(e.argv.join(" "))),
            None => {
                let path = procfs::read_exe_link(tgid)
                    .ok()
                    .map(|l| l.path.to_string_lossy().into_owned())
                    .or_else(|| self.paths.get(&file).cloned())
                    .unwrap_or_default();
                (path, procfs::read_cmdline(tgid).ok())
            }
        };
        if path.is_empty() {
            status.exe_unresolved += 1;
        } else {
            self.paths.put(file, path.clone());
        }
        let mut cmdline = if self.log_commands { argv.unwrap_or_default() } else { String::new() };
        if cmdline.len() > MAX_CMDLINE {
            let mut end = MAX_CMDLINE;
            while !cmdline.is_char_boundary(end) {
                end -= 1;
            }
            cmdline.truncate(end);
        }
        let exe = Rc::new(RefCell::new(ExeInfo { exe: path.clone(), cmdline, sha256: Sha::Pending }));
        let sha = self.hash(tgid, file, &path, &exe, status);
        exe.borrow_mut().sha256 = sha;
        // Failures are not cached per process: the next flow may find the file. A process
        // without any path is, though: its /proc/PID/exe is refused (a process in another
        // Landlock domain) or gone, and only an exec record can name it later, which drops
        // this entry (saw_exec). Looking again for every flow cost the primary so much
        // that the monitor fell behind and the kernel ring overflowed: a load generator
        // whose grandparent was such a process lost 15,000 of 200,000 flow announcements
        // at 10,000 connections/s, none without it; and each flow got a row of its own.
        if path.is_empty() || !matches!(&exe.borrow().sha256, Sha::Known(s) if s.starts_with('!')) {
            self.resolved.put((tgid, file), Rc::clone(&exe));
        }
        exe
    }

    fn hash(&mut self, tgid: u32, file: FileId, path: &str, exe: &Exe, status: &mut PrimaryStatus) -> Sha {
        let expected = ExeIdentity { dev: u64::from(file.dev), ino: file.ino };
        let opened = open_verified(tgid, expected, Path::new(path), self.dev_mask);
        // Not openable by path, and the process may still run: the opener tries
        // /proc/PID/exe, which the primary itself may not open.
        let fallback = match &opened {
            Ok(Opened::Verified(_)) => None,
            Ok(Opened::Mismatch { .. }) => Some(SHA_REPLACED),
            Err(e) if e.is_vanished() => None,
            // Refused by the file's filesystem (FUSE without allow_other): /proc/PID/exe
            // leads to the same refusal; the desktop user may read it by path.
            Err(e) if e.is_denied() && self.by_desktop_user.is_some() => None,
            Err(_) => Some(if path.is_empty() { SHA_UNKNOWN } else { SHA_UNREADABLE }),
        };
        if let Some(sha) = fallback.and_then(|f| self.via_proc.ask(tgid, file, self.dev_mask, exe, f)) {
            return sha;
        }
        match opened {
            Ok(Opened::Verified(v)) => {
                let key = CacheKey::new(ExeIdentity { dev: expected.dev & self.dev_mask, ino: file.ino }, v.size, v.mtime_ns);
                self.queue_verified(key, v.fd, exe, path, status)
            }
            Ok(Opened::Mismatch { path: found, .. }) => {
                status.exe_replaced += 1;
                tracing::info!(path, found = %found.display(), tgid, "the executable was replaced since it started; not hashing the new file");
                Sha::Known(SHA_REPLACED.into())
            }
            Err(e) if path.is_empty() || e.is_vanished() => {
                if e.is_vanished() {
                    status.exe_proc_gone += 1; // gone before the opener could be asked
                }
                tracing::debug!(error = %e, "executable gone");
                Sha::Known(if path.is_empty() { SHA_UNKNOWN } else { SHA_UNREADABLE }.into())
            }
            Err(e) if e.is_denied() && self.by_desktop_user.is_some() => match &mut self.by_desktop_user {
                Some(u) => u.ask(path, file, self.dev_mask, exe, status),
                None => Sha::Known(SHA_UNREADABLE.into()),
            },
            Err(e) => {
                status.hash_failures += 1;
                tracing::warn!(error = %e, "cannot open the executable to hash it");
                Sha::Known(SHA_UNREADABLE.into())
            }
        }
    }

    /// A verified descriptor of the kernel's file: its cached hash, or a request to the
    /// hasher (shared with any already waiting for the same file).
    fn queue_verified(&mut self, key: CacheKey, fd: OwnedFd, exe: &Exe, path: &str, status: &mut PrimaryStatus) -> Sha {
        if let Some(h) = self.hashes.get(&key) {
            status.hash_cache_hits += 1;
            return Sha::Known(h.to_string());
        }
        if let Some(id) = self.by_key.get(&key) {
            if let Some(f) = self.inflight.get_mut(id) {
                f.waiting.push(Rc::downgrade(exe));
                return Sha::Pending;
            }
        }
        if self.queue.len() >= MAX_QUEUED_REQUESTS {
            status.hash_failures += 1;
            tracing::warn!(path, "too many executables waiting to be hashed; this one is recorded unhashed");
            return Sha::Known(SHA_QUEUE_FULL.into());
        }
        if let Some(group) = &self.watch {
            use std::os::fd::AsFd;
            if let Err(e) = crate::exe_watch::mark(group.as_fd(), fd.as_fd()) {
                status.exe_watch_failures += 1;
                tracing::debug!(path, error = %e, "cannot watch the executable for changes");
            }
        }
        self.next_id += 1;
        let id = self.next_id;
        self.inflight.insert(id, Inflight { key, waiting: vec![Rc::downgrade(exe)], fd: Some(fd), sent: false });
        self.by_key.insert(key, id);
        self.queue.push_back(id);
        status.hash_requests += 1;
        Sha::Pending
    }

    /// The opener's verified descriptor: hashed like one opened by path.
    pub fn opened_via_proc(&mut self, o: super::via_proc::OpenedViaProc, status: &mut PrimaryStatus) {
        let key = CacheKey::new(ExeIdentity { dev: u64::from(o.file.dev) & self.dev_mask, ino: o.file.ino }, o.size, o.mtime_ns);
        let path = o.exe.borrow().exe.clone();
        let sha = self.queue_verified(key, o.fd, &o.exe, &path, status);
        o.exe.borrow_mut().sha256 = sha;
    }

    /// The next request to send, if any is waiting. The descriptor is a duplicate: the
    /// original is kept until the answer, in case the hasher restarts.
    pub fn next_job(&mut self) -> Option<HashJob> {
        while let Some(id) = self.queue.pop_front() {
            let Some(f) = self.inflight.get_mut(&id) else { continue };
            let Some(fd) = f.fd.as_ref().and_then(|fd| fd.try_clone().ok()) else { continue };
            f.sent = true;
            return Some(HashJob { id, fd });
        }
        None
    }

    /// Requests sent and not answered.
    pub fn outstanding(&self) -> usize {
        self.inflight.values().filter(|f| f.sent).count()
    }

    pub fn pending(&self) -> usize {
        self.inflight.len()
    }

    /// The hasher was replaced: everything it had not answered is asked again.
    pub fn resend_all(&mut self) {
        let mut ids: Vec<u64> = self.inflight.iter().filter(|(_, f)| f.sent).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        for id in ids.into_iter().rev() {
            if let Some(f) = self.inflight.get_mut(&id) {
                f.sent = false;
            }
            self.queue.push_front(id);
        }
    }

    /// The hasher's answer to request `id`. A file hashed for the first time comes
    /// back with its path and still-open descriptor (for VirusTotal).
    pub fn hash_done(&mut self, id: u64, result: Result<String, String>, status: &mut PrimaryStatus) -> Option<NewlyHashed> {
        let f = self.inflight.remove(&id)?;
        self.by_key.remove(&f.key);
        let (sha, ok) = match result {
            Ok(h) => {
                self.hashes.insert(f.key, h.clone());
                (h, true)
            }
            Err(e) => {
                status.hash_failures += 1;
                tracing::warn!(error = %e, "the hasher could not hash an executable");
                (SHA_UNREADABLE.to_string(), false)
            }
        };
        let mut path = None;
        for w in f.waiting {
            if let Some(exe) = w.upgrade() {
                let mut e = exe.borrow_mut();
                e.sha256 = Sha::Known(sha.clone());
                path.get_or_insert_with(|| e.exe.clone());
            }
        }
        ok.then(|| NewlyHashed { sha256: sha, exe: path.unwrap_or_default(), fd: f.fd })
    }

    /// A new fanotify group: nothing is marked in it yet, so every cached hash is
    /// forgotten and each executable is hashed (and marked) again on its next use.
    pub fn set_watch(&mut self, group: Rc<OwnedFd>) {
        self.watch = Some(group);
        self.hashes.invalidate_all();
    }

    /// fanotify reported a change.
    pub fn exe_changed(&mut self, change: &crate::exe_watch::Change, status: &mut PrimaryStatus) {
        match *change {
            crate::exe_watch::Change::Written { dev, ino } => {
                status.executables_rewritten += 1;
                let dev = picosnitch_identity::exe::kernel_dev_from_user(dev) & self.dev_mask;
                if self.hashes.invalidate_file(dev, ino) > 0 {
                    tracing::info!(dev, ino, "a hashed executable was written to: it is hashed again on its next use");
                }
            }
            crate::exe_watch::Change::Overflow => {
                status.exe_watch_overflows += 1;
                tracing::warn!("fanotify queue overflow: every cached hash is forgotten");
                self.hashes.invalidate_all();
            }
        }
    }

    /// Gives up on every request: used when the hasher does not answer in time.
    pub fn fail_all(&mut self, status: &mut PrimaryStatus) {
        let ids: Vec<u64> = self.inflight.keys().copied().collect();
        for id in ids {
            if let Some(f) = self.inflight.remove(&id) {
                self.by_key.remove(&f.key);
                status.hash_failures += 1;
                for w in f.waiting {
                    if let Some(exe) = w.upgrade() {
                        exe.borrow_mut().sha256 = Sha::Known(SHA_TIMEOUT.into());
                    }
                }
            }
        }
        self.queue.clear();
    }

}

fn basename(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn own_task() -> TaskInfo {
        let md = std::fs::metadata("/proc/self/exe").expect("own exe");
        let dev = picosnitch_identity::exe::kernel_dev_from_user(md.dev()) as u32;
        TaskInfo {
            tgid: std::process::id(),
            pid: std::process::id(),
            exe: FileId { dev, ino: md.ino() },
            comm: "test".into(),
            ..Default::default()
        }
    }

    #[test]
    fn own_executable_is_queued_once_and_resolved_by_the_answer() {
        let mut ids = Identities::new(u64::MAX, true);
        let mut st = PrimaryStatus::default();
        let task = own_task();
        let [exe, parent, _] = ids.resolve_task(&task, &mut st);
        assert_eq!(exe.borrow().sha256, Sha::Pending);
        assert!(exe.borrow().exe.ends_with("picosnitch") || exe.borrow().exe.contains("/deps/"), "{:?}", exe.borrow().exe);
        assert_eq!(parent.borrow().exe, "", "no parent in the test task");
        // A second flow of the same process shares the identity and the request.
        let [again, _, _] = ids.resolve_task(&task, &mut st);
        assert!(Rc::ptr_eq(&exe, &again));
        let job = ids.next_job().expect("one request");
        assert!(ids.next_job().is_none());
        ids.hash_done(job.id, Ok("ab".repeat(32)), &mut st);
        assert_eq!(exe.borrow().sha256, Sha::Known("ab".repeat(32)));
        // A new process running the same file hits the cache.
        let mut other = task.clone();
        other.tgid = 1; // pid 1 runs something else: /proc/1/exe mismatches, the path fallback is tried
        ids.saw_exec(ExecInfo { task: other.clone(), path: exe.borrow().exe.clone(), argv: vec!["x".into()], path_truncated: false, argv_truncated: false });
        let [e2, _, _] = ids.resolve_task(&other, &mut st);
        assert_eq!(e2.borrow().sha256, Sha::Known("ab".repeat(32)));
        assert_eq!(e2.borrow().cmdline, "x");
        assert_eq!(st.hash_cache_hits, 1);
    }

    #[test]
    fn a_process_without_a_path_is_looked_up_once() {
        let mut ids = Identities::new(u64::MAX, true);
        let mut st = PrimaryStatus::default();
        let mut task = own_task();
        // Above any pid_max: /proc has nothing for it, and no exec of it was seen.
        task.gppid = 0x7fff_fff0;
        task.gpexe = FileId { dev: 1, ino: 2 };
        let [_, _, gp] = ids.resolve_task(&task, &mut st);
        assert_eq!(gp.borrow().exe, "");
        assert_eq!(gp.borrow().sha256, Sha::Known(SHA_UNKNOWN.into()));
        let [_, _, again] = ids.resolve_task(&task, &mut st);
        assert!(Rc::ptr_eq(&gp, &again), "the second flow shares the first one's identity");
        assert_eq!(st.exe_unresolved, 1);
        // Its exec record names it after all.
        let mut gp_task = task.clone();
        gp_task.tgid = task.gppid;
        gp_task.exe = task.gpexe;
        ids.saw_exec(ExecInfo { task: gp_task, path: "/usr/bin/gp".into(), argv: vec![], path_truncated: false, argv_truncated: false });
        let [_, _, named] = ids.resolve_task(&task, &mut st);
        assert_eq!(named.borrow().exe, "/usr/bin/gp");
    }

    #[test]
    fn a_wrong_inode_is_recorded_as_replaced() {
        let mut ids = Identities::new(u64::MAX, true);
        let mut st = PrimaryStatus::default();
        let mut task = own_task();
        task.exe.ino += 1;
        let [exe, _, _] = ids.resolve_task(&task, &mut st);
        assert_eq!(exe.borrow().sha256, Sha::Known(SHA_REPLACED.into()));
        assert_eq!(st.exe_replaced, 1);
    }

    #[test]
    fn a_restarted_hasher_is_asked_again() {
        let mut ids = Identities::new(u64::MAX, true);
        let mut st = PrimaryStatus::default();
        let [exe, _, _] = ids.resolve_task(&own_task(), &mut st);
        let first = ids.next_job().expect("job");
        assert_eq!(ids.outstanding(), 1);
        ids.resend_all();
        let again = ids.next_job().expect("asked again");
        assert_eq!(again.id, first.id);
        ids.fail_all(&mut st);
        assert_eq!(exe.borrow().sha256, Sha::Known(SHA_TIMEOUT.into()));
    }
}
