//! The primary's side of reverse DNS (only with `[monitoring] reverse_dns`): a remote
//! address that no DNS answer or TLS ClientHello named when its flow opened is sent to
//! the rdns role (a few at a time, so sending never waits), and the name that comes
//! back names the flows waiting for it: their rows of the current write period, and
//! later flows to that address while the name is kept. Rows are never held back for a
//! lookup: a flow whose lookup answers after its period was written has that period's
//! row without a domain and the next period's row with it.
//!
//! A PTR name belongs to the address, not to a network namespace (the resolver is the
//! host's), so one cache serves every namespace; it has the DNS cache's bounds
//! (`[monitoring] domain_cache_entries`, TTL kept between a minute and a day).
use super::periods::EntryKey;
use lru::LruCache;
use picosnitch_domains::NameCache;
use picosnitch_ipc::reverse_dns::{PtrOutcome, PtrReplyMsg, PtrRequest};
use picosnitch_ipc::Link;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub type RdnsLink = Link<PtrRequest, PtrReplyMsg>;

/// Lookups sent and not answered: well under the role's MAX_IN_FLIGHT and the link's
/// queue; the role answers each within `reverse_dns_timeout_ms`.
const WINDOW: usize = 16;
/// Addresses waiting for their turn; beyond it new ones are not looked up (counted).
const MAX_WAITING: usize = 1024;
/// Flows remembered per address waiting for its name.
const MAX_FLOWS_PER_ADDRESS: usize = 64;
/// How long an address with no name is not asked about again, and one whose lookup
/// failed or timed out.
const NO_NAME_KEEP: Duration = Duration::from_secs(600);
const FAILED_KEEP: Duration = Duration::from_secs(60);
/// Average bytes per cached name the byte bound allows (as the DNS cache).
const BYTES_PER_NAME: usize = 128;

pub struct ReverseDns {
    enabled: bool,
    names: NameCache,
    /// Addresses not to ask about again before the instant.
    not_now: LruCache<IpAddr, Instant>,
    waiting: VecDeque<IpAddr>,
    sent: HashSet<IpAddr>,
    /// Flows waiting for the name of each address, queued or sent.
    flows: HashMap<IpAddr, Vec<EntryKey>>,
    pub link: Option<(u32, Rc<RdnsLink>)>,
    /// Names learnt, lookups that failed or timed out, addresses not asked about.
    pub learnt: u64,
    pub failed: u64,
    pub not_asked: u64,
}

/// Addresses worth asking about: not loopback, link-local, multicast, broadcast or
/// unspecified (no resolver names those usefully, and asking tells it nothing new).
pub fn worth_asking(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(a) => !(a.is_loopback() || a.is_link_local() || a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_loopback() || a.is_multicast() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80),
    }
}

