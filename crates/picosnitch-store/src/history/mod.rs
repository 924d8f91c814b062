//! The history browser's queries: bytes and connections grouped by one dimension over a
//! time range, under a stack of filters; and the connections behind a row.
//!
//! Unfiltered queries read the summary tables for the whole hours and days of the range
//! and `connections` only for the ragged edges (under an hour each), so their cost grows
//! with the number of distinct values, not with the number of rows. Filtered queries
//! read `connections`, through the (exe|pexe|gpexe)_id indexes when a filter names an
//! executable.
use crate::error::StoreError;
use crate::joined::SELECT_JOINED;
use crate::record::ConnectionRecord;
use crate::store::Store;
use crate::summary::{Level, SummaryDim, LEVELS};
use split::{split, Part, Source};

mod many;
mod series;
mod split;
pub use many::Totals;
pub use series::{SeriesAnswer, SeriesLine, SeriesQuery};
use rusqlite::types::Value;
use std::collections::HashMap;

/// Which process of a connection an executable dimension looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Process,
    Parent,
    Grandparent,
}

impl Role {
    fn column(self) -> &'static str {
        match self {
            Role::Process => "exe_id",
            Role::Parent => "pexe_id",
            Role::Grandparent => "gpexe_id",
        }
    }

    fn summary(self) -> SummaryDim {
        match self {
            Role::Process => SummaryDim::Exe,
            Role::Parent => SummaryDim::Parent,
            Role::Grandparent => SummaryDim::Grandparent,
        }
    }
}

/// Which field of an executable an executable dimension groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExeField {
    Executable,
    Name,
    Command,
    Sha256,
}

impl ExeField {
    fn column(self) -> &'static str {
        match self {
            ExeField::Executable => "exe",
            ExeField::Name => "name",
            ExeField::Command => "cmdline",
            ExeField::Sha256 => "sha256",
        }
    }
}

/// What rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Exe(Role, ExeField),
    User,
    LocalPort,
    RemotePort,
    LocalAddress,
    RemoteAddress,
    Domain,
    /// The network namespace's inode.
    Netns,
    /// Time buckets of `width` seconds, aligned to the unix epoch (so to UTC hours).
    Time { width: i64 },
}

impl Dimension {
    /// The `connections` expression the dimension is counted by, before any side-table
    /// lookup: an id, a number, or the start of a time bucket.
    fn raw_expr(self) -> String {
        match self {
            Dimension::Exe(role, _) => format!("c.{}", role.column()),
            Dimension::User => "c.uid".into(),
            Dimension::LocalPort => "c.lport".into(),
            Dimension::RemotePort => "c.rport".into(),
            Dimension::LocalAddress => "c.laddr_id".into(),
            Dimension::RemoteAddress => "c.raddr_id".into(),
            Dimension::Domain => "c.domain_id".into(),
            Dimension::Netns => "c.netns".into(),
            Dimension::Time { width } => {
                let w = width.max(1);
                format!("c.contime - (c.contime % {w} + {w}) % {w}")
            }
        }
    }

    fn summary(self) -> SummaryDim {
        match self {
            Dimension::Exe(role, _) => role.summary(),
            Dimension::User => SummaryDim::User,
            Dimension::LocalPort => SummaryDim::LocalPort,
            Dimension::RemotePort => SummaryDim::RemotePort,
            Dimension::LocalAddress => SummaryDim::LocalAddress,
            Dimension::RemoteAddress => SummaryDim::RemoteAddress,
            Dimension::Domain => SummaryDim::Domain,
            Dimension::Netns => SummaryDim::Netns,
            Dimension::Time { .. } => SummaryDim::Total,
        }
    }

    /// The side table holding the text of this dimension's ids, if it has one.
    fn side_table(self) -> Option<(&'static str, &'static str)> {
        match self {
            Dimension::LocalAddress | Dimension::RemoteAddress => Some(("addresses", "addr")),
            Dimension::Domain => Some(("domains", "domain")),
            _ => None,
        }
    }

    /// The summary levels whose buckets this dimension can be read from.
    fn levels(self) -> Vec<Level> {
        match self {
            Dimension::Time { width } => LEVELS.into_iter().filter(|l| width > 0 && width % l.width == 0).collect(),
            _ => LEVELS.to_vec(),
        }
    }
}

/// The value a row is grouped by: a number (uid, port, time bucket, address or domain
/// id) or an executable's text field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    Int(i64),
    Text(String),
}

