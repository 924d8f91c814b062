//! Several groupings of the same rows at once, and the totals of a period: what a
//! drill-down (one row's users, domains, addresses and sparkline) and an overview
//! (bytes, connections, executables, namespaces) need.
//!
//! Without filters each grouping reads the summaries; with filters the rows are read
//! from `connections` once and summed into every grouping in the same pass, instead of
//! one scan per grouping.
use super::{filter_sql, range_sql, Dimension, ExeField, Filter, HistoryAnswer, HistoryQuery, Role, Sums, TimeRange};
use crate::error::StoreError;
use crate::store::Store;
use std::collections::HashMap;

/// The totals of a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub send: i64,
    pub recv: i64,
    /// Connections started (the sum of `events`).
    pub events: i64,
    /// Distinct executable paths of the processes (not parents).
    pub executables: i64,
    /// Distinct network namespaces.
    pub namespaces: i64,
}

impl Store {
    /// [`Store::history`] for each of `groups` over the same range and filters.
    pub fn history_many(&self, range: TimeRange, filters: &[Filter], groups: &[Dimension]) -> Result<Vec<HistoryAnswer>, StoreError> {
        if filters.is_empty() && groups.iter().all(|g| self.summarized(*g)) {
            return groups.iter().map(|g| self.history(&HistoryQuery { range, group: *g, filters: Vec::new() })).collect();
        }
        let tx = self.conn().unchecked_transaction().map_err(|e| self.err(e))?;
        let mut args = Vec::new();
        let exprs: Vec<String> = groups.iter().map(|g| g.raw_expr()).collect();
        let mut sql = format!("SELECT {}, c.send, c.recv, c.events FROM connections c WHERE 1 = 1", exprs.join(", "));
        sql.push_str(&range_sql("c.contime", range.start, range.end, &mut args));
        for f in filters {
            sql.push_str(" AND ");
            sql.push_str(&filter_sql(f, &mut args));
        }
        let mut sums: Vec<HashMap<i64, Sums>> = vec![HashMap::new(); groups.len()];
        {
            let mut stmt = self.conn().prepare_cached(&sql).map_err(|e| self.err(e))?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args.iter())).map_err(|e| self.err(e))?;
            let k = groups.len();
            let get = |r: &rusqlite::Row, i| r.get::<_, i64>(i).map_err(|e| self.err(e));
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let s = Sums { rows: 1, send: get(r, k)?, recv: get(r, k + 1)?, events: get(r, k + 2)? };
                for (i, by) in sums.iter_mut().enumerate() {
                    by.entry(get(r, i)?).or_default().add(s, 1);
                }
            }
        }
        let mut out = Vec::with_capacity(groups.len());
        for (g, s) in groups.iter().zip(sums) {
            out.push(HistoryAnswer { rows: self.label(*g, s)?, used_summaries: false });
        }
        tx.finish().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Bytes, connections, executables and network namespaces of a period.
    pub fn totals(&self, range: TimeRange, filters: &[Filter]) -> Result<Totals, StoreError> {
        let groups = [Dimension::Netns, Dimension::Exe(Role::Process, ExeField::Executable)];
        let answers = self.history_many(range, filters, &groups)?;
        let (Some(netns), Some(exes)) = (answers.first(), answers.get(1)) else { return Ok(Totals::default()) };
        let mut t = Totals::default();
        // Every row has one namespace, so the namespaces' sums are the period's.
        for r in &netns.rows {
            t.send = t.send.saturating_add(r.send);
            t.recv = t.recv.saturating_add(r.recv);
            t.events = t.events.saturating_add(r.events);
        }
        t.namespaces = i64::try_from(netns.rows.len()).unwrap_or(i64::MAX);
        t.executables = i64::try_from(exes.rows.iter().filter(|r| !r.label.is_empty()).count()).unwrap_or(i64::MAX);
        Ok(t)
    }
}
