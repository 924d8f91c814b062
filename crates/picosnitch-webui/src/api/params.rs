//! Query parameters: time ranges, filters, metrics and the limits that keep one request
//! from asking for unbounded work. Every refusal names the parameter and what would be
//! accepted.
use super::dims::{self, DimDef};
use crate::http::Request;
use picosnitch_store::{Dimension, Filter, GroupKey, TimeRange};

/// Lines of a chart besides the rest.
pub const MAX_SERIES: usize = 20;
/// Buckets of a chart or sparkline.
pub const MAX_BUCKETS: usize = 500;
/// Rows of one explore page.
pub const MAX_ROWS: usize = 1_000;
/// Connections listed at once.
pub const MAX_CONNECTIONS: usize = 500;
/// Filters in one request.
pub const MAX_FILTERS: usize = 8;
/// Live updates in one answer.
pub const MAX_LIVE_EVENTS: usize = 1_000;
/// Executables in the live summary.
pub const MAX_LIVE_PROCESSES: usize = 500;
/// The longest filter value or search text.
const MAX_VALUE: usize = 4_096;

/// A refusal: status, a stable kind, and the sentence for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

pub fn bad(message: impl Into<String>) -> ApiError {
    ApiError { status: 400, kind: "bad-parameter", message: message.into() }
}

/// The preset ranges, as the page offers them, with their length in seconds.
pub const RANGES: [(&str, i64); 12] = [
    ("1m", 60),
    ("5m", 300),
    ("15m", 900),
    ("30m", 1_800),
    ("1h", 3_600),
    ("3h", 3 * 3_600),
    ("6h", 6 * 3_600),
    ("12h", 12 * 3_600),
    ("1d", 86_400),
    ("3d", 3 * 86_400),
    ("7d", 7 * 86_400),
    ("30d", 30 * 86_400),
];

/// The time range a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The last `secs` seconds up to now.
    Last(i64),
    All,
    /// Custom [from, to).
    Between(i64, i64),
}

impl Period {
    /// What the store reads: open-ended where the range is.
    pub fn range(self, now: i64) -> TimeRange {
        match self {
            Period::Last(s) => TimeRange { start: Some(now - s), end: None },
            Period::All => TimeRange::default(),
            Period::Between(a, b) => TimeRange { start: Some(a), end: Some(b) },
        }
    }

    /// Concrete bounds for laying out charts: "all" starts at the oldest row.
    pub fn bounds(self, now: i64, history: Option<(i64, i64)>) -> (i64, i64) {
        match self {
            Period::Last(s) => (now - s, now + 1),
            Period::All => match history {
                Some((oldest, newest)) => (oldest, (now + 1).max(newest + 1)),
                None => (now - 86_400, now + 1),
            },
            Period::Between(a, b) => (a, b),
        }
    }
}

/// `range=1h` (a preset or `all`), or `from=UNIX&to=UNIX` (`to` defaults to now).
pub fn period(req: &Request, now: i64) -> Result<Period, ApiError> {
    let presets = || RANGES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let from = req.param("from");
    match (req.param("range"), from) {
        (Some(_), Some(_)) => Err(bad("give either range or from/to, not both")),
        (None, None) => Ok(Period::Last(86_400)),
        (Some("all"), None) => Ok(Period::All),
        (Some(r), None) => RANGES
            .iter()
            .find(|(n, _)| *n == r)
            .map(|(_, s)| Period::Last(*s))
            .ok_or_else(|| bad(format!("range: {r:?} is not a range; use one of {}, all; or from/to in unix seconds", presets()))),
        (None, Some(f)) => {
            let seconds = |name: &str, v: &str| -> Result<i64, ApiError> {
                v.trim().parse::<i64>().map_err(|_| bad(format!("{name}: {v:?} is not a time in unix seconds")))
            };
            let from = seconds("from", f)?;
            let to = match req.param("to") {
                Some(t) => seconds("to", t)?,
                None => now + 1,
            };
            if from < 0 || to <= from {
                return Err(bad(format!("from/to: {from}..{to} is empty or negative; from must be before to")));
            }
            if to - from > 100 * 366 * 86_400 {
                return Err(bad("from/to: a range longer than 100 years is not served"));
            }
            Ok(Period::Between(from, to))
        }
    }
}

/// A dimension named by parameter `name`; `time` only where `time_ok`.
pub fn dimension_param(req: &Request, name: &str, default: &str, time_ok: bool) -> Result<&'static DimDef, ApiError> {
    let id = req.param(name).unwrap_or(default);
    match dims::find(id) {
        Some(d) if d.id == "time" && !time_ok => Err(bad(format!("{name}: time is not a dimension here"))),
        Some(d) => Ok(d),
        None => Err(bad(format!("{name}: {id:?} is not a dimension; use one of {}", dims::DIMS.iter().map(|d| d.id).collect::<Vec<_>>().join(", ")))),
    }
}

