//! Per-dimension summaries of `connections` by hour and by day (schema version 2).
//!
//! A summary cell is (dim, bucket, value) -> (rows, send, recv, events): the sums over
//! every `connections` row whose `contime` falls in [bucket, bucket + width) and whose
//! column for `dim` equals `value`. Insert adds a batch's cells, prune subtracts the cells
//! of the rows it deletes in the same transaction, so at every commit the summaries equal
//! a recount; `rows` reaching zero deletes the cell, so an empty cell never lingers.
use rusqlite::{params, Connection};
use std::collections::BTreeMap;

/// A column of `connections` that has summaries, or `Total` (value 0) for per-time sums.
/// The discriminant is the `dim` stored in the tables: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SummaryDim {
    Exe = 0,
    Parent = 1,
    Grandparent = 2,
    User = 3,
    LocalPort = 4,
    RemotePort = 5,
    LocalAddress = 6,
    RemoteAddress = 7,
    Domain = 8,
    Total = 9,
    /// Network namespaces (schema version 4): the web UI counts them per period.
    Netns = 10,
}

impl SummaryDim {
    pub(crate) const ALL: [SummaryDim; 11] = [
        SummaryDim::Exe,
        SummaryDim::Parent,
        SummaryDim::Grandparent,
        SummaryDim::User,
        SummaryDim::LocalPort,
        SummaryDim::RemotePort,
        SummaryDim::LocalAddress,
        SummaryDim::RemoteAddress,
        SummaryDim::Domain,
        SummaryDim::Total,
        SummaryDim::Netns,
    ];

    /// The `connections` expression whose value the dimension sums by.
    pub(crate) fn column(self) -> &'static str {
        match self {
            SummaryDim::Exe => "exe_id",
            SummaryDim::Parent => "pexe_id",
            SummaryDim::Grandparent => "gpexe_id",
            SummaryDim::User => "uid",
            SummaryDim::LocalPort => "lport",
            SummaryDim::RemotePort => "rport",
            SummaryDim::LocalAddress => "laddr_id",
            SummaryDim::RemoteAddress => "raddr_id",
            SummaryDim::Domain => "domain_id",
            SummaryDim::Total => "0",
            SummaryDim::Netns => "netns",
        }
    }

    fn value(self, r: &RowIds) -> i64 {
        match self {
            SummaryDim::Exe => r.exe,
            SummaryDim::Parent => r.pexe,
            SummaryDim::Grandparent => r.gpexe,
            SummaryDim::User => r.uid,
            SummaryDim::LocalPort => r.lport,
            SummaryDim::RemotePort => r.rport,
            SummaryDim::LocalAddress => r.laddr,
            SummaryDim::RemoteAddress => r.raddr,
            SummaryDim::Domain => r.domain,
            SummaryDim::Total => 0,
            SummaryDim::Netns => r.netns,
        }
    }
}

/// A summary table and the width of its time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Level {
    pub table: &'static str,
    pub width: i64,
}

pub(crate) const HOUR: Level = Level { table: "summary_hour", width: 3_600 };
pub(crate) const DAY: Level = Level { table: "summary_day", width: 86_400 };
/// Weeks of the unix epoch (they start on Thursdays): only a coarser grain for long
/// ranges, where a day per bucket would mean 30 copies of every local port.
pub(crate) const WEEK: Level = Level { table: "summary_week", width: 7 * 86_400 };
/// Fine to coarse.
pub(crate) const LEVELS: [Level; 3] = [HOUR, DAY, WEEK];

/// The start of the bucket of `width` seconds that holds `t`.
pub(crate) fn bucket_of(t: i64, width: i64) -> i64 {
    t - t.rem_euclid(width)
}

/// A `connections` row as the summaries see it: its time, counters and column values.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RowIds {
    pub contime: i64,
    pub send: i64,
    pub recv: i64,
    pub events: i64,
    pub exe: i64,
    pub pexe: i64,
    pub gpexe: i64,
    pub uid: i64,
    pub lport: i64,
    pub rport: i64,
    pub laddr: i64,
    pub raddr: i64,
    pub domain: i64,
    pub netns: i64,
}

impl RowIds {
    /// Reads the columns selected by [`ROW_IDS_COLUMNS`] starting at `first`.
    pub(crate) fn from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<RowIds> {
        Ok(RowIds {
            contime: r.get(first)?,
            send: r.get(first + 1)?,
            recv: r.get(first + 2)?,
            events: r.get(first + 3)?,
            exe: r.get(first + 4)?,
            pexe: r.get(first + 5)?,
            gpexe: r.get(first + 6)?,
            uid: r.get(first + 7)?,
            lport: r.get(first + 8)?,
            rport: r.get(first + 9)?,
            laddr: r.get(first + 10)?,
            raddr: r.get(first + 11)?,
            domain: r.get(first + 12)?,
            netns: r.get(first + 13)?,
        })
    }
}

pub(crate) const ROW_IDS_COLUMNS: &str = "contime, send, recv, events, exe_id, pexe_id, gpexe_id, uid, lport, rport, laddr_id, raddr_id, domain_id, netns";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sums {
    rows: i64,
    send: i64,
    recv: i64,
    events: i64,
}

/// Changes to the summaries from a set of inserted (+1) or deleted (-1) rows, summed in
/// memory so a batch of many rows for one program costs one upsert per cell.
#[derive(Default)]
pub(crate) struct SummaryDelta {
    // BTreeMap: applying cells in key order keeps the upserts local in the B-trees.
    cells: BTreeMap<(Level, SummaryDim, i64, i64), Sums>,
}

