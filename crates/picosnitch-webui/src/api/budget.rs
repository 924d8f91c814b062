//! Counting raw rows within a time budget, newest first.
//!
//! A drill-down's breakdowns (users, domains, addresses of one row) and its latest
//! connections cannot come from the summaries: they read `connections` itself, and a
//! row holding half of a month's traffic means millions of rows, seconds of work. So
//! they are read in time slices from the end of the range backwards, growing while the
//! budget allows, and the answer says which part of the range it covers. The page
//! shows that, and asks for the whole range (no budget) when the user wants it.
use picosnitch_store::{ConnectionRecord, Dimension, Filter, GroupKey, HistoryRow, Store, StoreError, TimeRange};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Time for the breakdowns or the connections of one drill-down: the two are fetched
/// at once on two query threads, so the pane fills in well under half a second.
pub const DRILL_BUDGET: Duration = Duration::from_millis(200);

/// The first slice: the newest hour (or less, up to an hour boundary).
const FIRST_SLICE: i64 = 3_600;

/// Which part of [start, end) was read: [from, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub from: i64,
    pub complete: bool,
}

/// Slices [start, end) from the end backwards while `budget` lasts (forever with
/// `None`), each about as long as the time left allows at the rate seen so far.
fn slices(start: i64, end: i64, budget: Option<Duration>, mut read: impl FnMut(i64, i64) -> Result<bool, StoreError>) -> Result<Coverage, StoreError> {
    let started = Instant::now();
    let mut to = end;
    let mut len = (end - (end - 1).div_euclid(FIRST_SLICE) * FIRST_SLICE).clamp(1, FIRST_SLICE);
    while to > start {
        let from = (to - len).max(start);
        let enough = read(from, to)?;
        to = from;
        if enough {
            return Ok(Coverage { from: to, complete: true });
        }
        let Some(budget) = budget else {
            len = len.saturating_mul(2);
            continue;
        };
        let spent = started.elapsed();
        if spent >= budget {
            break;
        }
        // Seconds of history per second of work so far, for the time left; at least
        // an hour so the slices stay few, at most eight times the last one.
        let covered = (end - to) as f64;
        let rate = covered / spent.as_secs_f64().max(1e-4);
        let next = (rate * (budget - spent).as_secs_f64() * 0.6) as i64;
        // (The first slice may be a few seconds past an hour boundary: the upper bound
        // is never below an hour.)
        len = next.clamp(FIRST_SLICE, len.saturating_mul(8).max(FIRST_SLICE));
    }
    Ok(Coverage { from: to.max(start), complete: to <= start })
}

/// Groupings of the rows in [start, end) under `filters`, newest first within `budget`.
pub fn breakdowns(store: &Store, start: i64, end: i64, filters: &[Filter], groups: &[Dimension], budget: Option<Duration>) -> Result<(Vec<Vec<HistoryRow>>, Coverage), StoreError> {
    let mut sums: Vec<HashMap<GroupKey, HistoryRow>> = vec![HashMap::new(); groups.len()];
    let coverage = slices(start, end, budget, |from, to| {
        let answers = store.history_many(TimeRange { start: Some(from), end: Some(to) }, filters, groups)?;
        for (by, answer) in sums.iter_mut().zip(answers) {
            for r in answer.rows {
                let e = by.entry(r.key.clone()).or_insert_with(|| HistoryRow { send: 0, recv: 0, events: 0, ..r.clone() });
                e.send = e.send.saturating_add(r.send);
                e.recv = e.recv.saturating_add(r.recv);
                e.events = e.events.saturating_add(r.events);
            }
        }
        Ok(false)
    })?;
    Ok((sums.into_iter().map(|m| m.into_values().collect()).collect(), coverage))
}

/// The newest `limit` connections in [start, end) under `filters`, within `budget`.
pub fn latest(store: &Store, start: i64, end: i64, filters: &[Filter], limit: usize, budget: Option<Duration>) -> Result<(Vec<ConnectionRecord>, Coverage), StoreError> {
    let mut out: Vec<ConnectionRecord> = Vec::new();
    let coverage = slices(start, end, budget, |from, to| {
        out.extend(store.history_connections(TimeRange { start: Some(from), end: Some(to) }, filters, limit - out.len())?);
        Ok(out.len() >= limit)
    })?;
    Ok((out, coverage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_range_backwards_without_gaps() {
        let mut seen = Vec::new();
        let c = slices(1_000, 100_000, None, |a, b| {
            seen.push((a, b));
            Ok(false)
        })
        .expect("slices");
        assert_eq!(c, Coverage { from: 1_000, complete: true });
        assert_eq!(seen[0], (97_200, 100_000), "the first slice ends at an hour boundary");
        assert!(seen.windows(2).all(|w| w[1].1 == w[0].0), "contiguous: {seen:?}");
        assert_eq!(seen.last().map(|s| s.0), Some(1_000));
        // Enough found: stop early, covered up to there.
        let c = slices(0, 100_000, None, |a, _| Ok(a < 90_000)).expect("slices");
        assert!(c.complete && c.from < 90_000);
        // No time left: the part read is said.
        let c = slices(0, 1_000_000, Some(Duration::ZERO), |_, _| Ok(false)).expect("slices");
        assert_eq!(c, Coverage { from: 997_200, complete: false });
        // A first slice of seconds (the range ends just past an hour) with time left: the
        // next one is still sized (this panicked in clamp once).
        let c = slices(0, 3_600 * 100 + 5, Some(Duration::from_secs(5)), |_, _| Ok(false)).expect("slices");
        assert_eq!(c, Coverage { from: 0, complete: true });
    }
}
