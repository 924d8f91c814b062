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
}

impl Domains {
    pub fn new(cache_entries: u32) -> Self {
        let entries = cache_entries as usize;
        Domains {
            cache: NameCache::new(entries, entries.saturating_mul(BYTES_PER_NAME)),
            server_names: LruCache::new(NonZeroUsize::new(PENDING_SERVER_NAMES).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// Learns from one packet. Returns the server name of a ClientHello with the
    /// cookie of its socket, for flows of that socket already announced.
    pub fn learn(&mut self, p: &NamePacket, ids: &mut Identities, status: &mut PrimaryStatus) -> Option<(u64, Rc<str>)> {
        let now = Instant::now();
        match p.kind {
            NamePacketKind::DnsUdp | NamePacketKind::DnsTcp => {
                let answers = match p.kind {
                    NamePacketKind::DnsUdp => dns::parse_answer(&p.data).map(|a| vec![a]),
                    _ => dns::parse_tcp_segment(&p.data),
                };
                match answers {
                    Ok(answers) => {
                        for a in answers {
                            status.dns_answers += 1;
                            for r in a.resolved {
                                status.dns_addresses += 1;
                                self.cache.insert(p.netns, r.addr, ids.intern(&r.name), r.ttl, now);
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

    pub fn report(&self, status: &mut PrimaryStatus) {
        status.domain_cache_entries = self.cache.len() as u64;
        status.domain_cache_evicted_early = self.cache.evicted_early;
    }
}
