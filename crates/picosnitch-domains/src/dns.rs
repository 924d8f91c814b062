//! DNS answers (RFC 1035), read only as far as needed to map addresses to names: the
//! question, then the answer section's CNAME, A, AAAA and PTR records. A CNAME chain is
//! followed from the question, so `www.example.com CNAME cdn.example.net A 192.0.2.1`
//! gives 192.0.2.1 the name the program asked for, `www.example.com`.
//!
//! Bounds, whatever the packet says: names of at most 255 wire bytes with at most 32
//! compression jumps, at most 256 records walked, 64 addresses kept, chains of 16.
//! A message cut short (the kernel copies at most 2 KiB of a packet) keeps the records
//! that fit before the cut.
use crate::name::push_label;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const HEADER_LEN: usize = 12;
const MAX_NAME_WIRE: usize = 255;
const MAX_JUMPS: usize = 32;
/// Records of the answer section looked at.
pub const MAX_RECORDS: usize = 256;
/// Addresses taken from one answer.
pub const MAX_ADDRESSES: usize = 64;
/// CNAMEs followed from the question.
pub const MAX_CHAIN: usize = 16;
/// PTR names taken from one answer.
pub const MAX_POINTERS: usize = 8;
/// DNS messages read from one TCP segment.
pub const MAX_TCP_MESSAGES: usize = 16;

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
pub(crate) const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("shorter than a DNS header ({0} bytes)")]
    Short(usize),
    #[error("a query, not a response")]
    NotResponse,
    #[error("{0} questions (an answer to a lookup has one)")]
    Questions(u16),
    #[error("the message ends inside its question or a record, at byte {0}")]
    Truncated(usize),
    #[error("label at byte {0} uses the reserved 0x40/0x80 type bits")]
    BadLabel(usize),
    #[error("compression pointer at byte {0} points forward or jumps too often")]
    BadPointer(usize),
    #[error("name at byte {0} is longer than 255 bytes")]
    NameTooLong(usize),
    #[error("record of type {rtype} has {len} bytes of data")]
    BadRdata { rtype: u16, len: u16 },
    #[error("a TCP segment from port 53 that does not start with a DNS message (length field {0})")]
    TcpFraming(u16),
}

/// One address and the name it was looked up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub addr: IpAddr,
    /// The question's name when the address is at the end of its CNAME chain, else the
    /// record's own name.
    pub name: String,
    /// The smallest TTL along the chain, in seconds.
    pub ttl: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsAnswer {
    pub question: String,
    /// The response code (0: no error, 3: no such name).
    pub rcode: u8,
    pub resolved: Vec<Resolved>,
    /// Names PTR records give the question (reverse DNS), at the end of its CNAME
    /// chain (RFC 2317 delegation), with the smallest TTL along it.
    pub pointers: Vec<Pointer>,
    /// The message ended inside a record: later records are missing.
    pub cut: bool,
}

/// A name a PTR record gives the question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    pub name: String,
    pub ttl: u32,
}

fn byte(msg: &[u8], at: usize) -> Result<u8, DnsError> {
    msg.get(at).copied().ok_or(DnsError::Truncated(at))
}

fn u16_at(msg: &[u8], at: usize) -> Result<u16, DnsError> {
    Ok(u16::from_be_bytes([byte(msg, at)?, byte(msg, at + 1)?]))
}

fn u32_at(msg: &[u8], at: usize) -> Result<u32, DnsError> {
    Ok(u32::from_be_bytes([byte(msg, at)?, byte(msg, at + 1)?, byte(msg, at + 2)?, byte(msg, at + 3)?]))
}

/// Reads a possibly compressed name at `at`: its presentation form and where the
/// bytes after it start.
fn read_name(msg: &[u8], at: usize) -> Result<(String, usize), DnsError> {
    let mut out = String::new();
    let mut p = at;
    let mut after = None;
    let mut wire = 1; // the root label
    let mut jumps = 0;
    loop {
        let len = byte(msg, p)?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                return Ok((out, after.unwrap_or(p + 1)));
            }
            0x00 => {
                let l = len as usize;
                let label = msg.get(p + 1..p + 1 + l).ok_or(DnsError::Truncated(p))?;
                wire += l + 1;
                if wire > MAX_NAME_WIRE {
                    return Err(DnsError::NameTooLong(at));
                }
                push_label(&mut out, label);
                p += 1 + l;
            }
            0xC0 => {
                let target = (usize::from(len & 0x3F) << 8) | usize::from(byte(msg, p + 1)?);
                // Only backwards, and not forever: each jump must land before the
                // pointer itself, and labels between jumps count toward the 255 bytes.
                jumps += 1;
                if target >= p || jumps > MAX_JUMPS {
                    return Err(DnsError::BadPointer(p));
                }
                after.get_or_insert(p + 2);
                p = target;
            }
            _ => return Err(DnsError::BadLabel(p)),
        }
    }
}

