use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("database {path}: the disk is full")]
    Full { path: PathBuf },
    #[error("database {path} has schema version {found}, newer than this picosnitch knows ({known}); upgrade picosnitch or point db_path elsewhere")]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("database {path}: query interrupted")]
    Interrupted { path: PathBuf },
    #[error("moving corrupt database {path} aside to {to}: {source}")]
    MoveAside { path: PathBuf, to: PathBuf, source: std::io::Error },
}

impl StoreError {
    /// Another connection holds a lock that keeps this one out (SQLITE_BUSY or
    /// SQLITE_LOCKED after the busy timeout).
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Sqlite { source, .. }
            if matches!(source.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)))
    }

    /// The file (or its journal) could not be opened for want of permission.
    pub fn is_permission(&self) -> bool {
        matches!(self, StoreError::Sqlite { source, .. }
            if matches!(source.sqlite_error_code(), Some(rusqlite::ErrorCode::PermissionDenied | rusqlite::ErrorCode::CannotOpen)))
    }

    pub(crate) fn from_sqlite(path: &std::path::Path, e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if f.code == rusqlite::ErrorCode::DiskFull {
                return StoreError::Full { path: path.to_path_buf() };
            }
            if f.code == rusqlite::ErrorCode::OperationInterrupted {
                return StoreError::Interrupted { path: path.to_path_buf() };
            }
        }
        StoreError::Sqlite { path: path.to_path_buf(), source: e }
    }
}
