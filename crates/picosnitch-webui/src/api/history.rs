//! The history views' answers: Overview (totals and the top contributors over time),
//! Explore (grouped rows), a row's drill-down (sparkline and breakdowns) and the
//! connections behind a view.
use super::budget;
use super::dims::{self, DimDef};
use super::params::{self, ApiError, Period, MAX_BUCKETS, MAX_CONNECTIONS, MAX_ROWS, MAX_SERIES};
use super::Api;
use crate::http::{Request, Response};
use picosnitch_store::{Dimension, Filter, GroupKey, HistoryQuery, HistoryRow, SeriesQuery, Store, StoreError};
use serde::Serialize;
use serde_json::Value;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct RowOut {
    /// The value: a number for users, ports, namespaces and times, else its text.
    pub key: Value,
    /// The text to show: a user's name, an executable's path, an address.
    pub label: String,
    pub send: i64,
    pub recv: i64,
    pub total: i64,
    pub events: i64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sums {
    pub send: i64,
    pub recv: i64,
    pub total: i64,
    pub events: i64,
    /// Rows summed (for a rest: how many values it holds).
    pub count: i64,
}

impl Sums {
    fn add(&mut self, r: &RowOut) {
        self.send = self.send.saturating_add(r.send);
        self.recv = self.recv.saturating_add(r.recv);
        self.total = self.total.saturating_add(r.total);
        self.events = self.events.saturating_add(r.events);
        self.count += 1;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RangeOut {
    pub start: i64,
    pub end: i64,
    /// "all", "1h", or "custom".
    pub name: String,
}

fn range_out(period: Period, req: &Request, (start, end): (i64, i64)) -> RangeOut {
    let name = match period {
        Period::All => "all".to_string(),
        Period::Between(..) => "custom".to_string(),
        Period::Last(_) => req.param("range").unwrap_or("1d").to_string(),
    };
    RangeOut { start, end, name }
}

impl Api {
    /// A row as the API shows it.
    fn row_out(&self, def: &DimDef, r: &HistoryRow) -> RowOut {
        let key = match &r.key {
            GroupKey::Int(_) | GroupKey::Text(_) if !def.numeric => Value::String(r.label.clone()),
            GroupKey::Int(n) => Value::from(*n),
            GroupKey::Text(t) => Value::String(t.clone()),
        };
        let label = match (&r.key, def.id) {
            (GroupKey::Int(uid), "user") => self.users.name(*uid).unwrap_or_default(),
            _ => r.label.clone(),
        };
        RowOut { key, label, send: r.send, recv: r.recv, total: r.send.saturating_add(r.recv), events: r.events }
    }

    fn rows_out(&self, def: &DimDef, rows: &[HistoryRow]) -> Vec<RowOut> {
        rows.iter().map(|r| self.row_out(def, r)).collect()
    }

    pub(super) async fn overview(&self, req: &Request) -> Result<Response, ApiError> {
        let now = picosnitch_store::unix_now();
        let period = params::period(req, now)?;
        let filters = params::filters(req)?;
        let metric = params::metric(req)?;
        let by = params::dimension_param(req, "by", "exe", false)?;
        let top = params::count(req, "top", 8, 1, MAX_SERIES)?;
        let target = params::count(req, "buckets", 120, 2, MAX_BUCKETS)?;
        let group = dims::dimension(by, 1);
        let started = Instant::now();
        let (totals, rows, chart, bounds) = self
            .db
            .query(move |store| {
                let bounds = store.history_bounds()?;
                let range = period.range(now);
                let totals = store.totals(range, &filters)?;
                let mut rows = store.history(&HistoryQuery { range, group, filters: filters.clone() })?.rows;
                rows.sort_by(|a, b| metric.of(b.send, b.recv).cmp(&metric.of(a.send, a.recv)).then_with(|| a.key.cmp(&b.key)));
                let (start, end) = period.bounds(now, bounds);
                let width = params::bucket_width(start, end, target);
                let keys: Vec<GroupKey> = rows.iter().take(top).map(|r| r.key.clone()).collect();
                let chart = store.series(&SeriesQuery { start, end, width, group, keys, filters })?;
                Ok((totals, rows, chart, (start, end)))
            })
            .await
            .map_err(problem)?;
        let values = |l: &picosnitch_store::SeriesLine| -> Vec<i64> { (0..l.send.len()).map(|i| metric.of(l.send[i], l.recv[i])).collect() };
        let series: Vec<Value> = rows
            .iter()
            .take(top)
            .zip(&chart.lines)
            .map(|(r, l)| {
                let out = self.row_out(by, r);
                serde_json::json!({ "key": out.key, "label": out.label, "total": metric.of(r.send, r.recv), "values": values(l) })
            })
            .collect();
        let mut rest = Sums::default();
        for r in rows.iter().skip(top) {
            rest.add(&self.row_out(by, r));
        }
        Ok(Response::json(&serde_json::json!({
            "range": range_out(period, req, bounds),
            "totals": {
                "send": totals.send, "recv": totals.recv, "total": totals.send.saturating_add(totals.recv),
                "connections": totals.events, "executables": totals.executables, "namespaces": totals.namespaces,
            },
            "chart": {
                "by": by.id, "metric": metric.name(), "first": chart.first, "width": chart.width, "buckets": chart.buckets(),
                "series": series,
                "rest": { "values": values(&chart.rest), "count": rest.count, "total": metric.of(rest.send, rest.recv) },
            },
            "used_summaries": chart.used_summaries,
            "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
        })))
    }

    pub(super) async fn explore(&self, req: &Request) -> Result<Response, ApiError> {
        let now = picosnitch_store::unix_now();
        let period = params::period(req, now)?;
        let filters = params::filters(req)?;
        let def = params::dimension_param(req, "group", "exe", true)?;
        let limit = params::count(req, "limit", 200, 1, MAX_ROWS)?;
        let offset = params::count(req, "offset", 0, 0, usize::MAX)?;
        let sort = req.param("sort").unwrap_or("total");
        if !["key", "send", "recv", "total", "events"].contains(&sort) {
            return Err(params::bad(format!("sort: {sort:?} is not one of key, send, recv, total, events")));
        }
        let descending = match req.param("order").unwrap_or(if sort == "key" { "asc" } else { "desc" }) {
            "asc" => false,
            "desc" => true,
            other => return Err(params::bad(format!("order: {other:?} is not asc or desc"))),
        };
        let search = req.param("q").map(str::to_lowercase).filter(|q| !q.is_empty());
        let started = Instant::now();
        let (answer, bounds) = self
            .db
            .query(move |store| {
                let bounds = store.history_bounds()?;
                let (start, end) = period.bounds(now, bounds);
                let group = dims::dimension(def, params::time_group_width(period, start, end));
                Ok((store.history(&HistoryQuery { range: period.range(now), group, filters })?, (start, end)))
            })
            .await
            .map_err(problem)?;
        let mut rows = self.rows_out(def, &answer.rows);
        if let Some(q) = &search {
            rows.retain(|r| r.label.to_lowercase().contains(q) || r.key.to_string().to_lowercase().contains(q));
        }
        let mut totals = Sums::default();
        rows.iter().for_each(|r| totals.add(r));
        let field = |r: &RowOut| match sort {
            "send" => r.send,
            "recv" => r.recv,
            "events" => r.events,
            _ => r.total,
        };
        if sort == "key" {
            // The store's order: numbers ascending, text in byte order.
            if descending {
                rows.reverse();
            }
        } else {
            rows.sort_by(|a, b| {
                let o = field(a).cmp(&field(b));
                if descending {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        let row_count = rows.len();
        let page: Vec<RowOut> = rows.into_iter().skip(offset).take(limit).collect();
        Ok(Response::json(&serde_json::json!({
            "group": def.id,
            "range": range_out(period, req, bounds),
            "time_width": match dims::dimension(def, params::time_group_width(period, bounds.0, bounds.1)) { Dimension::Time { width } => Some(width), _ => None },
            "rows": page, "row_count": row_count, "offset": offset, "limit": limit,
            "totals": totals,
            "used_summaries": answer.used_summaries,
            "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
        })))
    }

    pub(super) async fn drilldown(&self, req: &Request) -> Result<Response, ApiError> {
        let now = picosnitch_store::unix_now();
        let period = params::period(req, now)?;
        let filters = params::filters(req)?;
        let (def, row) = params::row_filter(req)?;
        let metric = params::metric(req)?;
        let top = params::count(req, "top", 10, 1, 50)?;
        let target = params::count(req, "buckets", 60, 2, MAX_BUCKETS)?;
        let budget = full(req)?;
        let label = req.param("key").unwrap_or_default().to_string();
        let started = Instant::now();
        let drill = self
            .db
            .query(move |store| {
                let bounds = store.history_bounds()?;
                let (mut start, mut end) = period.bounds(now, bounds);
                let mut all = filters.clone();
                // A time row narrows the range instead of filtering every row.
                if let (Dimension::Time { width }, GroupKey::Int(t)) = (row.dim, &row.key) {
                    start = start.max(*t);
                    end = end.min(t + width).max(start);
                } else {
                    all.push(row.clone());
                }
                let width = params::bucket_width(start, end, target);
                // One row and no other filter: its totals and sparkline are exact from
                // the summaries whatever the range; only the breakdowns read raw rows.
                let exact = filters.is_empty() && !params::is_time(&row.dim);
                let line = if exact {
                    let q = SeriesQuery { start, end, width, group: row.dim, keys: vec![row.key.clone()], filters: vec![] };
                    store.series(&q)?.lines.into_iter().next()
                } else {
                    None
                };
                let mut groups = vec![Dimension::User, Dimension::Domain, Dimension::RemoteAddress];
                if line.is_none() {
                    groups.push(Dimension::Time { width });
                }
                let (answers, coverage) = budget::breakdowns(store, start, end, &all, &groups, budget)?;
                Ok(Drill { answers, coverage, line, start, end, width })
            })
            .await
            .map_err(problem)?;
        let first = drill.start - drill.start.rem_euclid(drill.width);
        let n = Store::series_buckets(drill.start, drill.end, drill.width);
        let (send, recv, events) = match &drill.line {
            Some(l) => (l.send.clone(), l.recv.clone(), l.events.clone()),
            None => {
                let (mut send, mut recv, mut events) = (vec![0i64; n], vec![0i64; n], vec![0i64; n]);
                for r in drill.answers.get(3).into_iter().flatten() {
                    let GroupKey::Int(t) = r.key else { continue };
                    if let Ok(i) = usize::try_from((t - first) / drill.width) {
                        if i < n {
                            send[i] += r.send;
                            recv[i] += r.recv;
                            events[i] += r.events;
                        }
                    }
                }
                (send, recv, events)
            }
        };
        let totals = Sums {
            send: send.iter().sum(),
            recv: recv.iter().sum(),
            total: send.iter().sum::<i64>() + recv.iter().sum::<i64>(),
            events: events.iter().sum(),
            count: 1,
        };
        let breakdown = |id: &str, i: usize| -> Value {
            let Some(def) = dims::find(id) else { return Value::Null };
            let mut rows = drill.answers.get(i).map(|a| self.rows_out(def, a)).unwrap_or_default();
            rows.sort_by(|a, b| metric.of(b.send, b.recv).cmp(&metric.of(a.send, a.recv)).then_with(|| a.label.cmp(&b.label)));
            let mut rest = Sums::default();
            rows.iter().skip(top).for_each(|r| rest.add(r));
            rows.truncate(top);
            serde_json::json!({ "rows": rows, "rest": rest })
        };
        Ok(Response::json(&serde_json::json!({
            "group": def.id, "key": label,
            "range": range_out(period, req, (drill.start, drill.end)),
            "totals": totals,
            "totals_exact": drill.line.is_some() || drill.coverage.complete,
            "coverage": { "from": drill.coverage.from, "complete": drill.coverage.complete },
            "sparkline": { "first": first, "width": drill.width, "send": send, "recv": recv, "events": events },
            "breakdowns": { "user": breakdown("user", 0), "domain": breakdown("domain", 1), "raddr": breakdown("raddr", 2) },
            "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
        })))
    }

    pub(super) async fn connections(&self, req: &Request) -> Result<Response, ApiError> {
        let now = picosnitch_store::unix_now();
        let period = params::period(req, now)?;
        let filters: Vec<Filter> = params::filters(req)?;
        let limit = params::count(req, "limit", 50, 1, MAX_CONNECTIONS)?;
        let budget = full(req)?;
        let started = Instant::now();
        let (rows, coverage) = self
            .db
            .query(move |store| -> Result<_, StoreError> {
                let (start, end) = period.bounds(now, store.history_bounds()?);
                budget::latest(store, start, end, &filters, limit, budget)
            })
            .await
            .map_err(problem)?;
        let out: Vec<Value> = rows
            .iter()
            .map(|c| {
                serde_json::json!({
                    "contime": c.contime, "send": c.send, "recv": c.recv, "events": c.events,
                    "exe": c.exe.exe, "name": c.exe.name, "cmdline": c.exe.cmdline, "sha256": c.exe.sha256,
                    "pexe": c.pexe.exe, "pname": c.pexe.name, "gpexe": c.gpexe.exe, "gpname": c.gpexe.name,
                    "uid": c.uid, "user": self.users.name(c.uid).unwrap_or_default(),
                    "family": c.family, "protocol": c.protocol, "laddr": c.laddr, "lport": c.lport,
                    "raddr": c.raddr, "rport": c.rport, "domain": c.domain, "netns": c.netns,
                })
            })
            .collect();
        Ok(Response::json(&serde_json::json!({
            "rows": out, "limit": limit,
            "coverage": { "from": coverage.from, "complete": coverage.complete },
            "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
        })))
    }
}

/// What a drill-down's query thread found.
struct Drill {
    answers: Vec<Vec<HistoryRow>>,
    coverage: budget::Coverage,
    /// The row's own line from the summaries, when they can give it.
    line: Option<picosnitch_store::SeriesLine>,
    start: i64,
    end: i64,
    width: i64,
}

/// `full=1`: read the whole range, however long it takes (up to the query limit);
/// otherwise within the drill-down's budget.
fn full(req: &Request) -> Result<Option<std::time::Duration>, ApiError> {
    match req.param("full").unwrap_or("0") {
        "0" => Ok(Some(budget::DRILL_BUDGET)),
        "1" => Ok(None),
        other => Err(params::bad(format!("full: {other:?} is not 0 or 1"))),
    }
}

/// A database problem as the API reports it.
pub fn problem(p: crate::db::Problem) -> ApiError {
    ApiError { status: p.status(), kind: p.kind(), message: p.message().to_string() }
}