impl SummaryDelta {
    pub(crate) fn add(&mut self, r: &RowIds, sign: i64) {
        self.add_dims(r, sign, &SummaryDim::ALL);
    }

    /// Like [`SummaryDelta::add`] for some dimensions only (a backfill of new ones).
    pub(crate) fn add_dims(&mut self, r: &RowIds, sign: i64, dims: &[SummaryDim]) {
        for level in LEVELS {
            let bucket = bucket_of(r.contime, level.width);
            for &dim in dims {
                let s = self.cells.entry((level, dim, bucket, dim.value(r))).or_default();
                s.rows += sign;
                s.send = s.send.saturating_add(sign.saturating_mul(r.send));
                s.recv = s.recv.saturating_add(sign.saturating_mul(r.recv));
                s.events = s.events.saturating_add(sign.saturating_mul(r.events));
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Writes the changes; must run inside the transaction that changes `connections`.
    pub(crate) fn apply(&self, conn: &Connection) -> rusqlite::Result<()> {
        let sql = |level: Level| {
            let upsert = format!(
                "INSERT INTO {t} (dim, bucket, value, rows, send, recv, events) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT DO UPDATE SET rows = rows + excluded.rows, send = send + excluded.send,
                 recv = recv + excluded.recv, events = events + excluded.events",
                t = level.table
            );
            (
                upsert.clone(),
                format!("{upsert} RETURNING rows"),
                format!("DELETE FROM {} WHERE dim = ?1 AND bucket = ?2 AND value = ?3", level.table),
            )
        };
        let statements = LEVELS.map(sql);
        for ((level, dim, bucket, value), s) in &self.cells {
            if *s == Sums::default() {
                continue;
            }
            let Some((add, subtract, delete)) = LEVELS.iter().position(|l| l == level).map(|i| &statements[i]) else {
                continue;
            };
            let args = params![*dim as i64, bucket, value, s.rows, s.send, s.recv, s.events];
            if s.rows > 0 {
                conn.prepare_cached(add)?.execute(args)?;
                continue;
            }
            let rows: i64 = conn.prepare_cached(subtract)?.query_row(args, |r| r.get(0))?;
            // A cell whose rows are all gone is removed, so summaries equal a recount.
            if rows <= 0 {
                conn.prepare_cached(delete)?.execute(params![*dim as i64, bucket, value])?;
            }
        }
        Ok(())
    }
}

/// The SQL that recounts one level's summaries from `connections`.
fn recount_sql(level: Level) -> String {
    let w = level.width;
    SummaryDim::ALL
        .iter()
        .map(|d| {
            format!(
                "SELECT {dim} AS dim, contime - (contime % {w} + {w}) % {w} AS bucket, {col} AS value,
                        count(*) AS rows, sum(send) AS send, sum(recv) AS recv, sum(events) AS events
                 FROM connections GROUP BY 2, 3",
                dim = *d as i64,
                col = d.column()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Rows read per pass of [`rebuild`]: six hours keeps the cells in memory small (a few
/// hundred thousand on a busy history) while reading `connections` once, in time order.
const REBUILD_CHUNK: i64 = 6 * 3_600;

/// Replaces every summary with a recount: the migration's backfill, and a repair. One
/// pass over `connections` by time, summing in memory, is several times faster than a
/// GROUP BY per dimension and level (which took ~10 minutes on 10 million rows).
pub(crate) fn rebuild(conn: &Connection) -> rusqlite::Result<()> {
    rebuild_dims(conn, &SummaryDim::ALL)
}

/// Recounts the summaries of `dims` only, leaving the others as they are: how a
/// migration fills in a dimension added later (schema 3's network namespaces).
pub(crate) fn rebuild_dims(conn: &Connection, dims: &[SummaryDim]) -> rusqlite::Result<()> {
    for level in LEVELS {
        for dim in dims {
            conn.execute(&format!("DELETE FROM {} WHERE dim = ?1", level.table), [*dim as i64])?;
        }
    }
    let bounds: (Option<i64>, Option<i64>) =
        conn.query_row("SELECT (SELECT min(contime) FROM connections), (SELECT max(contime) FROM connections)", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(first), Some(last)) = bounds else { return Ok(()) };
    let mut select = conn.prepare(&format!("SELECT {ROW_IDS_COLUMNS} FROM connections WHERE contime >= ?1 AND contime < ?2"))?;
    let mut from = bucket_of(first, REBUILD_CHUNK);
    while from <= last {
        let mut delta = SummaryDelta::default();
        let mut rows = select.query(params![from, from + REBUILD_CHUNK])?;
        while let Some(r) = rows.next()? {
            delta.add_dims(&RowIds::from_row(r, 0)?, 1, dims);
        }
        delta.apply(conn)?;
        from += REBUILD_CHUNK;
    }
    Ok(())
}

/// Cells that differ between each summary table and a recount, per level (hour, day,
/// week).
pub(crate) fn mismatches(conn: &Connection) -> rusqlite::Result<[u64; 3]> {
    let mut out = [0u64; 3];
    for (i, level) in LEVELS.iter().enumerate() {
        let cols = "dim, bucket, value, rows, send, recv, events";
        let sql = format!(
            "SELECT count(*) FROM (
                SELECT * FROM (SELECT {cols} FROM {t} EXCEPT SELECT {cols} FROM ({r}))
                UNION ALL
                SELECT * FROM (SELECT {cols} FROM ({r}) EXCEPT SELECT {cols} FROM {t})
             )",
            t = level.table,
            r = recount_sql(*level)
        );
        let n: i64 = conn.query_row(&sql, [], |r| r.get(0))?;
        out[i] = u64::try_from(n).unwrap_or(0);
    }
    Ok(out)
}
