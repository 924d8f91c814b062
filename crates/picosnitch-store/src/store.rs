use crate::error::StoreError;
use crate::record::{ConnectionRecord, ExeRecord};
use crate::schema::{MIGRATIONS, SCHEMA_VERSION};
use crate::summary::{self, RowIds, SummaryDelta, ROW_IDS_COLUMNS};
use crate::verdict::Verdict;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Interned side-table ids, so a batch of rows for one busy program costs one lookup.
    exe_ids: HashMap<ExeRecord, i64>,
    text_ids: HashMap<(Side, String), i64>,
    /// The schema version found at open; a read-only open of an older database has no
    /// summary tables and its history queries read `connections` directly.
    version: i64,
    snapshot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    Domain,
    Address,
}

#[derive(Debug, Default)]
pub struct OpenReport {
    /// Where a corrupt database was moved before a new one was created.
    pub moved_aside: Option<PathBuf>,
}

/// Result of [`Store::check_summaries`]: summary cells that differ from a recount of
/// `connections`, per table. Both zero means consistent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SummaryCheck {
    pub hour_mismatches: u64,
    pub day_mismatches: u64,
    pub week_mismatches: u64,
}

/// What [`Store::insert_batch_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Inserted(usize),
    /// The batch was committed before; nothing was written.
    AlreadyDelivered,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub connections: u64,
    pub executables: u64,
    pub domains: u64,
    pub addresses: u64,
}

const PRUNE_BATCH: i64 = 10_000;

enum OpenFailure {
    Corrupt(StoreError),
    Other(StoreError),
}

impl OpenFailure {
    fn into_inner(self) -> StoreError {
        match self {
            OpenFailure::Corrupt(e) | OpenFailure::Other(e) => e,
        }
    }
}

fn classify(path: &Path, e: rusqlite::Error) -> OpenFailure {
    let corrupt = matches!(&e, rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt));
    let err = StoreError::from_sqlite(path, e);
    if corrupt {
        OpenFailure::Corrupt(err)
    } else {
        OpenFailure::Other(err)
    }
}

