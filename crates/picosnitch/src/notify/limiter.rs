//! When a notice may be shown: the same text again within the deduplication window is
//! dropped, and each kind has a token bucket (a burst, then one per interval) so a
//! program that spawns threads named `DNS Resolver #1`, `#2`, ... cannot flood the
//! desktop. Notices held back are not forgotten: the next one shown of that kind says
//! how many there were.
use picosnitch_ipc::notices::{Notice, NoticeKind};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Texts remembered for deduplication; beyond this the oldest half is forgotten.
const MAX_REMEMBERED: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Show this (possibly with a note of how many were held back before it).
    Show(Notice),
    /// The same text was offered within the deduplication window.
    Duplicate,
    /// Over the rate limit: counted, summed up later.
    Held,
}

#[derive(Debug)]
struct Bucket {
    tokens: u32,
    last_refill: Instant,
    held: u64,
    last_held: Option<Notice>,
}

#[derive(Debug)]
pub struct Limiter {
    burst: u32,
    interval: Duration,
    dedup: Duration,
    buckets: BTreeMap<NoticeKind, Bucket>,
    recent: HashMap<(NoticeKind, String), Instant>,
}

impl Limiter {
    pub fn new(burst: u32, interval: Duration, dedup: Duration) -> Limiter {
        Limiter { burst: burst.max(1), interval: interval.max(Duration::from_millis(1)), dedup, buckets: BTreeMap::new(), recent: HashMap::new() }
    }

    fn bucket(&mut self, kind: NoticeKind, now: Instant) -> &mut Bucket {
        let (burst, interval) = (self.burst, self.interval);
        let b = self.buckets.entry(kind).or_insert(Bucket { tokens: burst, last_refill: now, held: 0, last_held: None });
        let elapsed = now.saturating_duration_since(b.last_refill);
        let earned = (elapsed.as_nanos() / interval.as_nanos()).min(u128::from(burst)) as u32;
        if earned > 0 {
            b.tokens = (b.tokens + earned).min(burst);
            b.last_refill = if b.tokens == burst { now } else { b.last_refill + interval * earned };
        }
        b
    }

    pub fn offer(&mut self, notice: Notice, now: Instant) -> Decision {
        let key = (notice.kind, notice.text.clone());
        if let Some(seen) = self.recent.get(&key) {
            if now.saturating_duration_since(*seen) < self.dedup {
                return Decision::Duplicate;
            }
        }
        if self.recent.len() >= MAX_REMEMBERED {
            let mut ages: Vec<Instant> = self.recent.values().copied().collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.recent.retain(|_, t| *t > cut);
        }
        self.recent.insert(key, now);
        let b = self.bucket(notice.kind, now);
        if b.tokens == 0 {
            b.held += 1;
            b.last_held = Some(notice);
            return Decision::Held;
        }
        b.tokens -= 1;
        let held = std::mem::take(&mut b.held);
        b.last_held = None;
        Decision::Show(with_held(notice, held))
    }

    /// Summaries of what was held back, for kinds whose bucket has refilled: one
    /// notice per kind, the last one held with the count of the others.
    pub fn due(&mut self, now: Instant) -> Vec<Notice> {
        let kinds: Vec<NoticeKind> = self.buckets.iter().filter(|(_, b)| b.held > 0).map(|(k, _)| *k).collect();
        let mut out = Vec::new();
        for kind in kinds {
            let b = self.bucket(kind, now);
            if b.tokens == 0 {
                continue;
            }
            if let Some(last) = b.last_held.take() {
                b.tokens -= 1;
                let others = b.held - 1;
                b.held = 0;
                out.push(with_held(last, others));
            }
        }
        out
    }

    /// Notices held back now, over all kinds.
    #[cfg(test)]
    pub fn held(&self) -> u64 {
        self.buckets.values().map(|b| b.held).sum()
    }
}

fn with_held(mut notice: Notice, held: u64) -> Notice {
    if held > 0 {
        let s = if held == 1 { "" } else { "s" };
        let note = format!("(and {held} more notification{s} of this kind held back; see `picosnitch query`)");
        notice.detail = if notice.detail.is_empty() { note } else { format!("{}\n{note}", notice.detail) };
    }
    notice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(kind: NoticeKind, text: &str) -> Notice {
        Notice::new(kind, text, "")
    }

    #[test]
    fn repeats_are_dropped_within_the_window_and_shown_after() {
        let t0 = Instant::now();
        let mut l = Limiter::new(5, Duration::from_secs(10), Duration::from_secs(60));
        assert!(matches!(l.offer(n(NoticeKind::FirstSeen, "a"), t0), Decision::Show(_)));
        assert_eq!(l.offer(n(NoticeKind::FirstSeen, "a"), t0 + Duration::from_secs(59)), Decision::Duplicate);
        assert!(matches!(l.offer(n(NoticeKind::FirstSeen, "a"), t0 + Duration::from_secs(61)), Decision::Show(_)));
    }

    #[test]
    fn a_storm_shows_a_burst_then_one_summary_per_interval() {
        let t0 = Instant::now();
        let mut l = Limiter::new(3, Duration::from_secs(10), Duration::from_secs(3600));
        let shown: Vec<_> = (0..100)
            .filter(|i| matches!(l.offer(n(NoticeKind::FirstSeen, &format!("DNS Resolver #{i}")), t0), Decision::Show(_)))
            .collect();
        assert_eq!(shown, vec![0, 1, 2]);
        assert_eq!(l.held(), 97);
        assert!(l.due(t0 + Duration::from_secs(9)).is_empty(), "nothing before the interval");
        let due = l.due(t0 + Duration::from_secs(10));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].text, "DNS Resolver #99");
        assert!(due[0].detail.contains("and 96 more notifications"), "{:?}", due[0].detail);
        assert_eq!(l.held(), 0);
        assert!(l.due(t0 + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn kinds_are_limited_separately() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1, Duration::from_secs(10), Duration::from_secs(3600));
        assert!(matches!(l.offer(n(NoticeKind::FirstSeen, "a"), t0), Decision::Show(_)));
        assert_eq!(l.offer(n(NoticeKind::FirstSeen, "b"), t0), Decision::Held);
        assert!(matches!(l.offer(n(NoticeKind::EventsLost, "lost"), t0), Decision::Show(_)));
        // The next one shown after a refill carries the count of those held.
        match l.offer(n(NoticeKind::FirstSeen, "c"), t0 + Duration::from_secs(10)) {
            Decision::Show(s) => assert!(s.detail.contains("and 1 more notification of"), "{s:?}"),
            other => panic!("{other:?}"),
        }
    }
}
