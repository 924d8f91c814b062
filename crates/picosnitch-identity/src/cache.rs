//! sha256 by file identity, so an unchanged binary is hashed once.
use std::collections::HashMap;

/// Default number of entries kept.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A binary's identity plus what changes when it is rewritten in place. `dev` is in the
/// kernel encoding (see [`crate::ExeIdentity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
}

impl CacheKey {
    /// The key of a verified descriptor (see [`crate::open_verified`]): `dev` and `ino`
    /// are the kernel's, which the descriptor was checked against.
    pub fn new(identity: crate::ExeIdentity, size: u64, mtime_ns: i64) -> Self {
        Self {
            dev: identity.dev,
            ino: identity.ino,
            size,
            mtime_ns,
        }
    }
}

#[derive(Debug)]
struct Entry {
    sha256: String,
    last_used: u64,
}

/// A bounded map from [`CacheKey`] to hex sha256, least recently used out first.
///
/// When full, an insert evicts the least recently used eighth of the entries at once
/// (one O(n) pass per n/8 inserts rather than per insert).
#[derive(Debug)]
pub struct HashCache {
    map: HashMap<CacheKey, Entry>,
    capacity: usize,
    clock: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
}

impl Default for HashCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl HashCache {
    /// A cache holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            map: HashMap::with_capacity(capacity.min(DEFAULT_CAPACITY)),
            capacity,
            clock: 0,
            hits: 0,
            misses: 0,
            evictions: 0,
        }
    }

    /// The cached hash, counting a hit or a miss and marking the entry recently used.
    pub fn get(&mut self, key: &CacheKey) -> Option<&str> {
        self.clock += 1;
        match self.map.get_mut(key) {
            Some(e) => {
                self.hits += 1;
                e.last_used = self.clock;
                Some(e.sha256.as_str())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Whether `key` is cached, without counting or touching recency.
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.map.contains_key(key)
    }

    /// Stores `sha256` for `key`, evicting the least recently used entries if full.
    pub fn insert(&mut self, key: CacheKey, sha256: String) {
        self.clock += 1;
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            self.evict();
        }
        self.map.insert(
            key,
            Entry {
                sha256,
                last_used: self.clock,
            },
        );
    }

    /// Forgets everything (e.g. after a filesystem was remounted). Counters are kept.
    pub fn invalidate_all(&mut self) {
        self.map.clear();
    }

    /// Forgets every hash of the file (dev, ino), whatever its size and mtime were:
    /// it was written to, so the next use hashes it again.
    pub fn invalidate_file(&mut self, dev: u64, ino: u64) -> usize {
        let before = self.map.len();
        self.map.retain(|k, _| !(k.dev == dev && k.ino == ino));
        before - self.map.len()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn hits(&self) -> u64 {
        self.hits
    }

    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Entries evicted for room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    fn evict(&mut self) {
        let n = (self.capacity / 8).max(1).min(self.map.len());
        if n == 0 {
            return;
        }
        let mut ages: Vec<u64> = self.map.values().map(|e| e.last_used).collect();
        // The n-th smallest age: everything at or below it goes (ages are unique).
        let (_, cutoff, _) = ages.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        let before = self.map.len();
        self.map.retain(|_, e| e.last_used > cutoff);
        self.evictions += (before - self.map.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> CacheKey {
        CacheKey {
            dev: 8 << 20 | 1,
            ino,
            size: 100,
            mtime_ns: 5,
        }
    }

    #[test]
    fn hit_and_miss_are_counted() {
        let mut c = HashCache::default();
        assert_eq!(c.capacity(), DEFAULT_CAPACITY);
        assert!(c.get(&key(1)).is_none());
        c.insert(key(1), "aa".into());
        assert_eq!(c.get(&key(1)), Some("aa"));
        // Same inode, rewritten in place: a different key.
        let changed = CacheKey {
            mtime_ns: 6,
            ..key(1)
        };
        assert!(c.get(&changed).is_none());
        assert_eq!((c.hits(), c.misses()), (1, 2));
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let mut c = HashCache::new(8); // evicts 1 at a time
        for i in 0..8 {
            c.insert(key(i), format!("h{i}"));
        }
        assert_eq!(c.len(), 8);
        // Touch 0 so 1 becomes the oldest.
        assert_eq!(c.get(&key(0)), Some("h0"));
        c.insert(key(100), "new".into());
        assert_eq!(c.len(), 8);
        assert_eq!(c.evictions(), 1);
        assert!(c.contains(&key(0)));
        assert!(!c.contains(&key(1)));
        assert!(c.contains(&key(100)));
        // Replacing an existing key never evicts.
        c.insert(key(100), "newer".into());
        assert_eq!(c.evictions(), 1);
        assert_eq!(c.get(&key(100)), Some("newer"));
    }

    #[test]
    fn bounded_under_many_inserts() {
        let mut c = HashCache::new(64);
        for i in 0..10_000 {
            c.insert(key(i), String::new());
            assert!(c.len() <= 64);
        }
        assert!(c.contains(&key(9_999)));
        assert_eq!(c.evictions(), 10_000 - c.len() as u64);
    }

    #[test]
    fn invalidate_all_clears_entries_not_counters() {
        let mut c = HashCache::new(16);
        c.insert(key(1), "x".into());
        assert!(c.get(&key(1)).is_some());
        c.invalidate_all();
        assert!(c.is_empty());
        assert!(c.get(&key(1)).is_none());
        assert_eq!((c.hits(), c.misses()), (1, 1));
    }
}
