//! When the next request may go: one every `[virustotal] request_limit_seconds` (the
//! public API allows 4 a minute and 500 a day), and after a quota error a wait that
//! doubles, up to an hour, until a request succeeds again.
use std::time::{Duration, Instant};

const MAX_BACKOFF: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct Pacing {
    interval: Duration,
    backoff: Duration,
    next: Instant,
}

impl Pacing {
    pub fn new(interval: Duration) -> Self {
        Pacing { interval, backoff: Duration::ZERO, next: Instant::now() }
    }

    /// When the next request may start.
    pub fn next_allowed(&self) -> Instant {
        self.next
    }

    /// A request starts now: the next one waits the interval (and any backoff).
    pub fn started(&mut self, now: Instant) {
        self.next = now + self.interval + self.backoff;
    }

    /// The last request was answered (by anything but a quota error).
    pub fn answered(&mut self) {
        if !self.backoff.is_zero() {
            self.next = self.next.saturating_sub_dur(self.backoff);
            self.backoff = Duration::ZERO;
        }
    }

    /// The quota ran out or the service could not be reached: wait longer.
    pub fn back_off(&mut self, now: Instant) -> Duration {
        self.backoff = if self.backoff.is_zero() { self.interval.max(Duration::from_secs(60)) } else { (self.backoff * 2).min(MAX_BACKOFF) };
        self.next = now + self.backoff;
        self.backoff
    }
}

trait SaturatingSub {
    fn saturating_sub_dur(self, d: Duration) -> Self;
}

impl SaturatingSub for Instant {
    fn saturating_sub_dur(self, d: Duration) -> Self {
        self.checked_sub(d).unwrap_or(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_spaced_and_quota_errors_back_off() {
        let t0 = Instant::now();
        let mut p = Pacing::new(Duration::from_secs(15));
        p.started(t0);
        assert_eq!(p.next_allowed(), t0 + Duration::from_secs(15));
        assert_eq!(p.back_off(t0), Duration::from_secs(60));
        assert_eq!(p.back_off(t0), Duration::from_secs(120));
        for _ in 0..20 {
            p.back_off(t0);
        }
        assert_eq!(p.next_allowed(), t0 + MAX_BACKOFF);
        p.started(t0);
        p.answered();
        assert_eq!(p.next_allowed(), t0 + Duration::from_secs(15));
    }
}