impl Store {
    /// Opens (creating and migrating as needed) the database for writing. A corrupt
    /// file is moved aside, never deleted, and a new database takes its place.
    pub fn open(path: &Path) -> Result<(Store, OpenReport), StoreError> {
        match Self::open_rw(path) {
            Ok(store) => Ok((store, OpenReport::default())),
            Err(OpenFailure::Other(e)) => Err(e),
            Err(OpenFailure::Corrupt(e)) => {
                let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let to = PathBuf::from(format!("{}.corrupt-{unix}", path.display()));
                std::fs::rename(path, &to).map_err(|source| StoreError::MoveAside { path: path.to_path_buf(), to: to.clone(), source })?;
                for suffix in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{suffix}", path.display()));
                    if side.exists() {
                        let _ = std::fs::rename(&side, format!("{}{suffix}", to.display()));
                    }
                }
                tracing::error!(path = %path.display(), moved_to = %to.display(), error = %e, "database was corrupt; moved aside");
                let store = Self::open_rw(path).map_err(OpenFailure::into_inner)?;
                Ok((store, OpenReport { moved_aside: Some(to) }))
            }
        }
    }

    fn open_rw(path: &Path) -> Result<Store, OpenFailure> {
        let conn = Connection::open(path).map_err(|e| classify(path, e))?;
        let setup = || -> rusqlite::Result<String> {
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
            // Temporary tables, sorts and spilled statement journals stay in memory: the
            // writer's Landlock domain holds only its state directory, so SQLite's temp
            // files in /var/tmp or /tmp would fail to open in the middle of a batch.
            conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;")?;
            Ok(check)
        };
        let check = setup().map_err(|e| classify(path, e))?;
        if check != "ok" {
            return Err(OpenFailure::Corrupt(StoreError::Sqlite {
                path: path.to_path_buf(),
                source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT), Some(check)),
            }));
        }
        let mut store = Store { conn, path: path.to_path_buf(), exe_ids: HashMap::new(), text_ids: HashMap::new(), version: 0, snapshot: false };
        store.migrate().map_err(OpenFailure::Other)?;
        store.version = SCHEMA_VERSION;
        Ok(store)
    }

    /// Opens for reading only (UIs, `picosnitch query`); never creates or migrates.
    ///
    /// A reader of a WAL database needs its -shm file. While the writer runs it exists
    /// and a reader in the file's group can use it; when no writer runs and the reader
    /// may not create it (a group member, the directory being root's), SQLite refuses.
    /// Then nothing is writing, so the file is opened as immutable instead: see
    /// [`Store::is_snapshot`].
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        match Self::open_ro(path, false) {
            Err(StoreError::Sqlite { source, .. })
                if source.sqlite_error_code() == Some(ErrorCode::ReadOnly) && !PathBuf::from(format!("{}-wal", path.display())).exists() =>
            {
                tracing::debug!(path = %path.display(), "no writer and no -shm file this user may create; reading the database as immutable");
                Self::open_ro(path, true)
            }
            other => other,
        }
    }

    fn open_ro(path: &Path, immutable: bool) -> Result<Store, StoreError> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if immutable {
            flags |= OpenFlags::SQLITE_OPEN_URI;
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(uri, flags)
        } else {
            Connection::open_with_flags(path, flags)
        }
        .map_err(|e| StoreError::from_sqlite(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| StoreError::from_sqlite(path, e))?;
        // Sorts too big for the page cache spill into memory, not into a file in /tmp:
        // the readers (web UI, tui) are confined by Landlock to reading the history.
        conn.execute_batch("PRAGMA temp_store = MEMORY;").map_err(|e| StoreError::from_sqlite(path, e))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| StoreError::from_sqlite(path, e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: path.to_path_buf(), found: version, known: SCHEMA_VERSION });
        }
        // Reading the schema needs the WAL index: this is where a missing -shm shows.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0)).map_err(|e| StoreError::from_sqlite(path, e))?;
        Ok(Store { conn, path: path.to_path_buf(), exe_ids: HashMap::new(), text_ids: HashMap::new(), version, snapshot: immutable })
    }

    /// Lets SQLite read up to `bytes` of the file through a memory map instead of
    /// copying pages: scans of many rows (a UI's filtered queries) take about half the
    /// time. For read-only stores; the mapping is shared with the page cache.
    pub fn set_mmap_size(&self, bytes: i64) -> Result<(), StoreError> {
        self.conn.query_row(&format!("PRAGMA mmap_size = {}", bytes.max(0)), [], |_| Ok(())).map_err(|e| self.err(e))
    }

    /// How long a query waits for another connection's lock before failing with a
    /// locked error (five seconds unless set).
    pub fn set_busy_timeout(&self, wait: std::time::Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(wait).map_err(|e| self.err(e))
    }

    /// Whether this read-only store was opened as immutable because no writer was
    /// running; it does not see rows written later, so reopen it once a writer runs
    /// (its -wal file exists).
    pub fn is_snapshot(&self) -> bool {
        self.snapshot
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The schema version: [`SCHEMA_VERSION`] for a store opened for writing, the
    /// file's own for a read-only one.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Whether the summary tables exist (schema version 2 or later).
    pub(crate) fn has_summaries(&self) -> bool {
        self.version >= 2
    }

    /// Whether the summaries hold network namespaces (schema version 4 or later).
    pub(crate) fn has_netns_summaries(&self) -> bool {
        self.version >= 4
    }

    pub(crate) fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, e)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: self.path.clone(), found: version, known: SCHEMA_VERSION });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(|e| StoreError::from_sqlite(&self.path, e))?;
            tx.execute_batch(sql).map_err(|e| StoreError::from_sqlite(&self.path, e))?;
            if i + 1 == 2 {
                // The summaries of an existing history, counted once (every dimension
                // this version knows, so version 4's backfill has nothing left to do).
                summary::rebuild(&tx).map_err(|e| StoreError::from_sqlite(&self.path, e))?;
            }
            if i + 1 == 4 && version >= 2 {
                // Network namespaces, added to the summaries of a version 2 or 3 history.
                summary::rebuild_dims(&tx, &[summary::SummaryDim::Netns]).map_err(|e| StoreError::from_sqlite(&self.path, e))?;
            }
            tx.pragma_update(None, "user_version", i as i64 + 1).map_err(|e| StoreError::from_sqlite(&self.path, e))?;
            tx.commit().map_err(|e| StoreError::from_sqlite(&self.path, e))?;
            tracing::info!(path = %self.path.display(), version = i + 1, "database schema migrated");
        }
        Ok(())
    }

    /// Inserts rows in one transaction, interning the side tables. On any error the
    /// transaction rolls back and the caller still holds every row.
    pub fn insert_batch(&mut self, rows: &[ConnectionRecord]) -> Result<usize, StoreError> {
        self.insert_rows(rows, &[], None).map(|_| rows.len())
    }

    /// Inserts batch number `seq` from `source` exactly once: the batch and the fact
    /// that it arrived commit together, so a batch sent again (after a writer restart
    /// lost the acknowledgement) is recognised. Sequence numbers of one source rise.
    pub fn insert_batch_once(&mut self, source: &str, seq: u64, rows: &[ConnectionRecord]) -> Result<Delivery, StoreError> {
        self.insert_rows(rows, &[], Some((source, seq)))
    }

    /// [`Store::insert_batch_once`] with VirusTotal verdicts committed in the same
    /// transaction as the rows.
    pub fn insert_delivery(&mut self, source: &str, seq: u64, rows: &[ConnectionRecord], verdicts: &[Verdict]) -> Result<Delivery, StoreError> {
        self.insert_rows(rows, verdicts, Some((source, seq)))
    }

    /// The highest batch number committed for `source`, if any.
    pub fn delivered_seq(&self, source: &str) -> Result<Option<u64>, StoreError> {
        self.conn
            .query_row("SELECT last_seq FROM delivery WHERE source = ?1", params![source], |r| r.get::<_, i64>(0))
            .optional()
            .map(|o| o.map(|v| u64::try_from(v).unwrap_or(0)))
            .map_err(|e| self.err(e))
    }

    fn insert_rows(&mut self, rows: &[ConnectionRecord], verdicts: &[Verdict], once: Option<(&str, u64)>) -> Result<Delivery, StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        if let Some((source, seq)) = once {
            let last: Option<i64> = tx
                .query_row("SELECT last_seq FROM delivery WHERE source = ?1", params![source], |r| r.get(0))
                .optional()
                .map_err(err)?;
            let seq_i = i64::try_from(seq).unwrap_or(i64::MAX);
            if last.is_some_and(|l| l >= seq_i) {
                return Ok(Delivery::AlreadyDelivered);
            }
            tx.execute(
                "INSERT INTO delivery (source, last_seq) VALUES (?1, ?2) ON CONFLICT (source) DO UPDATE SET last_seq = excluded.last_seq",
                params![source, seq_i],
            )
            .map_err(err)?;
        }
        // Ids learned inside a transaction that may roll back are kept aside until commit.
        let mut new_exe: HashMap<ExeRecord, i64> = HashMap::new();
        let mut new_text: HashMap<(Side, String), i64> = HashMap::new();
        let mut delta = SummaryDelta::default();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO connections (contime, send, recv, events, exe_id, pexe_id, gpexe_id, uid, family, protocol, lport, rport, laddr_id, raddr_id, domain_id, netns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                )
                .map_err(err)?;
            for r in rows {
                let mut exe_id = |e: &ExeRecord| -> rusqlite::Result<i64> {
                    if let Some(id) = self.exe_ids.get(e).or_else(|| new_exe.get(e)) {
                        return Ok(*id);
                    }
                    let id = intern_exe(&tx, e)?;
                    new_exe.insert(e.clone(), id);
                    Ok(id)
                };
                let (e, p, g) = (exe_id(&r.exe).map_err(err)?, exe_id(&r.pexe).map_err(err)?, exe_id(&r.gpexe).map_err(err)?);
                let mut text_id = |side: Side, v: &str| -> rusqlite::Result<i64> {
                    let key = (side, v.to_string());
                    if let Some(id) = self.text_ids.get(&key).or_else(|| new_text.get(&key)) {
                        return Ok(*id);
                    }
                    let id = intern_text(&tx, side, v)?;
                    new_text.insert(key, id);
                    Ok(id)
                };
                let la = text_id(Side::Address, &r.laddr).map_err(err)?;
                let ra = text_id(Side::Address, &r.raddr).map_err(err)?;
                let d = text_id(Side::Domain, &r.domain).map_err(err)?;
                insert
                    .execute(params![r.contime, r.send, r.recv, r.events, e, p, g, r.uid, r.family, r.protocol, r.lport, r.rport, la, ra, d, r.netns])
                    .map_err(err)?;
                let ids = RowIds {
                    contime: r.contime,
                    send: r.send,
                    recv: r.recv,
                    events: r.events,
                    exe: e,
                    pexe: p,
                    gpexe: g,
                    uid: r.uid,
                    lport: r.lport,
                    rport: r.rport,
                    laddr: la,
                    raddr: ra,
                    domain: d,
                    netns: r.netns,
                };
                delta.add(&ids, 1);
            }
        }
        // Same transaction as the rows: a reader never sees one without the other.
        delta.apply(&tx).map_err(err)?;
        crate::verdict::upsert(&tx, verdicts).map_err(err)?;
        tx.commit().map_err(err)?;
        if self.exe_ids.len() > 100_000 {
            self.exe_ids.clear();
        }
        if self.text_ids.len() > 100_000 {
            self.text_ids.clear();
        }
        self.exe_ids.extend(new_exe);
        self.text_ids.extend(new_text);
        Ok(Delivery::Inserted(rows.len()))
    }

    /// Deletes connections older than `cutoff` (unix seconds) in short batches so readers
    /// are never blocked for long, then side rows nothing refers to (never id 0). Each
    /// batch subtracts its rows from the summaries in the same transaction.
    pub fn prune(&mut self, cutoff: i64) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport::default();
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        loop {
            let tx = self.conn.transaction().map_err(err)?;
            let batch: Vec<(i64, RowIds)> = {
                let mut select = tx
                    .prepare_cached(&format!("SELECT rowid, {ROW_IDS_COLUMNS} FROM connections WHERE contime < ?1 LIMIT ?2"))
                    .map_err(err)?;
                let rows = select
                    .query_map(params![cutoff, PRUNE_BATCH], |r| Ok((r.get::<_, i64>(0)?, RowIds::from_row(r, 1)?)))
                    .map_err(err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(err)?
            };
            let mut delta = SummaryDelta::default();
            {
                let mut delete = tx.prepare_cached("DELETE FROM connections WHERE rowid = ?1").map_err(err)?;
                for (rowid, ids) in &batch {
                    delete.execute(params![rowid]).map_err(err)?;
                    delta.add(ids, -1);
                }
            }
            if !delta.is_empty() {
                delta.apply(&tx).map_err(err)?;
            }
            tx.commit().map_err(err)?;
            report.connections += batch.len() as u64;
            if (batch.len() as i64) < PRUNE_BATCH {
                break;
            }
        }
        if report.connections > 0 {
            report.executables = self
                .conn
                .execute(
                    "DELETE FROM executables WHERE id != 0 AND id NOT IN (SELECT exe_id FROM connections)
                     AND id NOT IN (SELECT pexe_id FROM connections) AND id NOT IN (SELECT gpexe_id FROM connections)",
                    [],
                )
                .map_err(|e| self.err(e))? as u64;
            report.domains = self
                .conn
                .execute("DELETE FROM domains WHERE id != 0 AND id NOT IN (SELECT domain_id FROM connections)", [])
                .map_err(|e| self.err(e))? as u64;
            report.addresses = self
                .conn
                .execute(
                    "DELETE FROM addresses WHERE id != 0 AND id NOT IN (SELECT laddr_id FROM connections) AND id NOT IN (SELECT raddr_id FROM connections)",
                    [],
                )
                .map_err(|e| self.err(e))? as u64;
            // Verdicts on hashes no executable has any more.
            self.conn
                .execute("DELETE FROM virustotal WHERE sha256 NOT IN (SELECT sha256 FROM executables)", [])
                .map_err(|e| self.err(e))?;
            self.exe_ids.clear();
            self.text_ids.clear();
        }
        Ok(report)
    }

    /// Compares the summary tables with a recount of `connections` (reads everything:
    /// for tests and `picosnitch check`-style repairs, not for the UI).
    pub fn check_summaries(&self) -> Result<SummaryCheck, StoreError> {
        if !self.has_summaries() {
            return Ok(SummaryCheck::default());
        }
        let [hour_mismatches, day_mismatches, week_mismatches] = summary::mismatches(&self.conn).map_err(|e| self.err(e))?;
        Ok(SummaryCheck { hour_mismatches, day_mismatches, week_mismatches })
    }

    /// Recounts the summary tables from `connections` in one transaction.
    pub fn rebuild_summaries(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        summary::rebuild(&tx).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Connections since `since` with their side-table values, newest first.
    pub fn connections_view(&self, since: i64, limit: usize) -> Result<Vec<ConnectionRecord>, StoreError> {
        let sql = format!("{} WHERE c.contime >= ?1 ORDER BY c.contime DESC LIMIT ?2", crate::joined::SELECT_JOINED);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![since, limit as i64], crate::joined::connection)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }
}

