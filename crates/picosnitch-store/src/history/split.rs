//! Which summary levels, and which raw rows, answer a time range.
use super::TimeRange;
use crate::summary::{bucket_of, Level};

/// Where one piece of a time range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Summary(Level),
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Part {
    pub source: Source,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// +1 to add the part's sums, -1 to subtract them (see `piece`).
    pub sign: i64,
}

fn ceil_to(t: i64, w: i64) -> i64 {
    let b = bucket_of(t, w);
    if b == t {
        t
    } else {
        b.saturating_add(w)
    }
}

/// Splits [start, end) into whole buckets of the coarsest usable level, then whole
/// buckets of finer levels at the edges, then raw rows for what is left (< 1 hour at
/// each end). `levels` is ordered fine to coarse.
pub(super) fn split(range: TimeRange, levels: &[Level]) -> Vec<Part> {
    let Some((&coarsest, finer)) = levels.split_last() else {
        return vec![Part { source: Source::Raw, start: range.start, end: range.end, sign: 1 }];
    };
    let w = coarsest.width;
    let inner_start = range.start.map(|s| ceil_to(s, w));
    let inner_end = range.end.map(|e| bucket_of(e, w));
    match (range.start, range.end, inner_start, inner_end) {
        // No whole bucket inside: the range lies in one bucket or across one boundary.
        (Some(s), Some(e), Some(is), Some(ie)) if is >= ie => {
            let boundary = ceil_to(s, w);
            if boundary > s && boundary < e {
                let mut parts = piece(s, boundary, coarsest, finer);
                parts.extend(piece(boundary, e, coarsest, finer));
                return parts;
            }
            return piece(s, e, coarsest, finer);
        }
        _ => {}
    }
    let mut parts = Vec::new();
    if let (Some(s), Some(is)) = (range.start, inner_start) {
        if s < is {
            parts.extend(piece(s, is, coarsest, finer));
        }
    }
    parts.push(Part { source: Source::Summary(coarsest), start: inner_start, end: inner_end, sign: 1 });
    if let (Some(e), Some(ie)) = (range.end, inner_end) {
        if ie < e {
            parts.extend(piece(ie, e, coarsest, finer));
        }
    }
    parts
}

/// [from, to) inside one bucket of `level`: read from the finer levels, or, when it
/// covers most of the bucket, as the whole bucket minus the rest. Three hours' cells
/// of a high-cardinality dimension (local ports) cost about as much as a day's, so a
/// 23-hour edge is far cheaper as a day minus one hour.
fn piece(from: i64, to: i64, level: Level, finer: &[Level]) -> Vec<Part> {
    let b = bucket_of(from, level.width);
    let inside = to - from;
    if finer.is_empty() || inside * 2 <= level.width {
        return split(TimeRange { start: Some(from), end: Some(to) }, finer);
    }
    let mut parts = vec![Part { source: Source::Summary(level), start: Some(b), end: Some(b + level.width), sign: 1 }];
    for (a, z) in [(b, from), (to, b + level.width)] {
        if a < z {
            parts.extend(split(TimeRange { start: Some(a), end: Some(z) }, finer).into_iter().map(|p| Part { sign: -p.sign, ..p }));
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{DAY, HOUR, WEEK};

    fn r(start: Option<i64>, end: Option<i64>) -> TimeRange {
        TimeRange { start, end }
    }

    #[test]
    fn split_uses_days_then_hours_then_raw_at_the_edges() {
        let d = 86_400;
        let h = 3_600;
        // 10 days + 1h30 before the first midnight + 2h10 after the last one.
        let start = 100 * d - h - 1_800;
        let end = 110 * d + 2 * h + 600;
        let parts = split(r(Some(start), Some(end)), &[HOUR, DAY]);
        assert_eq!(
            parts,
            vec![
                Part { source: Source::Raw, start: Some(start), end: Some(100 * d - h), sign: 1 },
                Part { source: Source::Summary(HOUR), start: Some(100 * d - h), end: Some(100 * d), sign: 1 },
                Part { source: Source::Summary(DAY), start: Some(100 * d), end: Some(110 * d), sign: 1 },
                Part { source: Source::Summary(HOUR), start: Some(110 * d), end: Some(110 * d + 2 * h), sign: 1 },
                Part { source: Source::Raw, start: Some(110 * d + 2 * h), end: Some(end), sign: 1 },
            ]
        );
    }

    #[test]
    fn split_of_open_ranges_and_short_ranges() {
        let d = 86_400;
        let h = 3_600;
        assert_eq!(split(r(None, None), &[HOUR, DAY]), vec![Part { source: Source::Summary(DAY), start: None, end: None, sign: 1 }]);
        // "The last 5 days" from 02:00: the first day minus two hours, then whole days.
        let s = 50 * d + 7_200;
        assert_eq!(
            split(r(Some(s), None), &[HOUR, DAY]),
            vec![
                Part { source: Source::Summary(DAY), start: Some(50 * d), end: Some(51 * d), sign: 1 },
                Part { source: Source::Summary(HOUR), start: Some(50 * d), end: Some(s), sign: -1 },
                Part { source: Source::Summary(DAY), start: Some(51 * d), end: None, sign: 1 },
            ]
        );
        // Under an hour: raw only.
        assert_eq!(split(r(Some(s + 10), Some(s + 70)), &[HOUR, DAY]), vec![Part { source: Source::Raw, start: Some(s + 10), end: Some(s + 70), sign: 1 }]);
        // Most of a week: the week minus the days and hours before the start.
        let w = 7 * d;
        assert_eq!(
            split(r(Some(100 * d + 5 * 3_600), None), &[HOUR, DAY, WEEK]),
            vec![
                Part { source: Source::Summary(WEEK), start: Some(14 * w), end: Some(15 * w), sign: 1 },
                Part { source: Source::Summary(DAY), start: Some(98 * d), end: Some(100 * d), sign: -1 },
                Part { source: Source::Summary(HOUR), start: Some(100 * d), end: Some(100 * d + 5 * 3_600), sign: -1 },
                Part { source: Source::Summary(WEEK), start: Some(15 * w), end: None, sign: 1 },
            ]
        );
        // A local day in UTC+5:30 straddles two UTC days: 5.5 hours of the first, the
        // second day minus its last 5.5 hours (5 of them hours, half an hour raw).
        let (a, b) = (60 * d - 5 * h - 1_800, 61 * d - 5 * h - 1_800);
        assert_eq!(
            split(r(Some(a), Some(b)), &[HOUR, DAY]),
            vec![
                Part { source: Source::Raw, start: Some(a), end: Some(60 * d - 5 * h), sign: 1 },
                Part { source: Source::Summary(HOUR), start: Some(60 * d - 5 * h), end: Some(60 * d), sign: 1 },
                Part { source: Source::Summary(DAY), start: Some(60 * d), end: Some(61 * d), sign: 1 },
                Part { source: Source::Raw, start: Some(b), end: Some(61 * d - 5 * h), sign: -1 },
                Part { source: Source::Summary(HOUR), start: Some(61 * d - 5 * h), end: Some(61 * d), sign: -1 },
            ]
        );
        // No levels (a 10-second time view): raw.
        assert_eq!(split(r(None, Some(s)), &[]), vec![Part { source: Source::Raw, start: None, end: Some(s), sign: 1 }]);
    }
}
