//! Time windows (`t`/`T`) and stepping through history (`h`/`H`).
//!
//! At step 0 a window is the rolling span up to now ("the last 7 days"). Stepping back
//! moves to whole local periods: step 1 is the period that contains now (this hour,
//! today, this month), step 2 the one before, and so on, as in picosnitch 2.x.
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ZonedDateTime as Zoned};
use picosnitch_store::TimeRange;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    All,
    /// Periods of this many seconds, aligned within the local day (5 min: :00, :05, ...).
    Within(i64),
    /// This many calendar days, the last one being today.
    Days(i64),
    Month,
    Year,
}

/// How the Time view groups within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBucket {
    Seconds(i64),
    /// Local calendar days (summed from hours, so daylight saving days are right).
    LocalDay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub label: &'static str,
    pub secs: i64,
    period: Period,
    pub bucket: TimeBucket,
}

const fn w(label: &'static str, secs: i64, period: Period, bucket: TimeBucket) -> Window {
    Window { label, secs, period, bucket }
}

const MIN: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// The windows `t` steps through, in picosnitch 2.x's order.
pub const WINDOWS: [Window; 14] = [
    w("all", 0, Period::All, TimeBucket::LocalDay),
    w("1 minute", MIN, Period::Within(MIN), TimeBucket::Seconds(10)),
    w("5 minutes", 5 * MIN, Period::Within(5 * MIN), TimeBucket::Seconds(10)),
    w("15 minutes", 15 * MIN, Period::Within(15 * MIN), TimeBucket::Seconds(MIN)),
    w("30 minutes", 30 * MIN, Period::Within(30 * MIN), TimeBucket::Seconds(MIN)),
    w("1 hour", HOUR, Period::Within(HOUR), TimeBucket::Seconds(MIN)),
    w("3 hours", 3 * HOUR, Period::Within(3 * HOUR), TimeBucket::Seconds(10 * MIN)),
    w("6 hours", 6 * HOUR, Period::Within(6 * HOUR), TimeBucket::Seconds(10 * MIN)),
    w("12 hours", 12 * HOUR, Period::Within(12 * HOUR), TimeBucket::Seconds(HOUR)),
    w("1 day", DAY, Period::Days(1), TimeBucket::Seconds(HOUR)),
    w("3 days", 3 * DAY, Period::Days(3), TimeBucket::Seconds(HOUR)),
    w("7 days", 7 * DAY, Period::Days(7), TimeBucket::Seconds(HOUR)),
    w("30 days", 30 * DAY, Period::Month, TimeBucket::LocalDay),
    w("365 days", 365 * DAY, Period::Year, TimeBucket::LocalDay),
];

fn zoned(unix: i64, tz: &TimeZone) -> Option<Zoned> {
    Timestamp::from_second(unix).ok().map(|t| t.to_zoned_datetime(tz.clone()))
}

fn secs(z: &Zoned) -> i64 {
    z.timestamp().as_second()
}

/// [start, end) of the `step`-th period back (1 = the one containing now), in local
/// time; `None` for "all" or dates jiff cannot represent.
fn period(window: &Window, step: u32, now: i64, tz: &TimeZone) -> Option<(i64, i64)> {
    let back = i64::from(step.saturating_sub(1));
    let z = zoned(now, tz)?;
    match window.period {
        Period::All => None,
        Period::Within(len) => {
            let day = secs(&z.start_of_day().ok()?);
            let p0 = day + (now - day) / len * len;
            let start = p0 - back * len;
            Some((start, start + len))
        }
        Period::Days(n) => {
            let tomorrow = z.start_of_day().ok()?.checked_add(Span::new().days(1)).ok()?;
            let end = tomorrow.checked_sub(Span::new().days(back * n)).ok()?;
            let start = end.checked_sub(Span::new().days(n)).ok()?;
            Some((secs(&start), secs(&end)))
        }
        Period::Month => {
            let first = z.first_of_month().ok()?.start_of_day().ok()?;
            let start = first.checked_sub(Span::new().months(back)).ok()?;
            let end = start.checked_add(Span::new().months(1)).ok()?;
            Some((secs(&start), secs(&end)))
        }
        Period::Year => {
            let first = z.first_of_year().ok()?.start_of_day().ok()?;
            let start = first.checked_sub(Span::new().years(back)).ok()?;
            let end = start.checked_add(Span::new().years(1)).ok()?;
            Some((secs(&start), secs(&end)))
        }
    }
}