/// A path as the path of a `file:` URI.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.display().to_string().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

fn intern_exe(tx: &rusqlite::Transaction<'_>, e: &ExeRecord) -> rusqlite::Result<i64> {
    if e == &ExeRecord::default() {
        return Ok(0);
    }
    tx.prepare_cached("INSERT OR IGNORE INTO executables (exe, name, cmdline, sha256) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![e.exe, e.name, e.cmdline, e.sha256])?;
    tx.prepare_cached("SELECT id FROM executables WHERE exe = ?1 AND name = ?2 AND cmdline = ?3 AND sha256 = ?4")?
        .query_row(params![e.exe, e.name, e.cmdline, e.sha256], |r| r.get(0))
}

fn intern_text(tx: &rusqlite::Transaction<'_>, side: Side, v: &str) -> rusqlite::Result<i64> {
    if v.is_empty() {
        return Ok(0);
    }
    let (ins, sel) = match side {
        Side::Domain => ("INSERT OR IGNORE INTO domains (domain) VALUES (?1)", "SELECT id FROM domains WHERE domain = ?1"),
        Side::Address => ("INSERT OR IGNORE INTO addresses (addr) VALUES (?1)", "SELECT id FROM addresses WHERE addr = ?1"),
    };
    tx.prepare_cached(ins)?.execute(params![v])?;
    tx.prepare_cached(sel)?.query_row(params![v], |r| r.get::<_, i64>(0)).optional().map(|o| o.unwrap_or(0))
}

impl Store {
    /// Caps the database size, to exercise the disk-full path in tests.
    #[doc(hidden)]
    pub fn set_max_page_count_for_tests(&self, pages: i64) -> Result<(), StoreError> {
        self.conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(())).map_err(|e| self.err(e))
    }
}
