//! The executables the history already knows, so a restarted daemon does not announce
//! every one of them as new again.
use crate::{Store, StoreError};

/// One (executable, process name, sha256) the history has recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownExe {
    pub exe: String,
    pub name: String,
    pub sha256: String,
}

impl Store {
    /// At most `limit` distinct (exe, name, sha256) of processes that made connections,
    /// the most recently interned first (so a cut keeps the newest).
    pub fn known_executables(&self, limit: usize) -> Result<Vec<KnownExe>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn()
            .prepare("SELECT DISTINCT exe, name, sha256 FROM executables WHERE id > 0 ORDER BY id DESC LIMIT ?1")
            .map_err(|e| StoreError::from_sqlite(self.path(), e))?;
        let rows = stmt
            .query_map([limit], |r| Ok(KnownExe { exe: r.get(0)?, name: r.get(1)?, sha256: r.get(2)? }))
            .map_err(|e| StoreError::from_sqlite(self.path(), e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| StoreError::from_sqlite(self.path(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectionRecord, ExeRecord};

    #[test]
    fn recorded_executables_are_known() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.db");
        let (mut store, _) = Store::open(&path).expect("open");
        let exe = ExeRecord { exe: "/usr/bin/curl".into(), name: "curl".into(), cmdline: "curl x".into(), sha256: "ab".repeat(32) };
        let row = ConnectionRecord { exe, ..Default::default() };
        store.insert_batch(&[row]).expect("insert");
        let known = store.known_executables(10).expect("known");
        assert!(known.contains(&KnownExe { exe: "/usr/bin/curl".into(), name: "curl".into(), sha256: "ab".repeat(32) }), "{known:?}");
    }
}
