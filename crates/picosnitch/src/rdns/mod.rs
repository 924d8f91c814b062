//! The rdns role (only with `[monitoring] reverse_dns`): asks the resolver for the
//! name (PTR) of each address the primary sends, and answers with what came back, a
//! timeout, or why there is nothing. It has exactly one way out: a UDP socket the
//! supervisor connected to the resolver before starting it (fd 5); it opens no file
//! and can create no socket. Replies are parsed by `picosnitch_domains::ptr`, the
//! same bounded, fuzzed parser as the answers the kernel copies.
pub mod policy;

use crate::role::{self, Command, Control, Duty};
use anyhow::Context;
use async_io::{Async, Timer};
use picosnitch_config::Config;
use picosnitch_domains::ptr::{self, PtrReply};
use picosnitch_ipc::control::{FromRole, Role};
use picosnitch_ipc::reverse_dns::{PtrOutcome, PtrReplyMsg, PtrRequest};
use picosnitch_ipc::status::{ReverseDnsStatus, RoleStatus};
use picosnitch_ipc::{IpcError, Link, SeqPacket};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Where the supervisor puts the socket connected to the resolver.
pub const RESOLVER_FD: RawFd = 5;
const STATUS_PERIOD: Duration = Duration::from_secs(2);
/// Lookups in flight at once; beyond it a request is answered at once as failed. The
/// primary keeps fewer than this unanswered (see primary::reverse_dns).
pub const MAX_IN_FLIGHT: usize = 64;
/// A reply larger than this is cut (PTR replies are a few hundred bytes; a server
/// answers at most 512 bytes over UDP unless EDNS0 was offered, and it was not).
const MAX_REPLY: usize = 4096;

type PrimaryLink = Link<PtrReplyMsg, PtrRequest>;

enum Wake {
    Command(anyhow::Result<Command>),
    Request(Result<Option<PtrRequest>, IpcError>),
    Readable,
    Tick,
}

struct InFlight {
    addr: IpAddr,
    deadline: Instant,
}

/// Takes the resolver's socket from fd 5: a connected UDP socket, or an error.
fn take_resolver_socket() -> anyhow::Result<UdpSocket> {
    // SAFETY: fcntl(F_GETFD) on any integer is safe; it only tells whether it is open.
    if unsafe { libc::fcntl(RESOLVER_FD, libc::F_GETFD) } < 0 {
        anyhow::bail!("fd {RESOLVER_FD} is not open: the rdns role gets the resolver's socket from `picosnitch daemon`");
    }
    // SAFETY: the fd is open and was placed there by the supervisor for this process;
    // from here on it is owned once.
    let fd = unsafe { OwnedFd::from_raw_fd(RESOLVER_FD) };
    let ty = rustix::net::sockopt::socket_type(&fd).context("fd 5 is not a socket")?;
    if ty != rustix::net::SocketType::DGRAM {
        anyhow::bail!("fd {RESOLVER_FD} is not a UDP socket");
    }
    let sock = UdpSocket::from(fd);
    let peer = sock.peer_addr().context("the resolver's socket is not connected")?;
    tracing::debug!(%peer, "resolver socket");
    Ok(sock)
}

/// Query ids nobody off the path can guess (the socket's random port is the other half).
struct Ids {
    state: std::collections::hash_map::RandomState,
    counter: u64,
}

impl Ids {
    fn next(&mut self, taken: &HashMap<u16, InFlight>) -> u16 {
        loop {
            self.counter += 1;
            let mut h = self.state.build_hasher();
            h.write_u64(self.counter);
            let id = h.finish() as u16;
            if !taken.contains_key(&id) {
                return id;
            }
        }
    }
}

