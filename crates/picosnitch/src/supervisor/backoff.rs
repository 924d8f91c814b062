//! When to restart a role that died: at once the first time, then doubling while it
//! keeps dying young, so a crash loop costs little and a one-off crash costs nothing.
use std::time::Duration;

/// A role that ran this long before dying is considered healthy again.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);
const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Backoff {
    quick_deaths: u32,
}

impl Backoff {
    /// The wait before restarting a role that ran for `lived`.
    pub fn after_death(&mut self, lived: Duration) -> Duration {
        if lived >= HEALTHY_AFTER {
            self.quick_deaths = 0;
        }
        self.quick_deaths = self.quick_deaths.saturating_add(1);
        let exp = self.quick_deaths.saturating_sub(1).min(16);
        FIRST.saturating_mul(1u32 << exp).min(MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_while_dying_young_and_resets_after_a_healthy_run() {
        let mut b = Backoff::default();
        let young = Duration::from_secs(1);
        let waits: Vec<u128> = (0..4).map(|_| b.after_death(young).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 800]);
        for _ in 0..20 {
            b.after_death(young);
        }
        assert_eq!(b.after_death(young), MAX);
        assert_eq!(b.after_death(HEALTHY_AFTER).as_millis(), 100);
    }
}
