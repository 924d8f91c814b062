//! The domain of each flow: the name a DNS answer in the flow's network namespace gave
//! its remote address, else the server name its socket's TLS ClientHello carried.
//! Packets arrive as bytes from the kernel (any server on the network or any local
//! process chose them): they are parsed here, inside the primary's sandbox, and a
//! packet that does not parse is counted and dropped.
use super::identity::Identities;
use lru::LruCache;
use picosnitch_domains::{dns, tls, NameCache};
use picosnitch_ipc::events::{NamePacket, NamePacketKind};
use picosnitch_ipc::status::PrimaryStatus;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::time::Instant;

/// Server names of sockets whose flows were not announced yet (the ClientHello goes
/// out before the byte hook announces a connection): enough for a burst of new
/// connections, each named within a moment.
const PENDING_SERVER_NAMES: usize = 4096;
/// TCP DNS streams whose message continues in later segments, remembered so those
/// segments are skipped rather than counted as malformed.
const TCP_STREAMS: usize = 1024;
/// Average bytes per cached name the byte bound allows.
const BYTES_PER_NAME: usize = 128;

/// Where a flow's domain came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Dns,
    Tls,
}

pub struct Domains {
    cache: NameCache,
    server_names: LruCache<u64, Rc<str>>,
    /// Bytes still to come of the DNS message a TCP socket (by cookie) is receiving.
    tcp_rest: LruCache<u64, usize>,
    /// Addresses learnt from the packets since the last `take_learnt`.
    learnt: Vec<(u32, IpAddr, Rc<str>)>,
}

impl Domains {
    pub fn new(cache_entries: u32) -> Self {
        let entries = cache_entries as usize;
        Domains {
            cache: NameCache::new(entries, entries.saturating_mul(BYTES_PER_NAME)),
            server_names: LruCache::new(NonZeroUsize::new(PENDING_SERVER_NAMES).unwrap_or(NonZeroUsize::MIN)),
            tcp_rest: LruCache::new(NonZeroUsize::new(TCP_STREAMS).unwrap_or(NonZeroUsize::MIN)),
            learnt: Vec::new(),
        }
    }

    /// Learns from one packet. Returns the server name of a ClientHello with the
    /// cookie of its socket, for flows of that socket already announced.
    pub fn learn(&mut self, p: &NamePacket, ids: &mut Identities, status: &mut PrimaryStatus) -> Option<(u64, Rc<str>)> {
        let now = Instant::now();
        match p.kind {
            NamePacketKind::DnsUdp | NamePacketKind::DnsTcp => {
                let mut data = p.data.as_slice();
                let wire_len = (p.wire_len as usize).max(data.len());
                let mut skipped = 0;
                if p.kind == NamePacketKind::DnsTcp {
                    // The rest of a message begun in an earlier segment comes first.
                    if let Some(rest) = self.tcp_rest.pop(&p.cookie) {
                        if rest >= wire_len {
                            if rest > wire_len {
                                self.tcp_rest.put(p.cookie, rest - wire_len);
                            }
                            status.dns_tcp_continued += 1;
                            return None;
                        }
                        skipped = rest;
                        data = data.get(rest..).unwrap_or_default();
                        if data.len() < 2 {
                            return None; // the next message starts beyond the copy
                        }
                    }
                }
                let answers = match p.kind {
                    NamePacketKind::DnsUdp => dns::parse_answer(data).map(|a| vec![a]),
                    _ => dns::parse_tcp_segment(data).map(|seg| {
                        let end = skipped + seg.next_message_at;
                        if end > wire_len {
                            self.tcp_rest.put(p.cookie, end - wire_len);
                        }
                        seg.answers
                    }),
                };
                match answers {
                    Ok(answers) => {
                        for a in answers {
                            status.dns_answers += 1;
                            for r in a.resolved {
                                status.dns_addresses += 1;
                                let name = ids.intern(&r.name);
                                self.cache.insert(p.netns, r.addr, Rc::clone(&name), r.ttl, now);
                                self.learnt.push((p.netns, r.addr, name));
                            }
                        }
                    }
                    // A query from port 53 (a server asking another) is no answer, and
                    // no loss either.
                    Err(dns::DnsError::NotResponse) => {}
                    Err(e) => {
                        status.dns_malformed += 1;
                        tracing::debug!(error = %e, netns = p.netns, "dropping a DNS packet that does not parse");
                    }
                }
                None
            }
            NamePacketKind::TlsHello => {
                status.tls_hellos += 1;
                match tls::server_name(&p.data) {
                    Ok(Some(name)) => {
                        status.tls_server_names += 1;
                        let name = ids.intern(&name);
                        self.server_names.put(p.cookie, Rc::clone(&name));
                        Some((p.cookie, name))
                    }
                    Ok(None) => None,
                    Err(e) => {
                        status.tls_malformed += 1;
                        tracing::debug!(error = %e, cut = p.wire_len as usize > p.data.len(), "dropping a ClientHello that does not parse");
                        None
                    }
                }
            }
        }
    }