/// One row of a grouped history view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub key: GroupKey,
    /// What to show: the text of an executable field, address or domain; empty for
    /// numbers (the caller formats uids, ports and times its own way).
    pub label: String,
    pub send: i64,
    pub recv: i64,
    /// Connections started (the sum of `events`).
    pub events: i64,
}

/// Keep (or with `exclude`, drop) rows whose `dim` equals `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub dim: Dimension,
    pub key: GroupKey,
    pub exclude: bool,
}

/// A half-open range of `contime`, [start, end); `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub range: TimeRange,
    pub group: Dimension,
    pub filters: Vec<Filter>,
}

/// Rows in key order (numbers ascending, then text ascending), and how they were read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryAnswer {
    pub rows: Vec<HistoryRow>,
    pub used_summaries: bool,
}

/// Stops a running query of another thread's [`Store`]; the query returns
/// [`StoreError::Interrupted`].
pub struct QueryInterrupt(rusqlite::InterruptHandle);

impl QueryInterrupt {
    pub fn interrupt(&self) {
        self.0.interrupt();
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    /// `connections` rows counted; zero after subtraction means the value is absent.
    rows: i64,
    send: i64,
    recv: i64,
    events: i64,
}

impl Sums {
    fn add(&mut self, o: Sums, sign: i64) {
        self.rows = self.rows.saturating_add(sign * o.rows);
        self.send = self.send.saturating_add(sign * o.send);
        self.recv = self.recv.saturating_add(sign * o.recv);
        self.events = self.events.saturating_add(sign * o.events);
    }
}

fn range_sql(column: &str, start: Option<i64>, end: Option<i64>, args: &mut Vec<Value>) -> String {
    let mut out = String::new();
    if let Some(s) = start {
        args.push(Value::Integer(s));
        out.push_str(&format!(" AND {column} >= ?{}", args.len()));
    }
    if let Some(e) = end {
        args.push(Value::Integer(e));
        out.push_str(&format!(" AND {column} < ?{}", args.len()));
    }
    out
}

fn filter_sql(f: &Filter, args: &mut Vec<Value>) -> String {
    let not = if f.exclude { "NOT " } else { "" };
    let mut bind = |v: Value| {
        args.push(v);
        format!("?{}", args.len())
    };
    let key = match &f.key {
        GroupKey::Int(i) => Value::Integer(*i),
        GroupKey::Text(t) => Value::Text(t.clone()),
    };
    match f.dim {
        Dimension::Exe(role, field) => {
            let n = bind(key);
            format!("c.{} {not}IN (SELECT id FROM executables WHERE {} = {n})", role.column(), field.column())
        }
        Dimension::Time { width } => {
            let n = bind(key);
            format!("{not}(c.contime >= {n} AND c.contime < {n} + {})", width.max(1))
        }
        other => match (other.side_table(), &f.key) {
            // An address or domain given as its text rather than its id.
            (Some((table, column)), GroupKey::Text(_)) => {
                let n = bind(key);
                format!("{} {not}IN (SELECT id FROM {table} WHERE {column} = {n})", other.raw_expr())
            }
            _ => {
                let n = bind(key);
                let op = if f.exclude { "!=" } else { "=" };
                format!("{} {op} {n}", other.raw_expr())
            }
        },
    }
}

impl Store {
    /// Grouped sums for the history browser.
    pub fn history(&self, q: &HistoryQuery) -> Result<HistoryAnswer, StoreError> {
        let use_summaries = q.filters.is_empty() && self.summarized(q.group);
        // One read transaction: every part sees the same snapshot even if the writer
        // commits meanwhile. WAL readers never block the writer.
        let tx = self.conn().unchecked_transaction().map_err(|e| self.err(e))?;
        let mut sums: HashMap<i64, Sums> = HashMap::new();
        if use_summaries {
            // Parts that start after the newest row are empty; skipping them saves
            // reading a dimension's index for "the rest of today" and the like.
            let newest: Option<i64> = self.conn().query_row("SELECT max(contime) FROM connections", [], |r| r.get(0)).map_err(|e| self.err(e))?;
            for part in split(q.range, &q.group.levels()) {
                if part.start.zip(newest).is_some_and(|(s, n)| s > n) || newest.is_none() {
                    continue;
                }
                self.sum_part(q.group, part, &mut sums)?;
            }
        } else {
            let mut args = Vec::new();
            let mut sql = format!("SELECT {g}, 1, c.send, c.recv, c.events FROM connections c WHERE 1 = 1", g = q.group.raw_expr());
            sql.push_str(&range_sql("c.contime", q.range.start, q.range.end, &mut args));
            for f in &q.filters {
                sql.push_str(" AND ");
                sql.push_str(&filter_sql(f, &mut args));
            }
            self.collect_sums(&sql, &args, 1, &mut sums)?;
        }
        // A value whose rows all lay in subtracted parts is not in the range.
        sums.retain(|_, s| s.rows > 0);
        let rows = self.label(q.group, sums)?;
        tx.finish().map_err(|e| self.err(e))?;
        Ok(HistoryAnswer { rows, used_summaries: use_summaries })
    }