struct Record {
    owner: String,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata_at: usize,
    rdlen: u16,
}

fn read_record(msg: &[u8], at: usize) -> Result<(Record, usize), DnsError> {
    let (owner, p) = read_name(msg, at)?;
    let rtype = u16_at(msg, p)?;
    let class = u16_at(msg, p + 2)?;
    let ttl = u32_at(msg, p + 4)?;
    let rdlen = u16_at(msg, p + 8)?;
    let rdata_at = p + 10;
    let end = rdata_at + usize::from(rdlen);
    if end > msg.len() {
        return Err(DnsError::Truncated(rdata_at));
    }
    Ok((Record { owner, rtype, class, ttl, rdata_at, rdlen }, end))
}

/// Parses one DNS response. Queries and malformed messages are refused; a response
/// with an error code or without addresses is an answer with nothing resolved.
pub fn parse_answer(msg: &[u8]) -> Result<DnsAnswer, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(DnsError::Short(msg.len()));
    }
    let flags = u16_at(msg, 2)?;
    if flags & 0x8000 == 0 {
        return Err(DnsError::NotResponse);
    }
    let questions = u16_at(msg, 4)?;
    if questions != 1 {
        return Err(DnsError::Questions(questions));
    }
    let answers = u16_at(msg, 6)?;
    let (question, mut p) = read_name(msg, HEADER_LEN)?;
    p += 4; // QTYPE, QCLASS
    if p > msg.len() {
        return Err(DnsError::Truncated(msg.len()));
    }
    let mut out = DnsAnswer { question, rcode: (flags & 0xF) as u8, ..DnsAnswer::default() };
    let mut cnames: Vec<(String, String, u32)> = Vec::new();
    let mut addrs: Vec<(String, IpAddr, u32)> = Vec::new();
    let mut ptrs: Vec<(String, String, u32)> = Vec::new();
    for _ in 0..usize::from(answers).min(MAX_RECORDS) {
        let (r, next) = match read_record(msg, p) {
            Ok(x) => x,
            Err(DnsError::Truncated(_)) => {
                out.cut = true;
                break;
            }
            Err(e) => return Err(e),
        };
        p = next;
        if r.class != CLASS_IN {
            continue;
        }
        let rdata = &msg[r.rdata_at..r.rdata_at + usize::from(r.rdlen)];
        match r.rtype {
            TYPE_A | TYPE_AAAA if addrs.len() < MAX_ADDRESSES => {
                let addr = match (r.rtype, rdata.len()) {
                    (TYPE_A, 4) => IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
                    (TYPE_AAAA, 16) => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(rdata);
                        IpAddr::V6(Ipv6Addr::from(a))
                    }
                    _ => return Err(DnsError::BadRdata { rtype: r.rtype, len: r.rdlen }),
                };
                addrs.push((r.owner, addr, r.ttl));
            }
            TYPE_CNAME => {
                let (target, end) = read_name(msg, r.rdata_at)?;
                if end > r.rdata_at + usize::from(r.rdlen) {
                    return Err(DnsError::BadRdata { rtype: r.rtype, len: r.rdlen });
                }
                cnames.push((r.owner, target, r.ttl));
            }
            TYPE_PTR if ptrs.len() < MAX_POINTERS => {
                let (target, end) = read_name(msg, r.rdata_at)?;
                if end > r.rdata_at + usize::from(r.rdlen) {
                    return Err(DnsError::BadRdata { rtype: r.rtype, len: r.rdlen });
                }
                ptrs.push((r.owner, target, r.ttl));
            }
            _ => {}
        }
    }
    // The chain from the question: each name it reaches, with the smallest TTL so far.
    let mut chain: Vec<(&str, u32)> = vec![(out.question.as_str(), u32::MAX)];
    for _ in 0..MAX_CHAIN {
        let Some(&(cur, ttl)) = chain.last() else { break };
        let Some((_, target, t)) = cnames.iter().find(|(owner, _, _)| owner == cur) else { break };
        if chain.iter().any(|(n, _)| *n == target.as_str()) {
            break; // a loop of CNAMEs
        }
        chain.push((target.as_str(), ttl.min(*t)));
    }
    let resolved: Vec<Resolved> = addrs
        .into_iter()
        .map(|(owner, addr, ttl)| match chain.iter().find(|(n, _)| *n == owner) {
            Some((_, chain_ttl)) => Resolved { addr, name: out.question.clone(), ttl: ttl.min(*chain_ttl) },
            None => Resolved { addr, name: owner, ttl },
        })
        .collect();
    out.resolved = resolved;
    out.pointers = ptrs
        .into_iter()
        .filter_map(|(owner, name, ttl)| {
            let (_, chain_ttl) = chain.iter().find(|(n, _)| *n == owner)?;
            Some(Pointer { name, ttl: ttl.min(*chain_ttl) })
        })
        .collect();
    Ok(out)
}

