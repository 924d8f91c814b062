//! ICMP echo (ping sockets and raw sockets) and raw IP datagrams of other protocols.
use crate::pace::Pace;
use crate::report::Report;
use anyhow::Context;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How long to keep reading after the last expected packet: raw sockets also get
/// copies of other packets of their protocol (on loopback, our own requests).
const LINGER: Duration = Duration::from_millis(300);

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum = sum.wrapping_add(u32::from(word));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP or ICMPv6 echo request: 8-byte header and `size` bytes of payload.
fn echo_request(v6: bool, seq: u16, size: usize) -> Vec<u8> {
    let mut p = vec![0u8; 8 + size];
    p[0] = if v6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&0x5053u16.to_be_bytes()); // "PS"
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    if !v6 {
        // ICMPv6 checksums cover a pseudo-header the kernel fills in for raw ICMPv6
        // sockets; IPv4 ICMP is ours to compute.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

fn recv_some(s: &Socket, until: Instant, want: usize, r: &mut Report) -> anyhow::Result<()> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 65536];
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        s.set_read_timeout(Some(until - now))?;
        match s.recv(&mut buf) {
            Ok(n) => {
                r.received += n as u64;
                r.received_packets += 1;
                if r.received_packets as usize >= want && want > 0 {
                    // Got what was asked for; linger briefly for stray copies.
                    return recv_some(s, Instant::now() + LINGER, 0, r);
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return Ok(()),
            Err(e) => return Err(e).context("receiving"),
        }
    }
}

pub fn ping(to: IpAddr, count: usize, size: usize, raw: bool, pace: Pace) -> anyhow::Result<Report> {
    let v6 = to.is_ipv6();
    let (domain, proto) = if v6 { (Domain::IPV6, Protocol::ICMPV6) } else { (Domain::IPV4, Protocol::ICMPV4) };
    let ty = if raw { Type::RAW } else { Type::DGRAM };
    let s = Socket::new(domain, ty, Some(proto)).with_context(|| {
        if raw {
            "opening a raw ICMP socket (needs CAP_NET_RAW)".to_string()
        } else {
            "opening a ping socket (needs the group in net.ipv4.ping_group_range)".to_string()
        }
    })?;
    let addr = SockAddr::from(SocketAddr::new(to, 0));
    let mut r = Report::default();
    for seq in 0..count {
        pace.wait(seq);
        let p = echo_request(v6, seq as u16, size);
        s.send_to(&p, &addr).context("sending an echo request")?;
        r.sent += p.len() as u64;
        r.sent_packets += 1;
    }
    recv_some(&s, Instant::now() + Duration::from_secs(5), count, &mut r)?;
    Ok(r)
}

pub fn raw_ip(to: IpAddr, proto: i32, count: usize, size: usize, pace: Pace) -> anyhow::Result<Report> {
    let domain = if to.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::RAW, Some(Protocol::from(proto))).context("opening a raw IP socket (needs CAP_NET_RAW)")?;
    let addr = SockAddr::from(SocketAddr::new(to, 0));
    let payload = vec![b'p'; size];
    let mut r = Report::default();
    for i in 0..count {
        pace.wait(i);
        s.send_to(&payload, &addr).context("sending a raw datagram")?;
        r.sent += size as u64;
        r.sent_packets += 1;
    }
    // On loopback our own datagrams come back to every raw socket of the protocol.
    recv_some(&s, Instant::now() + LINGER, 0, &mut r)?;
    Ok(r)
}
