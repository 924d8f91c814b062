//! Hashing a file by path as the desktop user, bounded in time.
//!
//! A read from a hung FUSE server cannot be cancelled: the thread sleeps in the kernel
//! until the server answers, the mount is aborted, or the process dies. So each file
//! is opened and hashed on a thread of its own, and a thread that overruns
//! `[desktop] hash_timeout_seconds` is abandoned: its file is answered `TimedOut`, and
//! until that thread returns, further files on the same filesystem are answered
//! `TimedOut` at once instead of hanging one more thread each. At most [`MAX_HUNG`]
//! threads are ever abandoned; past that every file is answered `TimedOut` until one
//! returns. (Ending the process would free them too, but a restart per hung file would
//! only trade threads for restarts.)
use lru::LruCache;
use picosnitch_identity::exe::{open_and_stat, ExeIdentity};
use picosnitch_identity::hash::sha256_fd;
use picosnitch_ipc::hashing::{UserHashOutcome, UserHashRequest};
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Threads abandoned in hung reads, at most.
pub const MAX_HUNG: usize = 16;
/// Hashes remembered by (device, inode, size, mtime), like the primary's cache.
const CACHE_ENTRIES: usize = 4096;

type Key = (u64, u64, u64, i64);

/// What a thread produced.
#[derive(Debug)]
pub struct Done {
    pub outcome: UserHashOutcome,
    /// Bytes read to hash it (0 when answered from the cache).
    pub bytes: u64,
    pub cached: bool,
}

#[derive(Default)]
struct Shared {
    /// Hung threads per filesystem (kernel device number).
    hung: HashMap<u64, usize>,
    hung_total: usize,
}

/// One file being hashed on its own thread.
pub struct Job {
    pub id: u64,
    dev: u64,
    pub deadline: Instant,
    rx: async_channel::Receiver<Done>,
    /// Set, under the shared lock, when the job is abandoned; read by its thread,
    /// under the same lock, when it ends.
    abandoned: Arc<std::sync::atomic::AtomicBool>,
}

pub struct Reader {
    shared: Arc<Mutex<Shared>>,
    cache: Arc<Mutex<LruCache<Key, String>>>,
    timeout: Duration,
}

/// What starting a job gave.
pub enum Start {
    Running(Job),
    /// Answered at once (the filesystem has a hung read, or too many threads hang).
    Refused(UserHashOutcome),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A thread that panicked while holding the lock left plain counters behind: still
    // usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Reader {
    pub fn new(timeout: Duration) -> Reader {
        Reader {
            shared: Arc::default(),
            cache: Arc::new(Mutex::new(LruCache::new(NonZeroUsize::new(CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN)))),
            timeout,
        }
    }

    /// Reads hung right now.
    pub fn hung(&self) -> usize {
        lock(&self.shared).hung_total
    }

    pub fn start(&self, req: UserHashRequest) -> Start {
        {
            let s = lock(&self.shared);
            if s.hung.contains_key(&req.dev) || s.hung_total >= MAX_HUNG {
                return Start::Refused(UserHashOutcome::TimedOut);
            }
        }
        let (tx, rx) = async_channel::bounded(1);
        let abandoned = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let job = Job { id: req.id, dev: req.dev, deadline: Instant::now() + self.timeout, rx, abandoned: Arc::clone(&abandoned) };
        let shared = Arc::clone(&self.shared);
        let cache = Arc::clone(&self.cache);
        let dev = req.dev;
        let spawned = std::thread::Builder::new().name("user-hash".into()).spawn(move || {
            let done = hash_file(&req, &cache);
            let mut s = lock(&shared);
            if abandoned.load(std::sync::atomic::Ordering::Relaxed) {
                tracing::info!(path = %req.path, "a hung read returned: its filesystem is hashed again");
                if let Some(n) = s.hung.get_mut(&dev) {
                    *n -= 1;
                    if *n == 0 {
                        s.hung.remove(&dev);
                    }
                }
                s.hung_total = s.hung_total.saturating_sub(1);
            } else {
                let _ = tx.try_send(done);
            }
        });
        match spawned {
            Ok(_) => Start::Running(job),
            Err(e) => Start::Refused(UserHashOutcome::Failed(format!("starting a thread to hash it: {e}"))),
        }
    }

