//! The primary's side of reverse DNS (only with `[monitoring] reverse_dns`): a remote
//! address that no DNS answer or TLS ClientHello named when its flow opened is sent to
//! the rdns role (a few at a time, so sending never waits) after a short grace period
//! in which a ClientHello or a late DNS answer may still name the flow (then nothing is
//! asked). The name that comes back names the flows waiting for it, and later flows to
//! that address while the name is kept. A row of a flow whose lookup is out waits for
//! it, as rows wait for hashes: at most the grace, the lookup's timeout and a second
//! (and never more than the hash wait), then it is written without a domain.
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
/// How long after its flow opened an address is looked up: a ClientHello goes out
/// within a round trip of the connection, and the kernel hands it over within a
/// drain (100 ms); a DNS answer drained just after the flow comes sooner still.
pub const GRACE: Duration = Duration::from_millis(500);

pub struct ReverseDns {
    enabled: bool,
    names: NameCache,
    /// Addresses not to ask about again before the instant.
    not_now: LruCache<IpAddr, Instant>,
    /// Addresses to look up, with when the first flow asked.
    waiting: VecDeque<(IpAddr, Instant)>,
    sent: HashSet<IpAddr>,
    /// Flows waiting for the name of each address, queued or sent, and the same by key.
    flows: HashMap<IpAddr, Vec<EntryKey>>,
    waiting_keys: HashSet<EntryKey>,
    timeout: Duration,
    /// When the lookups of the last second were sent, at most `per_second` of them.
    recent: VecDeque<Instant>,
    per_second: usize,
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
            waiting_keys: HashSet::default(),
            timeout: Duration::from_millis(u64::from(config.reverse_dns_timeout_ms)),
            recent: VecDeque::new(),
            per_second: config.reverse_dns_per_second.max(1) as usize,
            link: None,
            learnt: 0,
            failed: 0,
            not_asked: 0,
        }
    }

    /// How long a row may wait for its flow's lookup: the grace, the timeout, a second.
    pub fn name_wait(&self) -> Duration {
        GRACE + self.timeout + Duration::from_secs(1)
    }

    /// The flow waits for a lookup (queued or sent).
    pub fn is_waiting(&self, key: &EntryKey) -> bool {
        self.waiting_keys.contains(key)
    }

    fn forget(&mut self, addr: IpAddr) -> Vec<EntryKey> {
        let keys = self.flows.remove(&addr).unwrap_or_default();
        for k in &keys {
            self.waiting_keys.remove(k);
        }
        keys
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
                self.waiting_keys.insert(key);
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
        self.waiting_keys.insert(key);
        self.waiting.push_back((addr, now));
    }

    /// A DNS answer named `addr` after its flow opened: no lookup, if none was sent yet.
    pub fn cancel(&mut self, addr: IpAddr) {
        let addr = addr.to_canonical();
        if self.flows.contains_key(&addr) && !self.sent.contains(&addr) {
            self.forget(addr);
            self.waiting.retain(|(a, _)| *a != addr);
        }
    }

    /// The role's answer: the name (interned by `intern`) and the flows it names.
    pub fn answered(&mut self, reply: PtrReplyMsg, intern: impl FnOnce(&str) -> Rc<str>) -> Option<(Rc<str>, Vec<EntryKey>)> {
        let addr = reply.addr.to_canonical();
        if !self.sent.remove(&addr) {
            return None; // an answer to a request of a previous link, already asked again
        }
        let flows = self.forget(addr);
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
        let now = Instant::now();
        for a in sent.into_iter().rev() {
            self.waiting.push_front((a, now.checked_sub(GRACE).unwrap_or(now)));
        }
    }

    /// Sends what the window allows of the addresses whose grace is over and that a
    /// flow still waits for (`unnamed`: no ClientHello or DNS answer named it since);
    /// on a failed link everything waits for the next.
    pub async fn send(&mut self, unnamed: impl Fn(&EntryKey) -> bool) {
        let now = Instant::now();
        while self.recent.front().is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1)) {
            self.recent.pop_front();
        }
        while self.sent.len() < WINDOW && self.recent.len() < self.per_second {
            let Some((_, link)) = &self.link else { return };
            let Some(&(addr, since)) = self.waiting.front() else { return };
            if now.saturating_duration_since(since) < GRACE {
                return;
            }
            self.waiting.pop_front();
            let still: Vec<EntryKey> = self.flows.get(&addr).map(|ks| ks.iter().copied().filter(|k| unnamed(k)).collect()).unwrap_or_default();
            if still.is_empty() {
                self.forget(addr);
                continue;
            }
            for k in self.flows.insert(addr, still.clone()).unwrap_or_default() {
                if !still.contains(&k) {
                    self.waiting_keys.remove(&k);
                }
            }
            if let Err(e) = link.send(&PtrRequest { addr }).await {
                tracing::warn!(error = %e, "rdns link failed; lookups wait for its restart");
                self.waiting.push_front((addr, since));
                self.link = None;
                self.relinked();
                return;
            }
            self.sent.insert(addr);
            self.recent.push_back(now);
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
        assert_eq!(r.waiting.iter().map(|w| w.0).collect::<Vec<_>>(), [a("192.0.2.1")]);
        assert!(r.is_waiting(&(1, 1)) && r.is_waiting(&(1, 2)) && !r.is_waiting(&(1, 3)));
        r.sent.insert(r.waiting.pop_front().expect("one").0);
        let named = r.answered(PtrReplyMsg { addr: a("192.0.2.1"), outcome: PtrOutcome::Named { name: "host.example".into(), ttl: 300 } }, |n: &str| Rc::from(n));
        let (name, flows) = named.expect("named");
        assert_eq!((&*name, flows), ("host.example", vec![(1, 1), (1, 2)]));
        assert_eq!(r.name_of(a("192.0.2.1")).as_deref(), Some("host.example"));
        assert_eq!(r.learnt, 1);
        assert!(!r.is_waiting(&(1, 1)), "answered: its rows wait no more");
    }

    #[test]
    fn nothing_is_sent_in_the_grace_period_nor_for_flows_named_meanwhile() {
        let mut r = on();
        let (ours, theirs) = picosnitch_ipc::SeqPacket::pair().expect("pair");
        r.link = Some((1, Rc::new(Link::new(ours).expect("link"))));
        let peer: Link<PtrReplyMsg, PtrRequest> = Link::new(theirs).expect("link");
        r.want(a("192.0.2.1"), (1, 1));
        r.want(a("192.0.2.2"), (1, 2));
        smol::block_on(r.send(|_| true));
        assert!(r.sent.is_empty(), "within the grace period");
        for w in r.waiting.iter_mut() {
            w.1 -= GRACE;
        }
        // A ClientHello named the flow to 192.0.2.1 meanwhile: only 192.0.2.2 is asked.
        smol::block_on(r.send(|k| *k != (1, 1)));
        assert_eq!(r.sent.iter().copied().collect::<Vec<_>>(), [a("192.0.2.2")]);
        assert!(!r.is_waiting(&(1, 1)) && r.is_waiting(&(1, 2)));
        let req = smol::block_on(peer.recv()).expect("recv").expect("a request");
        assert_eq!(req.addr, a("192.0.2.2"));
    }

    #[test]
    fn lookups_are_paced_per_second() {
        let mut r = ReverseDns::new(&picosnitch_config::MonitoringConfig { reverse_dns: true, reverse_dns_per_second: 3, ..Default::default() });
        let (ours, _theirs) = picosnitch_ipc::SeqPacket::pair().expect("pair");
        r.link = Some((1, Rc::new(Link::new(ours).expect("link"))));
        for i in 0..10u8 {
            r.want(IpAddr::from([192, 0, 2, i]), (1, u64::from(i)));
        }
        for w in r.waiting.iter_mut() {
            w.1 -= GRACE;
        }
        smol::block_on(r.send(|_| true));
        assert_eq!((r.sent.len(), r.waiting.len()), (3, 7), "three this second");
        for t in r.recent.iter_mut() {
            *t -= Duration::from_secs(1);
        }
        smol::block_on(r.send(|_| true));
        assert_eq!((r.sent.len(), r.waiting.len()), (6, 4), "three more the next");
    }

    #[test]
    fn failures_are_counted_and_not_asked_again_at_once() {
        let mut r = on();
        r.want(a("192.0.2.2"), (1, 1));
        r.sent.insert(r.waiting.pop_front().expect("one").0);
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