    /// The domain of a new flow toward `raddr` from namespace `netns` on socket `cookie`.
    pub fn of_flow(&mut self, netns: u32, raddr: Option<IpAddr>, cookie: u64) -> Option<(Rc<str>, Source)> {
        if let Some(name) = raddr.and_then(|a| self.cache.lookup(netns, a, Instant::now())) {
            return Some((name, Source::Dns));
        }
        self.server_names.get(&cookie).map(|n| (Rc::clone(n), Source::Tls))
    }

    /// The (namespace, address, name) triples DNS answers gave since the last call.
    pub fn take_learnt(&mut self) -> Vec<(u32, IpAddr, Rc<str>)> {
        std::mem::take(&mut self.learnt)
    }

    pub fn report(&self, status: &mut PrimaryStatus) {
        status.domain_cache_entries = self.cache.len() as u64;
        status.domain_cache_evicted_early = self.cache.evicted_early;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picosnitch_domains::dns::build::{response, Rr};

    fn packet(kind: NamePacketKind, cookie: u64, data: &[u8]) -> NamePacket {
        NamePacket { kind, netns: 9, cookie, wire_len: data.len() as u32, data: data.to_vec() }
    }

    #[test]
    fn a_tcp_answer_over_several_segments_is_not_malformed() {
        let mut d = Domains::new(1024);
        let mut ids = Identities::new(u64::MAX, true);
        let mut st = PrimaryStatus::default();
        let big: Vec<Rr> = (0..40u8).map(|i| Rr::Addr("big.example", IpAddr::from([192, 0, 2, i]), 60)).collect();
        let m1 = response(1, "big.example", false, &big);
        let m2 = response(2, "next.example", false, &[Rr::Addr("next.example", IpAddr::from([198, 51, 100, 1]), 60)]);
        let mut stream = (m1.len() as u16).to_be_bytes().to_vec();
        stream.extend_from_slice(&m1);
        stream.extend_from_slice(&(m2.len() as u16).to_be_bytes());
        stream.extend_from_slice(&m2);
        // Three segments: the first 200 bytes, the next 200, and the rest with m2.
        for seg in [&stream[..200], &stream[200..400], &stream[400..]] {
            d.learn(&packet(NamePacketKind::DnsTcp, 5, seg), &mut ids, &mut st);
        }
        assert_eq!((st.dns_malformed, st.dns_tcp_continued, st.dns_answers), (0, 1, 2), "{st:?}");
        let named = |d: &mut Domains, a: [u8; 4]| d.of_flow(9, Some(IpAddr::from(a)), 0).map(|(n, _)| n.to_string());
        assert_eq!(named(&mut d, [198, 51, 100, 1]).as_deref(), Some("next.example"));
        assert_eq!(named(&mut d, [192, 0, 2, 0]).as_deref(), Some("big.example"), "records before the cut are kept");
        // A UDP packet that is no DNS at all is malformed.
        d.learn(&packet(NamePacketKind::DnsUdp, 6, b"\x12\x34\x81\x80 not dns"), &mut ids, &mut st);
        assert_eq!(st.dns_malformed, 1);
    }

    #[test]
    fn server_names_wait_for_their_flow() {
        let mut d = Domains::new(1024);
        let mut ids = Identities::new(u64::MAX, true);
        let mut st = PrimaryStatus::default();
        let hello = picosnitch_domains::tls::build::client_hello(Some("late.example"), 0);
        let learnt = d.learn(&packet(NamePacketKind::TlsHello, 77, &hello), &mut ids, &mut st);
        assert_eq!(learnt.map(|(c, n)| (c, n.to_string())), Some((77, "late.example".to_string())));
        let (name, source) = d.of_flow(9, Some(IpAddr::from([203, 0, 113, 1])), 77).expect("named");
        assert_eq!((&*name, source), ("late.example", Source::Tls));
        d.learn(&packet(NamePacketKind::TlsHello, 78, &hello[..20]), &mut ids, &mut st);
        assert_eq!((st.tls_hellos, st.tls_server_names, st.tls_malformed), (2, 1, 1));
    }
}