    /// Whether this history's summaries hold `dim`.
    fn summarized(&self, dim: Dimension) -> bool {
        match dim {
            Dimension::Netns => self.has_netns_summaries(),
            _ => self.has_summaries(),
        }
    }

    fn sum_part(&self, group: Dimension, part: Part, sums: &mut HashMap<i64, Sums>) -> Result<(), StoreError> {
        // Rows are summed here rather than with GROUP BY: SQLite would sort them first,
        // which costs several times the scan on a high-cardinality dimension.
        let mut args = Vec::new();
        let sql = match part.source {
            Source::Raw => {
                let mut sql = format!("SELECT {g}, 1, c.send, c.recv, c.events FROM connections c WHERE 1 = 1", g = group.raw_expr());
                sql.push_str(&range_sql("c.contime", part.start, part.end, &mut args));
                sql
            }
            Source::Summary(level) => {
                let key = match group {
                    Dimension::Time { width } => {
                        let w = width.max(1);
                        format!("bucket - (bucket % {w} + {w}) % {w}")
                    }
                    _ => "value".into(),
                };
                let mut sql = format!("SELECT {key}, rows, send, recv, events FROM {t} WHERE dim = {d}", t = level.table, d = group.summary() as i64);
                sql.push_str(&range_sql("bucket", part.start, part.end, &mut args));
                sql
            }
        };
        self.collect_sums(&sql, &args, part.sign, sums)
    }