/// A value of `def` as the store keys it: numbers for users, ports, namespaces and
/// times (`START/WIDTH`), text for the rest.
pub fn key_of(def: &DimDef, value: &str) -> Result<(GroupKey, Option<i64>), ApiError> {
    if value.len() > MAX_VALUE {
        return Err(bad(format!("{}: the value is longer than {MAX_VALUE} bytes", def.id)));
    }
    if def.id == "time" {
        let parsed = value.split_once('/').and_then(|(s, w)| Some((s.parse::<i64>().ok()?, w.parse::<i64>().ok()?)));
        return match parsed {
            Some((start, width)) if width > 0 => Ok((GroupKey::Int(start), Some(width))),
            _ => Err(bad(format!("time: {value:?} is not START/WIDTH in unix seconds"))),
        };
    }
    if def.numeric {
        return value.trim().parse::<i64>().map(|v| (GroupKey::Int(v), None)).map_err(|_| bad(format!("{}: {value:?} is not a number", def.id)));
    }
    Ok((GroupKey::Text(value.to_string()), None))
}

/// A filter on `def` equal (or, with `exclude`, not equal) to `value`.
pub fn filter_of(def: &DimDef, value: &str, exclude: bool) -> Result<Filter, ApiError> {
    let (key, width) = key_of(def, value)?;
    Ok(Filter { dim: dims::dimension(def, width.unwrap_or(1)), key, exclude })
}

/// `f=DIM:VALUE` keeps rows whose DIM is VALUE, `x=DIM:VALUE` drops them.
pub fn filters(req: &Request) -> Result<Vec<Filter>, ApiError> {
    let mut out = Vec::new();
    for (name, exclude) in [("f", false), ("x", true)] {
        for spec in req.params(name) {
            let Some((dim, value)) = spec.split_once(':') else {
                return Err(bad(format!("{name}: {spec:?} is not DIMENSION:VALUE (for example rport:443 or exe:/usr/bin/curl)")));
            };
            let def = dims::find(dim).ok_or_else(|| bad(format!("{name}: {dim:?} is not a dimension")))?;
            out.push(filter_of(def, value, exclude)?);
        }
    }
    if out.len() > MAX_FILTERS {
        return Err(bad(format!("at most {MAX_FILTERS} filters (f and x together), got {}", out.len())));
    }
    Ok(out)
}

/// Which bytes a chart or sort is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Recv,
    Send,
    Total,
}

impl Metric {
    pub fn of(self, send: i64, recv: i64) -> i64 {
        match self {
            Metric::Recv => recv,
            Metric::Send => send,
            Metric::Total => send.saturating_add(recv),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Recv => "recv",
            Metric::Send => "send",
            Metric::Total => "total",
        }
    }
}

pub fn metric(req: &Request) -> Result<Metric, ApiError> {
    match req.param("metric").unwrap_or("total") {
        "recv" => Ok(Metric::Recv),
        "send" => Ok(Metric::Send),
        "total" => Ok(Metric::Total),
        other => Err(bad(format!("metric: {other:?} is not one of recv, send, total"))),
    }
}

/// An integer parameter in [min, max], or its default.
pub fn count(req: &Request, name: &str, default: usize, min: usize, max: usize) -> Result<usize, ApiError> {
    match req.param(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(bad(format!("{name}: {v:?} is not a whole number from {min} to {max}"))),
        },
    }
}

/// Bucket widths a chart may use: whole seconds, minutes, hours and days, so buckets
/// line up with the clock and (from an hour up) with the summaries.
const WIDTHS: [i64; 19] = [5, 10, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800, 2_592_000, 31_536_000];

/// The narrowest width that lays [start, end) out in at most `target` buckets.
pub fn bucket_width(start: i64, end: i64, target: usize) -> i64 {
    let target = target.clamp(1, MAX_BUCKETS) as i64;
    let span = (end - start).max(1);
    for w in WIDTHS {
        let first = start - start.rem_euclid(w);
        if (end - first + w - 1) / w <= target {
            return w;
        }
    }
    // Longer than the widest width allows: as wide as needed (one bucket spare for the
    // first one starting before `start`).
    let t = (target - 1).max(1);
    (span + t - 1) / t
}

/// The width of `time` rows in Explore for a range, as the TUI groups its windows.
pub fn time_group_width(period: Period, start: i64, end: i64) -> i64 {
    match period {
        Period::Last(s) if s <= 300 => 10,
        Period::Last(s) if s <= 3_600 => 60,
        Period::Last(s) if s <= 6 * 3_600 => 600,
        Period::Last(s) if s <= 7 * 86_400 => 3_600,
        Period::Last(_) | Period::All => 86_400,
        Period::Between(..) => bucket_width(start, end, 200).max(10),
    }
}