/// The range of `contime` a window covers at history step `step`.
pub fn range(window: &Window, step: u32, now: i64, tz: &TimeZone) -> TimeRange {
    if window.period == Period::All {
        return TimeRange::default();
    }
    if step == 0 {
        return TimeRange { start: Some(now - window.secs), end: None };
    }
    match period(window, step, now, tz) {
        Some((start, end)) => TimeRange { start: Some(start), end: Some(end) },
        // Out of jiff's range (year 9999): fall back to plain seconds.
        None => {
            let end = now - i64::from(step - 1) * window.secs;
            TimeRange { start: Some(end - window.secs), end: Some(end) }
        }
    }
}

/// The status bar's words for a window and step.
pub fn describe(window: &Window, step: u32, now: i64, tz: &TimeZone) -> String {
    let fmt = |unix: i64| crate::format::local(unix as f64, tz, "%Y-%m-%d %H:%M");
    let r = range(window, step, now, tz);
    match (r.start, r.end) {
        (None, _) => "all history".into(),
        (Some(s), None) => format!("last {} (since {})", window.label, fmt(s)),
        (Some(s), Some(e)) => format!("{} → {}", fmt(s), fmt(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sunday 2026-11-22 10:37:15 UTC.
    const NOW: i64 = 1_795_343_835;

    fn find(label: &str) -> Window {
        *WINDOWS.iter().find(|w| w.label == label).expect("window")
    }

    #[test]
    fn step_zero_is_the_rolling_window_up_to_now() {
        let tz = TimeZone::UTC;
        assert_eq!(range(&find("7 days"), 0, NOW, &tz), TimeRange { start: Some(NOW - 7 * DAY), end: None });
        assert_eq!(range(&find("all"), 3, NOW, &tz), TimeRange::default());
        assert_eq!(describe(&find("1 hour"), 0, NOW, &tz), "last 1 hour (since 2026-11-22 09:37)");
    }

    #[test]
    fn steps_back_are_whole_local_periods() {
        let tz = TimeZone::UTC;
        assert_eq!(describe(&find("5 minutes"), 1, NOW, &tz), "2026-11-22 10:35 → 2026-11-22 10:40");
        assert_eq!(describe(&find("5 minutes"), 3, NOW, &tz), "2026-11-22 10:25 → 2026-11-22 10:30");
        assert_eq!(describe(&find("6 hours"), 2, NOW, &tz), "2026-11-22 00:00 → 2026-11-22 06:00");
        assert_eq!(describe(&find("1 day"), 2, NOW, &tz), "2026-11-21 00:00 → 2026-11-22 00:00");
        assert_eq!(describe(&find("3 days"), 1, NOW, &tz), "2026-11-20 00:00 → 2026-11-23 00:00");
        assert_eq!(describe(&find("30 days"), 2, NOW, &tz), "2026-10-01 00:00 → 2026-11-01 00:00");
        assert_eq!(describe(&find("365 days"), 1, NOW, &tz), "2026-01-01 00:00 → 2027-01-01 00:00");
    }

    #[test]
    fn local_days_follow_the_time_zone_and_daylight_saving() {
        let paris = TimeZone::get("Europe/Paris").expect("tzdb has Europe/Paris");
        // 2026-10-25 is 25 hours long in Paris (clocks go back).
        let after = 1_793_000_000; // 2026-10-26 ~ 07:33 local
        let r = range(&find("1 day"), 2, after, &paris);
        assert_eq!(r.end.zip(r.start).map(|(e, s)| e - s), Some(25 * HOUR));
        assert_eq!(describe(&find("1 day"), 2, after, &paris), "2026-10-25 00:00 → 2026-10-26 00:00");
    }
}
