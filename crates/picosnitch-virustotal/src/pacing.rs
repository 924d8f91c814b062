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

    /// The last request was answered (by anything but a quota error) at `now`: the next
    /// one waits a whole interval from the answer, not from the start, so the service
    /// never sees two requests closer than the interval, however long one took to
    /// reach it (a slow connection or a loaded machine delays a request, not its answer).
    pub fn answered(&mut self, now: Instant) {
        self.backoff = Duration::ZERO;
        self.next = now + self.interval;
    }

    /// The quota ran out or the service could not be reached: wait longer.
    pub fn back_off(&mut self, now: Instant) -> Duration {
        self.backoff = if self.backoff.is_zero() { self.interval.max(Duration::from_secs(60)) } else { (self.backoff * 2).min(MAX_BACKOFF) };
        self.next = now + self.backoff;
        self.backoff
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
        let answer = t0 + Duration::from_secs(2);
        p.answered(answer);
        assert_eq!(p.next_allowed(), answer + Duration::from_secs(15), "a whole interval after the answer");
    }
}