/// `group=DIM&key=VALUE`: the row a drill-down is about, as a filter.
pub fn row_filter(req: &Request) -> Result<(&'static DimDef, Filter), ApiError> {
    let def = dimension_param(req, "group", "exe", true)?;
    let value = req.param("key").ok_or_else(|| bad("key: missing; name the row's value (key=/usr/bin/curl, key=443)"))?;
    Ok((def, filter_of(def, value, false)?))
}

/// The time dimension a row filter stands for, when it is one (it narrows the range).
pub fn is_time(d: &Dimension) -> bool {
    matches!(d, Dimension::Time { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{parse, Parsed};

    fn req(query: &str) -> Request {
        match parse(format!("GET /api/x?{query} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()) {
            Parsed::Complete(r, _) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(period(&req("range=3h"), 1_000_000), Ok(Period::Last(10_800)));
        assert_eq!(period(&req(""), 1_000_000), Ok(Period::Last(86_400)));
        assert_eq!(period(&req("range=all"), 5), Ok(Period::All));
        assert_eq!(period(&req("from=100&to=200"), 5), Ok(Period::Between(100, 200)));
        assert_eq!(period(&req("from=100"), 500), Ok(Period::Between(100, 501)));
        for (q, says) in [("range=2y", "range: \"2y\""), ("from=x", "from: \"x\""), ("from=5&to=5", "empty"), ("range=1h&from=3", "not both")] {
            let e = period(&req(q), 1_000).expect_err(q);
            assert_eq!(e.status, 400);
            assert!(e.message.contains(says), "{q}: {}", e.message);
        }
        assert_eq!(Period::All.bounds(1_000, Some((10, 2_000))), (10, 2_001));
        assert_eq!(Period::Last(60).range(1_000), TimeRange { start: Some(940), end: None });
    }

    #[test]
    fn filters_and_their_limits() {
        let f = filters(&req("f=rport:443&x=exe:/usr/bin/curl&f=time:3600/60&f=domain:a:b")).expect("filters");
        assert_eq!(f.len(), 4);
        assert_eq!((f[0].key.clone(), f[0].exclude), (GroupKey::Int(443), false));
        assert_eq!((f[1].key.clone(), f[1].dim), (GroupKey::Int(3_600), Dimension::Time { width: 60 }));
        assert_eq!(f[2].key, GroupKey::Text("a:b".into()));
        assert_eq!(f[3].dim, Dimension::Exe(picosnitch_store::Role::Process, picosnitch_store::ExeField::Executable));
        assert_eq!(f[3].key, GroupKey::Text("/usr/bin/curl".into()));
        assert!(f[3].exclude);
        for (q, says) in [("f=rport", "DIMENSION:VALUE"), ("f=bogus:1", "not a dimension"), ("f=rport:https", "not a number"), ("f=time:5", "START/WIDTH")] {
            let e = filters(&req(q)).expect_err(q);
            assert!(e.message.contains(says), "{q}: {}", e.message);
        }
        let many: Vec<String> = (0..9).map(|i| format!("f=lport:{i}")).collect();
        assert!(filters(&req(&many.join("&"))).expect_err("too many").message.contains("at most 8"));
        assert!(count(&req("limit=5000"), "limit", 10, 1, MAX_ROWS).expect_err("limit").message.contains("from 1 to 1000"));
        assert_eq!(count(&req("limit=7"), "limit", 10, 1, MAX_ROWS), Ok(7));
        assert!(metric(&req("metric=both")).is_err());
        assert!(dimension_param(&req("by=time"), "by", "exe", false).is_err());
    }

    #[test]
    fn bucket_widths_stay_within_the_target() {
        let now = 1_795_572_771;
        // A range ending now has a partial bucket at each end: 30 days in 121 six-hour buckets.
        for (span, target, want) in [(60, 120, 5), (3_600, 120, 60), (86_400, 120, 900), (30 * 86_400, 121, 21_600), (30 * 86_400, 120, 43_200), (30 * 86_400, 30, 172_800), (7 * 86_400, 120, 7_200)] {
            let w = bucket_width(now - span, now + 1, target);
            assert_eq!(w, want, "{span} s in {target}");
            assert!(picosnitch_store::Store::series_buckets(now - span, now + 1, w) <= target);
        }
        let huge = bucket_width(0, 100 * 366 * 86_400, MAX_BUCKETS);
        assert!(picosnitch_store::Store::series_buckets(0, 100 * 366 * 86_400, huge) <= MAX_BUCKETS);
    }
}
