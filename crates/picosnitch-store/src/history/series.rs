//! Time series for charts: bytes and connections per time bucket, kept apart for a few
//! chosen values of one dimension (the top contributors) with everything else summed as
//! the rest.
//!
//! Without filters, whole hours, days and weeks come from the summary tables of the
//! dimension (only levels whose width divides the bucket width, so every summary cell
//! falls inside one bucket) and raw rows only at the ragged edges; with filters, from
//! `connections`.
use super::split::{split, Source};
use super::{filter_sql, range_sql, Dimension, Filter, GroupKey, TimeRange};
use crate::error::StoreError;
use crate::store::Store;
use crate::summary::bucket_of;
use rusqlite::types::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesQuery {
    /// [start, end): both bounds are needed to lay out the buckets.
    pub start: i64,
    pub end: i64,
    /// Bucket width in seconds; buckets are aligned to multiples of it since the epoch.
    pub width: i64,
    /// The dimension whose `keys` get lines of their own; not `Time`.
    pub group: Dimension,
    /// The values kept apart, as [`Store::history`] returns them (address and domain
    /// ids, or their text).
    pub keys: Vec<GroupKey>,
    pub filters: Vec<Filter>,
}

/// One line of a chart: a value per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesLine {
    pub send: Vec<i64>,
    pub recv: Vec<i64>,
    pub events: Vec<i64>,
}

impl SeriesLine {
    fn zeros(n: usize) -> SeriesLine {
        SeriesLine { send: vec![0; n], recv: vec![0; n], events: vec![0; n] }
    }

    fn add(&mut self, i: usize, send: i64, recv: i64, events: i64, sign: i64) {
        self.send[i] = self.send[i].saturating_add(sign * send);
        self.recv[i] = self.recv[i].saturating_add(sign * recv);
        self.events[i] = self.events[i].saturating_add(sign * events);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesAnswer {
    /// Start of the first bucket (at or before the query's start).
    pub first: i64,
    pub width: i64,
    /// One line per key, in the order of the query's keys.
    pub lines: Vec<SeriesLine>,
    /// Everything not in a key's line; with no keys, the total.
    pub rest: SeriesLine,
    pub used_summaries: bool,
}

impl SeriesAnswer {
    pub fn buckets(&self) -> usize {
        self.rest.send.len()
    }
}

impl Store {
    /// The number of buckets a series of `width` over [start, end) has.
    pub fn series_buckets(start: i64, end: i64, width: i64) -> usize {
        if end <= start || width <= 0 {
            return 0;
        }
        let first = bucket_of(start, width);
        usize::try_from((end - first + width - 1) / width).unwrap_or(usize::MAX)
    }

    /// Sums per time bucket, one line per key of `q.group` and the rest. The caller
    /// bounds the number of buckets (see [`Store::series_buckets`]).
    pub fn series(&self, q: &SeriesQuery) -> Result<SeriesAnswer, StoreError> {
        let width = q.width.max(1);
        let n = Self::series_buckets(q.start, q.end, width);
        let first = bucket_of(q.start, width);
        let tx = self.conn().unchecked_transaction().map_err(|e| self.err(e))?;
        let lines_of = self.key_ids(q.group, &q.keys)?;
        let mut answer = SeriesAnswer {
            first,
            width,
            lines: vec![SeriesLine::zeros(n); q.keys.len()],
            rest: SeriesLine::zeros(n),
            used_summaries: false,
        };
        let levels: Vec<_> = Dimension::Time { width }.levels();
        let use_summaries = q.filters.is_empty() && self.summarized(q.group) && !levels.is_empty() && n > 0;
        let range = TimeRange { start: Some(q.start), end: Some(q.end) };
        let mut add = |t: i64, value: i64, send: i64, recv: i64, events: i64, sign: i64| {
            let i = (t - first).div_euclid(width);
            let Ok(i) = usize::try_from(i) else { return };
            if i >= n {
                return;
            }
            match lines_of.get(&value) {
                Some(&line) => answer.lines[line].add(i, send, recv, events, sign),
                None => answer.rest.add(i, send, recv, events, sign),
            }
        };
        if use_summaries {
            for part in split(range, &levels) {
                let mut args = Vec::new();
                let sql = match part.source {
                    Source::Raw => {
                        let mut sql = format!("SELECT c.contime, {}, c.send, c.recv, c.events FROM connections c WHERE 1 = 1", q.group.raw_expr());
                        sql.push_str(&range_sql("c.contime", part.start, part.end, &mut args));
                        sql
                    }
                    Source::Summary(level) => {
                        let mut sql = format!("SELECT bucket, value, send, recv, events FROM {} WHERE dim = {}", level.table, q.group.summary() as i64);
                        sql.push_str(&range_sql("bucket", part.start, part.end, &mut args));
                        sql
                    }
                };
                self.each_row(&sql, &args, |t, v, s, r, e| add(t, v, s, r, e, part.sign))?;
            }
        } else if n > 0 {
            let mut args = Vec::new();
            let mut sql = format!("SELECT c.contime, {}, c.send, c.recv, c.events FROM connections c WHERE 1 = 1", q.group.raw_expr());
            sql.push_str(&range_sql("c.contime", range.start, range.end, &mut args));
            for f in &q.filters {
                sql.push_str(" AND ");
                sql.push_str(&filter_sql(f, &mut args));
            }
            self.each_row(&sql, &args, |t, v, s, r, e| add(t, v, s, r, e, 1))?;
        }
        answer.used_summaries = use_summaries;
        tx.finish().map_err(|e| self.err(e))?;
        Ok(answer)
    }

    /// Calls `f(time, value, send, recv, events)` for each row of a five-column query.
    fn each_row(&self, sql: &str, args: &[Value], mut f: impl FnMut(i64, i64, i64, i64, i64)) -> Result<(), StoreError> {
        let mut stmt = self.conn().prepare_cached(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args.iter())).map_err(|e| self.err(e))?;
        let get = |r: &rusqlite::Row, i| r.get::<_, i64>(i).map_err(|e| self.err(e));
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            f(get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?, get(r, 4)?);
        }
        Ok(())
    }

    /// The raw values (`connections` column values) each key stands for, mapped to the
    /// key's position: an executable field's text stands for every executable id with
    /// that text; an address or domain's text for its id.
    fn key_ids(&self, group: Dimension, keys: &[GroupKey]) -> Result<HashMap<i64, usize>, StoreError> {
        let mut out = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            let ids: Vec<i64> = match (group, key) {
                (Dimension::Exe(_, field), GroupKey::Text(t)) => {
                    self.ids_where(&format!("SELECT id FROM executables WHERE {} = ?1", field.column()), Value::Text(t.clone()))?
                }
                (_, GroupKey::Text(t)) => match group.side_table() {
                    Some((table, column)) => self.ids_where(&format!("SELECT id FROM {table} WHERE {column} = ?1"), Value::Text(t.clone()))?,
                    None => t.parse().ok().into_iter().collect(),
                },
                (_, GroupKey::Int(v)) => vec![*v],
            };
            for id in ids {
                out.entry(id).or_insert(i);
            }
        }
        Ok(out)
    }

    fn ids_where(&self, sql: &str, arg: Value) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn().prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map([arg], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }
}
