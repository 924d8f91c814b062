//! sha256 by (device, inode, size, mtime): a busy executable is hashed once, and a
//! rewritten one (new size or mtime) is hashed again.
use std::collections::{HashMap, VecDeque};

pub type HashKey = (u64, u64, u64, i128);

pub struct HashCache {
    capacity: usize,
    map: HashMap<HashKey, String>,
    order: VecDeque<HashKey>,
    pub hits: u64,
    pub misses: u64,
}

impl HashCache {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), map: HashMap::new(), order: VecDeque::new(), hits: 0, misses: 0 }
    }

    pub fn get(&mut self, key: &HashKey) -> Option<String> {
        let found = self.map.get(key).cloned();
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    /// Inserts, evicting the oldest entries beyond capacity.
    pub fn insert(&mut self, key: HashKey, sha256: String) {
        if self.map.insert(key, sha256).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Forgets everything (e.g. after a change notification queue overflowed).
    pub fn invalidate_all(&mut self) {
        self.map.clear();
        self.order.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_misses_eviction_invalidation() {
        let mut c = HashCache::new(2);
        assert_eq!(c.get(&(1, 1, 1, 1)), None);
        c.insert((1, 1, 1, 1), "a".into());
        c.insert((1, 2, 1, 1), "b".into());
        assert_eq!(c.get(&(1, 1, 1, 1)).as_deref(), Some("a"));
        c.insert((1, 3, 1, 1), "c".into());
        assert_eq!(c.get(&(1, 1, 1, 1)), None, "oldest evicted");
        assert_eq!(c.get(&(1, 1, 1, 2)), None, "new mtime is a new key");
        assert_eq!((c.hits, c.misses, c.len()), (1, 3, 2));
        c.invalidate_all();
        assert!(c.is_empty());
    }
}
