//! contime values: unix seconds, as picosnitch 2.x stores them, so `unixepoch('now', '-1 day')`
//! in its documented queries keeps working.

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub fn unix_days_ago(days: u32) -> i64 {
    unix_now() - i64::from(days) * 86_400
}

pub fn unix_minutes_ago(minutes: u32) -> i64 {
    unix_now() - i64::from(minutes) * 60
}