pub fn run(control: SeqPacket, config: &Config) -> anyhow::Result<()> {
    let sock = take_resolver_socket()?;
    let resolver = sock.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let timeout = Duration::from_millis(u64::from(config.monitoring.reverse_dns_timeout_ms));
    // INVARIANT: confined before any thread exists, holding only its control link and
    // the resolver's socket.
    crate::confine::confine_role(&policy::POLICY, config)?;
    smol::block_on(async {
        let control: Control = Link::new(control)?;
        let sock = Async::new(sock).context("registering the resolver's socket")?;
        let mut primary: Option<PrimaryLink> = None;
        let mut status = ReverseDnsStatus { resolver: resolver.clone(), ..Default::default() };
        let mut in_flight: HashMap<u16, InFlight> = HashMap::new();
        let mut ids = Ids { state: std::collections::hash_map::RandomState::new(), counter: 0 };
        let mut buf = vec![0u8; MAX_REPLY];
        control.send(&FromRole::Status(RoleStatus::ReverseDns(status.clone()))).await.context("reporting status")?;
        let mut next_status = Instant::now() + STATUS_PERIOD;
        tracing::info!(%resolver, timeout_ms = timeout.as_millis() as u64, "reverse DNS lookups on");
        loop {
            let first_deadline = in_flight.values().map(|f| f.deadline).min();
            let wake_at = first_deadline.map_or(next_status, |d| d.min(next_status));
            let wake = futures_lite::future::or(
                async { Wake::Command(role::next_command(&control).await) },
                futures_lite::future::or(
                    async {
                        match &primary {
                            Some(p) => Wake::Request(p.recv().await),
                            None => futures_lite::future::pending().await,
                        }
                    },
                    futures_lite::future::or(
                        async {
                            if in_flight.is_empty() {
                                futures_lite::future::pending::<()>().await;
                            }
                            let _ = sock.readable().await;
                            Wake::Readable
                        },
                        async {
                            Timer::at(wake_at).await;
                            Wake::Tick
                        },
                    ),
                ),
            )
            .await;
            match wake {
                Wake::Command(cmd) => match role::duty(&control, cmd?, Role::ReverseDns).await? {
                    Duty::Primary(link) => {
                        // A new primary asks again for whatever it had no answer to.
                        in_flight.clear();
                        primary = Some(Link::new(link)?);
                    }
                    Duty::Stop => return Ok(()),
                    Duty::Notice(_) | Duty::Done => {}
                },
                Wake::Request(Ok(Some(req))) => {
                    if in_flight.len() >= MAX_IN_FLIGHT {
                        status.dropped_busy += 1;
                        reply(&mut primary, req.addr, PtrOutcome::Failed("too many lookups in flight".into())).await;
                        continue;
                    }
                    let id = ids.next(&in_flight);
                    let query = ptr::query(id, req.addr);
                    match sock.get_ref().send(&query) {
                        Ok(_) => {
                            status.queries += 1;
                            in_flight.insert(id, InFlight { addr: req.addr, deadline: Instant::now() + timeout });
                        }
                        Err(e) => {
                            // ECONNREFUSED from an earlier ICMP port unreachable, a full
                            // socket buffer, no route: the lookup fails now.
                            status.errors += 1;
                            let text = format!("sending to the resolver {resolver}: {e}");
                            note_error(&mut status, &text);
                            reply(&mut primary, req.addr, PtrOutcome::Failed(text)).await;
                        }
                    }
                }
                Wake::Request(Ok(None)) => {
                    tracing::info!("primary closed its link; waiting for a new one");
                    primary = None;
                    in_flight.clear();
                }
                Wake::Request(Err(e)) => {
                    tracing::warn!(error = %e, "bad request from the primary; dropping the link");
                    primary = None;
                    in_flight.clear();
                }
                Wake::Readable => {
                    // Everything that arrived, without waiting.
                    for _ in 0..MAX_IN_FLIGHT * 2 {
                        let n = match sock.get_ref().recv(&mut buf) {
                            Ok(n) => n,
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) => {
                                // An ICMP error for an earlier query (the resolver's
                                // port is closed): its lookup times out.
                                let text = format!("receiving from the resolver {resolver}: {e}");
                                note_error(&mut status, &text);
                                break;
                            }
                        };
                        let msg = &buf[..n];
                        let Some(f) = ptr::reply_id(msg).and_then(|id| in_flight.remove(&id).map(|f| (id, f))) else {
                            status.errors += 1;
                            note_error(&mut status, "a reply to no query in flight (late, or not from this role's queries)");
                            continue;
                        };
                        let (id, f) = f;
                        let outcome = match ptr::parse_reply(msg, id, f.addr) {
                            Ok(PtrReply::Named(p)) => {
                                status.named += 1;
                                PtrOutcome::Named { name: p.name, ttl: p.ttl }
                            }
                            Ok(PtrReply::NoName) => {
                                status.no_name += 1;
                                PtrOutcome::NoName
                            }
                            Err(e) => {
                                status.errors += 1;
                                let text = format!("reverse DNS reply for {}: {e}", f.addr);
                                note_error(&mut status, &text);
                                PtrOutcome::Failed(text)
                            }
                        };
                        reply(&mut primary, f.addr, outcome).await;
                    }
                }
                Wake::Tick => {}
            }
            let now = Instant::now();
            let expired: Vec<u16> = in_flight.iter().filter(|(_, f)| f.deadline <= now).map(|(id, _)| *id).collect();
            for id in expired {
                if let Some(f) = in_flight.remove(&id) {
                    status.timeouts += 1;
                    reply(&mut primary, f.addr, PtrOutcome::TimedOut).await;
                }
            }
            if now >= next_status {
                control.send(&FromRole::Status(RoleStatus::ReverseDns(status.clone()))).await.context("reporting status")?;
                next_status = now + STATUS_PERIOD;
            }
        }
    })
}