    /// Adds (sign 1) or subtracts (-1) rows of (key, rows, send, recv, events).
    fn collect_sums(&self, sql: &str, args: &[Value], sign: i64, sums: &mut HashMap<i64, Sums>) -> Result<(), StoreError> {
        let mut stmt = self.conn().prepare_cached(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args.iter())).map_err(|e| self.err(e))?;
        let get = |r: &rusqlite::Row, i| r.get::<_, i64>(i).map_err(|e| self.err(e));
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let s = Sums { rows: get(r, 1)?, send: get(r, 2)?, recv: get(r, 3)?, events: get(r, 4)? };
            sums.entry(get(r, 0)?).or_default().add(s, sign);
        }
        Ok(())
    }

    /// Turns sums by id or number into rows: looks up side-table text and, for
    /// executable fields, merges ids that share the text (one name, many binaries).
    fn label(&self, group: Dimension, sums: HashMap<i64, Sums>) -> Result<Vec<HistoryRow>, StoreError> {
        let lookup = |sql: &str, id: i64| -> Result<String, StoreError> {
            let mut stmt = self.conn().prepare_cached(sql).map_err(|e| self.err(e))?;
            let mut rows = stmt.query([id]).map_err(|e| self.err(e))?;
            match rows.next().map_err(|e| self.err(e))? {
                Some(r) => r.get(0).map_err(|e| self.err(e)),
                // A side row pruned between the sums and the lookup: shown as empty.
                None => Ok(String::new()),
            }
        };
        let mut out: Vec<HistoryRow> = match group {
            Dimension::Exe(_, field) => {
                let sql = format!("SELECT {} FROM executables WHERE id = ?1", field.column());
                let mut by_text: HashMap<String, Sums> = HashMap::new();
                for (id, s) in sums {
                    by_text.entry(lookup(&sql, id)?).or_default().add(s, 1);
                }
                by_text
                    .into_iter()
                    .map(|(t, s)| HistoryRow { key: GroupKey::Text(t.clone()), label: t, send: s.send, recv: s.recv, events: s.events })
                    .collect()
            }
            Dimension::LocalAddress | Dimension::RemoteAddress | Dimension::Domain => {
                let sql = if group == Dimension::Domain {
                    "SELECT domain FROM domains WHERE id = ?1"
                } else {
                    "SELECT addr FROM addresses WHERE id = ?1"
                };
                let mut v = Vec::with_capacity(sums.len());
                for (id, s) in sums {
                    v.push(HistoryRow { key: GroupKey::Int(id), label: lookup(sql, id)?, send: s.send, recv: s.recv, events: s.events });
                }
                v
            }
            Dimension::User | Dimension::LocalPort | Dimension::RemotePort | Dimension::Netns | Dimension::Time { .. } => sums
                .into_iter()
                .map(|(k, s)| HistoryRow { key: GroupKey::Int(k), label: String::new(), send: s.send, recv: s.recv, events: s.events })
                .collect(),
        };
        match group {
            Dimension::LocalAddress | Dimension::RemoteAddress | Dimension::Domain => {
                out.sort_by(|a, b| a.label.cmp(&b.label).then(a.key.cmp(&b.key)));
            }
            _ => out.sort_by(|a, b| a.key.cmp(&b.key)),
        }
        Ok(out)
    }

    /// The connections behind a view: rows in `range` that pass `filters`, newest first,
    /// at most `limit`.
    pub fn history_connections(&self, range: TimeRange, filters: &[Filter], limit: usize) -> Result<Vec<ConnectionRecord>, StoreError> {
        // Under an executable filter, SQLite would collect every row of the program and
        // sort them for the newest few (seconds for a busy one). Instead each matching
        // executable's newest rows come straight off its (id, contime) index, merged here.
        let pinned = filters.iter().position(|f| matches!(f.dim, Dimension::Exe(..)) && !f.exclude);
        let Some(i) = pinned else {
            return self.newest_connections(range, filters, None, limit);
        };
        let (Dimension::Exe(role, field), key) = (filters[i].dim, &filters[i].key) else {
            return self.newest_connections(range, filters, None, limit);
        };
        let key = match key {
            GroupKey::Int(n) => Value::Integer(*n),
            GroupKey::Text(t) => Value::Text(t.clone()),
        };
        let ids: Vec<i64> = {
            let mut stmt = self.conn().prepare_cached(&format!("SELECT id FROM executables WHERE {} = ?1", field.column())).map_err(|e| self.err(e))?;
            let rows = stmt.query_map([key], |r| r.get(0)).map_err(|e| self.err(e))?;
            rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))?
        };
        let rest: Vec<Filter> = filters.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, f)| f.clone()).collect();
        let mut all = Vec::new();
        for id in ids {
            all.extend(self.newest_connections(range, &rest, Some((role.column(), id)), limit)?);
        }
        all.sort_by_key(|c| std::cmp::Reverse(c.contime));
        all.truncate(limit);
        Ok(all)
    }

    fn newest_connections(&self, range: TimeRange, filters: &[Filter], pin: Option<(&str, i64)>, limit: usize) -> Result<Vec<ConnectionRecord>, StoreError> {
        let mut args = Vec::new();
        let mut sql = format!("{SELECT_JOINED} WHERE 1 = 1");
        if let Some((column, id)) = pin {
            args.push(Value::Integer(id));
            sql.push_str(&format!(" AND c.{column} = ?{}", args.len()));
        }
        sql.push_str(&range_sql("c.contime", range.start, range.end, &mut args));
        for f in filters {
            sql.push_str(" AND ");
            sql.push_str(&filter_sql(f, &mut args));
        }
        args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" ORDER BY c.contime DESC LIMIT ?{}", args.len()));
        let mut stmt = self.conn().prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), crate::joined::connection)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }

    /// The oldest and newest `contime` in the history, if any (for stepping limits).
    pub fn history_bounds(&self) -> Result<Option<(i64, i64)>, StoreError> {
        self.conn()
            // Two subqueries: SQLite answers a lone min() or max() from the index end,
            // but both in one SELECT scan the whole index.
            .query_row("SELECT (SELECT min(contime) FROM connections), (SELECT max(contime) FROM connections)", [], |r| {
                Ok(match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                    (Some(a), Some(b)) => Some((a, b)),
                    _ => None,
                })
            })
            .map_err(|e| self.err(e))
    }

    /// A handle that interrupts this store's running query from another thread.
    pub fn interrupt_handle(&self) -> QueryInterrupt {
        QueryInterrupt(self.conn().get_interrupt_handle())
    }
}