/// The DNS messages a TCP segment from port 53 starts with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpSegment {
    pub answers: Vec<DnsAnswer>,
    /// Where, counted from the segment's start, the message after the last one read
    /// begins: beyond the segment's length when that message continues in later
    /// segments, which do not start with a message and are to be skipped.
    pub next_message_at: usize,
}

/// Parses the DNS messages a TCP segment from port 53 starts with (each after a
/// two-byte length, RFC 1035 4.2.2). A segment that continues a message begun in an
/// earlier one does not start with a length and a header, and is refused.
pub fn parse_tcp_segment(seg: &[u8]) -> Result<TcpSegment, DnsError> {
    let mut out = TcpSegment::default();
    let mut off = 0;
    while off + 2 <= seg.len() && out.answers.len() < MAX_TCP_MESSAGES {
        let len = u16::from_be_bytes([seg[off], seg[off + 1]]);
        if usize::from(len) < HEADER_LEN {
            return Err(DnsError::TcpFraming(len));
        }
        let start = off + 2;
        let end = (start + usize::from(len)).min(seg.len());
        match parse_answer(&seg[start..end]) {
            Ok(mut a) => {
                a.cut |= end < start + usize::from(len);
                out.answers.push(a);
            }
            Err(e) if out.answers.is_empty() => return Err(e),
            Err(_) => break,
        }
        off = start + usize::from(len);
        out.next_message_at = off;
    }
    if out.answers.is_empty() {
        return Err(DnsError::Short(seg.len()));
    }
    Ok(out)
}

/// Builds DNS messages, for tests here and in the daemon's end-to-end tests.
pub mod build {
    use std::net::IpAddr;

    /// An answer record: owner, then an address, a CNAME target or a PTR name.
    pub enum Rr<'a> {
        Addr(&'a str, IpAddr, u32),
        Cname(&'a str, &'a str, u32),
        Ptr(&'a str, &'a str, u32),
    }

    fn name(out: &mut Vec<u8>, n: &str) {
        for label in n.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
    }

    /// A response to `question` (type A when `v6` is false, else AAAA) with `answers`,
    /// uncompressed, with the query's `id`.
    pub fn response(id: u16, question: &str, v6: bool, answers: &[Rr]) -> Vec<u8> {
        response_of_type(id, question, if v6 { 28 } else { 1 }, answers)
    }

