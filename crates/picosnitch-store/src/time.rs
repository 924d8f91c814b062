//! contime strings: local time as picosnitch 2.x writes them, 'YYYY-MM-DD HH:MM:SS',
//! which sort lexically in time order.

fn format_local(unix: i64) -> String {
    // SAFETY: localtime_r only writes the tm we hand it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t: libc::time_t = unix;
    // SAFETY: valid pointers to a time_t and a tm.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return "1970-01-01 00:00:00".into();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

pub fn contime_now() -> String {
    format_local(now_unix())
}

pub fn contime_days_ago(days: u32) -> String {
    format_local(now_unix() - i64::from(days) * 86_400)
}

pub fn contime_minutes_ago(minutes: u32) -> String {
    format_local(now_unix() - i64::from(minutes) * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_order() {
        let now = contime_now();
        assert_eq!(now.len(), 19);
        assert_eq!(&now[4..5], "-");
        assert_eq!(&now[10..11], " ");
        assert!(contime_days_ago(1) < now);
        assert!(contime_minutes_ago(5) < now);
    }
}