    /// The job's result, or `TimedOut` once its deadline passed (its thread is then
    /// abandoned).
    pub async fn finish(&self, job: &Job) -> Done {
        let waited = futures_lite::future::or(async { Some(job.rx.recv().await) }, async {
            async_io::Timer::at(job.deadline).await;
            None
        })
        .await;
        match waited {
            Some(Ok(done)) => return done,
            // Its thread ended without an answer (it panicked): nothing hangs.
            Some(Err(_)) => {
                return Done { outcome: UserHashOutcome::Failed("the hashing thread ended without an answer".into()), bytes: 0, cached: false }
            }
            None => {}
        }
        let mut s = lock(&self.shared);
        // The thread may have finished between the timer and the lock.
        if let Ok(done) = job.rx.try_recv() {
            return done;
        }
        job.abandoned.store(true, std::sync::atomic::Ordering::Relaxed);
        *s.hung.entry(job.dev).or_default() += 1;
        s.hung_total += 1;
        Done { outcome: UserHashOutcome::TimedOut, bytes: 0, cached: false }
    }
}

/// Opens the path, checks it is the file the kernel ran, and hashes it.
fn hash_file(req: &UserHashRequest, cache: &Mutex<LruCache<Key, String>>) -> Done {
    let failed = |why: String| Done { outcome: UserHashOutcome::Failed(why), bytes: 0, cached: false };
    let (fd, found, size, mtime_ns) = match open_and_stat(Path::new(&req.path)) {
        Ok(opened) => opened,
        Err(e) => return failed(format!("opening {} as the desktop user: {e}", req.path)),
    };
    if !found.matches(&ExeIdentity { dev: req.dev, ino: req.ino }, req.dev_mask) {
        return Done { outcome: UserHashOutcome::Replaced, bytes: 0, cached: false };
    }
    let key = (found.dev & req.dev_mask, found.ino, size, mtime_ns);
    if let Some(h) = lock(cache).get(&key) {
        return Done { outcome: UserHashOutcome::Hashed(h.clone()), bytes: 0, cached: true };
    }
    match sha256_fd(fd.as_fd()) {
        Ok(h) => {
            lock(cache).put(key, h.clone());
            Done { outcome: UserHashOutcome::Hashed(h), bytes: size, cached: false }
        }
        Err(e) => failed(format!("reading {} as the desktop user: {e}", req.path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn request(path: &Path, id: u64) -> UserHashRequest {
        let md = std::fs::metadata(path).expect("metadata");
        let dev = picosnitch_identity::exe::kernel_dev_from_user(md.dev());
        UserHashRequest { id, path: path.to_string_lossy().into_owned(), dev, ino: md.ino(), dev_mask: u64::MAX }
    }

    fn run(reader: &Reader, req: UserHashRequest) -> Done {
        match reader.start(req) {
            Start::Running(job) => smol::block_on(reader.finish(&job)),
            Start::Refused(o) => Done { outcome: o, bytes: 0, cached: false },
        }
    }

    #[test]
    fn a_file_is_hashed_then_answered_from_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("prog");
        std::fs::write(&f, b"abc").expect("write");
        let reader = Reader::new(Duration::from_secs(5));
        let first = run(&reader, request(&f, 1));
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string();
        assert_eq!(first.outcome, UserHashOutcome::Hashed(abc.clone()));
        assert_eq!((first.bytes, first.cached), (3, false));
        let again = run(&reader, request(&f, 2));
        assert_eq!(again.outcome, UserHashOutcome::Hashed(abc));
        assert!(again.cached);
    }

    #[test]
    fn another_inode_at_the_path_is_replaced_and_a_missing_file_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("prog");
        std::fs::write(&f, b"abc").expect("write");
        let mut req = request(&f, 1);
        req.ino += 1;
        let reader = Reader::new(Duration::from_secs(5));
        assert_eq!(run(&reader, req).outcome, UserHashOutcome::Replaced);
        let mut gone = request(&f, 2);
        gone.path = dir.path().join("nothing").to_string_lossy().into_owned();
        assert!(matches!(run(&reader, gone).outcome, UserHashOutcome::Failed(w) if w.contains("nothing")));
    }

    #[test]
    fn a_read_that_hangs_times_out_and_its_filesystem_is_refused_until_it_returns() {
        // The thread is made to hang by holding the cache's lock, which it takes
        // before hashing (the end-to-end test hangs a real FUSE server).
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("prog");
        std::fs::write(&f, b"abc").expect("write");
        let reader = Reader::new(Duration::from_millis(200));
        let held = lock(&reader.cache);
        let Start::Running(job) = reader.start(request(&f, 1)) else { panic!("started") };
        let done = smol::block_on(reader.finish(&job));
        assert_eq!(done.outcome, UserHashOutcome::TimedOut);
        assert_eq!(reader.hung(), 1);
        // Same filesystem: refused at once, no second thread.
        assert!(matches!(reader.start(request(&f, 2)), Start::Refused(UserHashOutcome::TimedOut)));
        drop(held);
        let until = Instant::now() + Duration::from_secs(10);
        while reader.hung() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(reader.hung(), 0, "the abandoned thread returned and was counted off");
        assert!(matches!(run(&reader, request(&f, 3)).outcome, UserHashOutcome::Hashed(_)));
    }
}