    /// A response to a question of type `qtype` (12: PTR).
    pub fn response_of_type(id: u16, question: &str, qtype: u16, answers: &[Rr]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&0x8180u16.to_be_bytes()); // response, recursion desired and available
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        name(&mut m, question);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        for rr in answers {
            let (owner, rtype, ttl, rdata) = match rr {
                Rr::Addr(o, IpAddr::V4(a), t) => (*o, 1u16, *t, a.octets().to_vec()),
                Rr::Addr(o, IpAddr::V6(a), t) => (*o, 28u16, *t, a.octets().to_vec()),
                Rr::Cname(o, target, t) => {
                    let mut r = Vec::new();
                    name(&mut r, target);
                    (*o, 5u16, *t, r)
                }
                Rr::Ptr(o, target, t) => {
                    let mut r = Vec::new();
                    name(&mut r, target);
                    (*o, 12u16, *t, r)
                }
            };
            name(&mut m, owner);
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&1u16.to_be_bytes());
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(&rdata);
        }
        m
    }

    /// A query for `question` (A or AAAA), as a stub resolver sends it.
    pub fn query(id: u16, question: &str, v6: bool) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&0x0100u16.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        name(&mut m, question);
        m.extend_from_slice(&(if v6 { 28u16 } else { 1 }).to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::build::{response, Rr};
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn follows_a_cname_chain_to_the_question() {
        let m = response(
            7,
            "WWW.Example.com.",
            false,
            &[
                Rr::Cname("www.example.com", "edge.cdn.example.net", 300),
                Rr::Cname("edge.cdn.example.net", "e1.cdn.example.net", 60),
                Rr::Addr("e1.cdn.example.net", v4("192.0.2.1"), 120),
                Rr::Addr("e1.cdn.example.net", v4("192.0.2.2"), 20),
                Rr::Addr("other.example.org", v4("198.51.100.1"), 5),
            ],
        );
        let a = parse_answer(&m).expect("parses");
        assert_eq!(a.question, "www.example.com");
        assert!(!a.cut);
        assert_eq!(
            a.resolved,
            vec![
                Resolved { addr: v4("192.0.2.1"), name: "www.example.com".into(), ttl: 60 },
                Resolved { addr: v4("192.0.2.2"), name: "www.example.com".into(), ttl: 20 },
                Resolved { addr: v4("198.51.100.1"), name: "other.example.org".into(), ttl: 5 },
            ]
        );
    }

    #[test]
    fn reads_compressed_names_and_aaaa() {
        // Question at 12; the answer's owner is a pointer to it (0xC00C).
        let mut m = response(1, "a.example", true, &[]);
        m[7] = 1;
        m.extend_from_slice(&[0xC0, 12, 0, 28, 0, 1, 0, 0, 0, 9, 0, 16]);
        m.extend_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>().expect("v6").octets());
        let a = parse_answer(&m).expect("parses");
        assert_eq!(a.resolved, vec![Resolved { addr: "2001:db8::1".parse().expect("v6"), name: "a.example".into(), ttl: 9 }]);
    }

    #[test]
    fn refuses_loops_forward_pointers_and_queries() {
        let q = super::build::query(1, "x.example", false);
        assert_eq!(parse_answer(&q), Err(DnsError::NotResponse));
        let mut m = response(1, "x", false, &[]);
        // The question's name is replaced by a pointer to itself.
        m.truncate(12);
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_answer(&m), Err(DnsError::BadPointer(12)));
        let mut m = response(1, "x", false, &[]);
        m.truncate(12);
        m.extend_from_slice(&[0x40, 0]);
        assert_eq!(parse_answer(&m), Err(DnsError::BadLabel(12)));
        assert_eq!(parse_answer(&[0; 5]), Err(DnsError::Short(5)));
    }

    #[test]
    fn a_cut_message_keeps_the_records_before_the_cut() {
        let m = response(
            1,
            "x.example",
            false,
            &[Rr::Addr("x.example", v4("192.0.2.1"), 5), Rr::Addr("x.example", v4("192.0.2.2"), 5)],
        );
        let a = parse_answer(&m[..m.len() - 2]).expect("parses");
        assert!(a.cut);
        assert_eq!(a.resolved.len(), 1);
    }

    #[test]
    fn names_longer_than_255_bytes_are_refused() {
        let long = ["a".repeat(63).as_str(); 5].join(".");
        let m = response(1, &long, false, &[]);
        assert_eq!(parse_answer(&m), Err(DnsError::NameTooLong(12)));
    }

    #[test]
    fn tcp_segments_hold_length_prefixed_messages() {
        let m1 = response(1, "one.example", false, &[Rr::Addr("one.example", v4("192.0.2.1"), 5)]);
        let m2 = response(2, "two.example", false, &[Rr::Addr("two.example", v4("192.0.2.2"), 5)]);
        let mut seg = Vec::new();
        for m in [&m1, &m2] {
            seg.extend_from_slice(&(m.len() as u16).to_be_bytes());
            seg.extend_from_slice(m);
        }
        let a = parse_tcp_segment(&seg).expect("parses");
        assert_eq!(a.answers.iter().map(|a| a.question.as_str()).collect::<Vec<_>>(), ["one.example", "two.example"]);
        assert_eq!(a.next_message_at, seg.len());
        // A message that continues past the segment says where the next one starts.
        let a = parse_tcp_segment(&seg[..seg.len() - 3]).expect("parses");
        assert_eq!((a.answers.len(), a.next_message_at), (2, seg.len()));
        // A continuation segment does not start with a message.
        assert!(parse_tcp_segment(&m1[20..]).is_err());
    }
}