impl ReverseDns {
    pub fn new(config: &picosnitch_config::MonitoringConfig) -> Self {
        let entries = config.domain_cache_entries as usize;
        ReverseDns {
            enabled: config.reverse_dns,
            names: NameCache::new(entries, entries.saturating_mul(BYTES_PER_NAME)),
            not_now: LruCache::new(NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN)),
            waiting: VecDeque::new(),
            sent: HashSet::default(),
            flows: HashMap::default(),
            link: None,
            learnt: 0,
            failed: 0,
            not_asked: 0,
        }
    }

    /// The name a lookup gave `addr`, while it is kept.
    pub fn name_of(&mut self, addr: IpAddr) -> Option<Rc<str>> {
        if !self.enabled {
            return None;
        }
        self.names.lookup(0, addr.to_canonical(), Instant::now())
    }

    /// A flow toward `addr` opened without a name: look the address up, unless it
    /// is being looked up already (then the flow waits with the others) or was
    /// recently without a name.
    pub fn want(&mut self, addr: IpAddr, key: EntryKey) {
        let addr = addr.to_canonical();
        if !self.enabled || !worth_asking(addr) {
            return;
        }
        if let Some(flows) = self.flows.get_mut(&addr) {
            if flows.len() < MAX_FLOWS_PER_ADDRESS {
                flows.push(key);
            }
            return;
        }
        let now = Instant::now();
        if self.not_now.get(&addr).is_some_and(|until| *until > now) {
            return;
        }
        if self.waiting.len() >= MAX_WAITING {
            self.not_asked += 1;
            return;
        }
        self.flows.insert(addr, vec![key]);
        self.waiting.push_back(addr);
    }

    /// A DNS answer named `addr` after its flow opened: no lookup, if none was sent yet.
    pub fn cancel(&mut self, addr: IpAddr) {
        let addr = addr.to_canonical();
        if self.flows.contains_key(&addr) && !self.sent.contains(&addr) {
            self.flows.remove(&addr);
            self.waiting.retain(|a| *a != addr);
        }
    }

    /// The role's answer: the name (interned by `intern`) and the flows it names.
    pub fn answered(&mut self, reply: PtrReplyMsg, intern: impl FnOnce(&str) -> Rc<str>) -> Option<(Rc<str>, Vec<EntryKey>)> {
        let addr = reply.addr.to_canonical();
        if !self.sent.remove(&addr) {
            return None; // an answer to a request of a previous link, already asked again
        }
        let flows = self.flows.remove(&addr).unwrap_or_default();
        let now = Instant::now();
        match reply.outcome {
            PtrOutcome::Named { name, ttl } => {
                self.learnt += 1;
                let name = intern(&name);
                self.names.insert(0, addr, Rc::clone(&name), ttl, now);
                Some((name, flows))
            }
            PtrOutcome::NoName => {
                self.not_now.put(addr, now + NO_NAME_KEEP);
                None
            }
            PtrOutcome::TimedOut | PtrOutcome::Failed(_) => {
                self.failed += 1;
                if let PtrOutcome::Failed(e) = &reply.outcome {
                    tracing::debug!(%addr, error = %e, "no reverse DNS name");
                }
                self.not_now.put(addr, now + FAILED_KEEP);
                None
            }
        }
    }

    /// A new rdns role: what the old one had not answered is asked again first.
    pub fn relinked(&mut self) {
        let mut sent: Vec<IpAddr> = self.sent.drain().collect();
        sent.sort();
        for a in sent.into_iter().rev() {
            self.waiting.push_front(a);
        }
    }

    /// Sends what the window allows; on a failed link everything waits for the next.
    pub async fn send(&mut self) {
        while self.sent.len() < WINDOW {
            let Some((_, link)) = &self.link else { return };
            let Some(addr) = self.waiting.pop_front() else { return };
            if let Err(e) = link.send(&PtrRequest { addr }).await {
                tracing::warn!(error = %e, "rdns link failed; lookups wait for its restart");
                self.waiting.push_front(addr);
                self.link = None;
                self.relinked();
                return;
            }
            self.sent.insert(addr);
        }
    }

    pub fn report(&self, status: &mut picosnitch_ipc::status::PrimaryStatus) {
        status.rdns_names_learnt = self.learnt;
        status.rdns_failed = self.failed;
        status.rdns_not_asked = self.not_asked;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> ReverseDns {
        ReverseDns::new(&picosnitch_config::MonitoringConfig { reverse_dns: true, ..Default::default() })
    }

    fn a(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn which_addresses_are_asked_about() {
        for yes in ["192.0.2.1", "10.1.2.3", "2001:db8::1", "::ffff:192.0.2.1"] {
            assert!(worth_asking(a(yes)), "{yes}");
        }
        for no in ["127.0.0.1", "169.254.1.1", "224.0.0.251", "255.255.255.255", "0.0.0.0", "::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1"] {
            assert!(!worth_asking(a(no)), "{no}");
        }
    }

    #[test]
    fn one_lookup_per_address_names_every_waiting_flow() {
        let mut r = on();
        r.want(a("192.0.2.1"), (1, 1));
        r.want(a("192.0.2.1"), (1, 2));
        r.want(a("127.0.0.1"), (1, 3));
        assert_eq!(r.waiting.iter().copied().collect::<Vec<_>>(), [a("192.0.2.1")]);
        r.sent.insert(r.waiting.pop_front().expect("one"));
        let named = r.answered(PtrReplyMsg { addr: a("192.0.2.1"), outcome: PtrOutcome::Named { name: "host.example".into(), ttl: 300 } }, |n: &str| Rc::from(n));
        let (name, flows) = named.expect("named");
        assert_eq!((&*name, flows), ("host.example", vec![(1, 1), (1, 2)]));
        assert_eq!(r.name_of(a("192.0.2.1")).as_deref(), Some("host.example"));
        assert_eq!(r.learnt, 1);
    }

    #[test]
    fn failures_are_counted_and_not_asked_again_at_once() {
        let mut r = on();
        r.want(a("192.0.2.2"), (1, 1));
        r.sent.insert(r.waiting.pop_front().expect("one"));
        assert!(r.answered(PtrReplyMsg { addr: a("192.0.2.2"), outcome: PtrOutcome::TimedOut }, |n: &str| Rc::from(n)).is_none());
        assert_eq!(r.failed, 1);
        r.want(a("192.0.2.2"), (1, 2));
        assert!(r.waiting.is_empty(), "not asked again within FAILED_KEEP");
        // An answer nobody asked for (from before a relink) is ignored.
        assert!(r.answered(PtrReplyMsg { addr: a("192.0.2.9"), outcome: PtrOutcome::NoName }, |n: &str| Rc::from(n)).is_none());
        // Beyond MAX_WAITING addresses are not asked about, and counted.
        for i in 0..MAX_WAITING as u32 + 5 {
            r.want(IpAddr::from((0x0a00_0000u32 + i).to_be_bytes()), (2, u64::from(i)));
        }
        assert_eq!((r.waiting.len(), r.not_asked), (MAX_WAITING, 5));
    }

    #[test]
    fn off_means_nothing_is_asked() {
        let mut r = ReverseDns::new(&picosnitch_config::MonitoringConfig::default());
        r.want(a("192.0.2.1"), (1, 1));
        assert!(r.waiting.is_empty());
    }
}
