//! What the machine learnt about names, per network namespace: address -> the name it
//! was looked up by. Bounded three ways: an entry lives for its TTL (but at least
//! `MIN_KEEP`: programs often connect a moment after a TTL-0 answer, and browsers and
//! glibc's nscd keep answers for about a minute whatever the TTL), at most `MAX_KEEP`;
//! at most `capacity` entries and `max_bytes` of names, the least recently used out
//! first (counted: a name pushed out early is a name a later connection may lack).
use lru::LruCache;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub const MIN_KEEP: Duration = Duration::from_secs(60);
pub const MAX_KEEP: Duration = Duration::from_secs(24 * 3600);

/// The namespace of answers whose socket the kernel could not place (sockets older
/// than the capture): consulted for every namespace after its own entries.
pub const NETNS_UNKNOWN: u32 = 0;

struct Entry {
    name: Rc<str>,
    expires: Instant,
}

pub struct NameCache {
    entries: LruCache<(u32, IpAddr), Entry>,
    max_bytes: usize,
    bytes: usize,
    /// Entries pushed out before their time by the entry or byte bound.
    pub evicted_early: u64,
}

impl NameCache {
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        NameCache {
            entries: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)),
            max_bytes,
            bytes: 0,
            evicted_early: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of names held (counting each entry's name, shared or not).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Remembers that `addr` in namespace `netns` was looked up as `name`.
    pub fn insert(&mut self, netns: u32, addr: IpAddr, name: Rc<str>, ttl_secs: u32, now: Instant) {
        let keep = Duration::from_secs(u64::from(ttl_secs)).clamp(MIN_KEEP, MAX_KEEP);
        let len = name.len();
        if len > self.max_bytes {
            return;
        }
        let old = self.entries.push((netns, addr), Entry { name, expires: now + keep });
        self.bytes += len;
        if let Some((key, e)) = old {
            self.bytes -= e.name.len();
            if key != (netns, addr) && e.expires > now {
                self.evicted_early += 1;
            }
        }
        while self.bytes > self.max_bytes {
            let Some((_, e)) = self.entries.pop_lru() else { break };
            self.bytes -= e.name.len();
            if e.expires > now {
                self.evicted_early += 1;
            }
        }
    }

    /// The name of `addr` as looked up in `netns` (or by a socket of unknown
    /// namespace), if it has not expired.
    pub fn lookup(&mut self, netns: u32, addr: IpAddr, now: Instant) -> Option<Rc<str>> {
        self.lookup_exact(netns, addr, now).or_else(|| self.lookup_exact(NETNS_UNKNOWN, addr, now))
    }

    fn lookup_exact(&mut self, netns: u32, addr: IpAddr, now: Instant) -> Option<Rc<str>> {
        let key = (netns, addr);
        match self.entries.get(&key) {
            Some(e) if e.expires > now => Some(Rc::clone(&e.name)),
            Some(_) => {
                if let Some(e) = self.entries.pop(&key) {
                    self.bytes -= e.name.len();
                }
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn names_are_per_namespace_and_expire() {
        let t0 = Instant::now();
        let mut c = NameCache::new(8, 1 << 20);
        c.insert(1, a("192.0.2.1"), "one.example".into(), 300, t0);
        c.insert(2, a("192.0.2.1"), "two.example".into(), 0, t0);
        assert_eq!(c.lookup(1, a("192.0.2.1"), t0).as_deref(), Some("one.example"));
        assert_eq!(c.lookup(2, a("192.0.2.1"), t0).as_deref(), Some("two.example"));
        assert_eq!(c.lookup(3, a("192.0.2.1"), t0), None);
        // TTL 0 is kept for MIN_KEEP, TTL 300 for 300 s.
        let later = t0 + MIN_KEEP + Duration::from_secs(1);
        assert_eq!(c.lookup(2, a("192.0.2.1"), later), None);
        assert_eq!(c.lookup(1, a("192.0.2.1"), later).as_deref(), Some("one.example"));
        assert_eq!(c.lookup(1, a("192.0.2.1"), t0 + Duration::from_secs(301)), None);
        assert_eq!(c.len(), 0);
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn unknown_namespace_answers_serve_every_namespace() {
        let t0 = Instant::now();
        let mut c = NameCache::new(8, 1 << 20);
        c.insert(NETNS_UNKNOWN, a("2001:db8::1"), "old.example".into(), 30, t0);
        assert_eq!(c.lookup(7, a("2001:db8::1"), t0).as_deref(), Some("old.example"));
        c.insert(7, a("2001:db8::1"), "new.example".into(), 30, t0);
        assert_eq!(c.lookup(7, a("2001:db8::1"), t0).as_deref(), Some("new.example"));
    }

    #[test]
    fn bounded_by_entries_and_bytes_with_early_evictions_counted() {
        let t0 = Instant::now();
        let mut c = NameCache::new(4, 40);
        for i in 0..10u8 {
            c.insert(1, IpAddr::from([192, 0, 2, i]), "ten-bytes!".into(), 300, t0);
            assert!(c.len() <= 4 && c.bytes() <= 40);
        }
        assert_eq!(c.evicted_early, 6);
        c.insert(1, a("192.0.2.99"), "x".repeat(41).into(), 300, t0);
        assert_eq!(c.lookup(1, a("192.0.2.99"), t0), None, "a name larger than the whole budget is not kept");
        // Re-inserting the same key replaces, without counting an eviction.
        c.insert(1, a("192.0.2.9"), "ten-bytes!".into(), 300, t0);
        assert_eq!(c.evicted_early, 6);
    }
}