fn note_error(status: &mut ReverseDnsStatus, text: &str) {
    if status.last_error.as_deref() != Some(text) {
        tracing::warn!(error = %text, "reverse DNS lookup failed");
        status.last_error = Some(text.to_string());
    }
}

async fn reply(primary: &mut Option<PrimaryLink>, addr: IpAddr, outcome: PtrOutcome) {
    if let Some(p) = primary {
        if let Err(e) = p.send(&PtrReplyMsg { addr, outcome }).await {
            tracing::warn!(error = %e, "primary link lost; it asks again after its restart");
            *primary = None;
        }
    }
}

/// The resolver to ask: `[monitoring] reverse_dns_resolver`, else the first
/// `nameserver` of /etc/resolv.conf (read by the supervisor, which connects the socket).
pub fn resolver_address(config: &Config) -> anyhow::Result<std::net::SocketAddr> {
    if let Some(a) = config.monitoring.reverse_dns_resolver_addr().map_err(anyhow::Error::msg)? {
        return Ok(a);
    }
    let text = std::fs::read_to_string("/etc/resolv.conf")
        .context("reading /etc/resolv.conf for the reverse DNS resolver; or set [monitoring] reverse_dns_resolver")?;
    first_nameserver(&text).context("/etc/resolv.conf names no nameserver; set [monitoring] reverse_dns_resolver")
}

fn first_nameserver(resolv_conf: &str) -> Option<std::net::SocketAddr> {
    resolv_conf.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver")).then(|| words.next()).flatten().and_then(|w| {
            // A scoped IPv6 address (fe80::1%eth0) cannot be written as a SocketAddr: skipped.
            w.parse::<IpAddr>().ok().map(|ip| std::net::SocketAddr::new(ip, 53))
        })
    })
}

/// The socket the rdns role gets: UDP, connected to the resolver, non-blocking.
pub fn connect_resolver(config: &Config) -> anyhow::Result<UdpSocket> {
    let resolver = resolver_address(config)?;
    let local: std::net::SocketAddr = if resolver.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(local).context("creating the reverse DNS socket")?;
    sock.connect(resolver).with_context(|| format!("connecting the reverse DNS socket to {resolver}"))?;
    sock.set_nonblocking(true).context("making the reverse DNS socket non-blocking")?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_nameserver_of_resolv_conf() {
        let conf = "# comment\nsearch example\nnameserver fe80::1%eth0\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n";
        assert_eq!(first_nameserver(conf), Some("192.0.2.53:53".parse().expect("addr")));
        assert_eq!(first_nameserver("nameserver 2001:db8::53"), Some("[2001:db8::53]:53".parse().expect("addr")));
        assert_eq!(first_nameserver("search x\n"), None);
    }
}
