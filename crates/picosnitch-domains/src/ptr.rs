//! Reverse DNS: the PTR query for an address (RFC 1035 3.5, RFC 3596 2.5) and the
//! reading of its reply. The reply comes from the network, so it is parsed by the same
//! bounded parser as the answers the kernel copies (`dns::parse_answer`), then checked
//! against the query: same id, a response to exactly the name asked, not truncated.
use crate::dns::{self, DnsError, Pointer, TYPE_PTR};
use std::net::IpAddr;

const CLASS_IN: u16 = 1;
/// The header's TC bit: the server cut the reply to fit UDP.
const FLAG_TRUNCATED: u16 = 0x0200;
/// NXDOMAIN: no name at all for this address.
pub const RCODE_NXDOMAIN: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PtrError {
    #[error("reply does not parse: {0}")]
    Dns(#[from] DnsError),
    #[error("reply to another query (id {got:#06x}, expected {expected:#06x})")]
    OtherId { got: u16, expected: u16 },
    #[error("reply about {got:?}, not {expected:?}")]
    OtherQuestion { got: String, expected: String },
    #[error("reply truncated by the server (TC bit): too long for UDP")]
    Truncated,
    #[error("the resolver failed (response code {0})")]
    Failed(u8),
}

/// What the resolver said about an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PtrReply {
    /// The first name the PTR records give (an address may have several; one is kept).
    Named(Pointer),
    /// No PTR record (NXDOMAIN, or an empty answer).
    NoName,
}

/// `1.2.0.192.in-addr.arpa` for 192.0.2.1; nibbles of `ip6.arpa` for IPv6.
pub fn reverse_name(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(72);
            for b in a.octets().iter().rev() {
                s.push(char::from_digit(u32::from(b & 0xF), 16).unwrap_or('0'));
                s.push('.');
                s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
                s.push('.');
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// A PTR query for `addr` with recursion desired, as a stub resolver sends it.
pub fn query(id: u16, addr: IpAddr) -> Vec<u8> {
    let name = reverse_name(addr);
    let mut m = Vec::with_capacity(12 + name.len() + 6);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // standard query, recursion desired
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&TYPE_PTR.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    m
}

/// The id a reply carries, to find its query (None: shorter than an id).
pub fn reply_id(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.first()?, *msg.get(1)?]))
}

/// Reads the reply to `query(id, addr)`.
pub fn parse_reply(msg: &[u8], id: u16, addr: IpAddr) -> Result<PtrReply, PtrError> {
    let answer = dns::parse_answer(msg)?;
    let got = reply_id(msg).unwrap_or(0);
    if got != id {
        return Err(PtrError::OtherId { got, expected: id });
    }
    let expected = reverse_name(addr);
    if answer.question != expected {
        return Err(PtrError::OtherQuestion { got: answer.question, expected });
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & FLAG_TRUNCATED != 0 && answer.pointers.is_empty() {
        return Err(PtrError::Truncated);
    }
    match (answer.rcode, answer.pointers.into_iter().next()) {
        (0, Some(p)) => Ok(PtrReply::Named(p)),
        (0 | RCODE_NXDOMAIN, None) => Ok(PtrReply::NoName),
        (rcode, _) => Err(PtrError::Failed(rcode)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::build::{response_of_type, Rr};

    fn a(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn reverse_names_of_both_families() {
        assert_eq!(reverse_name(a("192.0.2.1")), "1.2.0.192.in-addr.arpa");
        assert_eq!(
            reverse_name(a("2001:db8::567:89ab")),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn the_query_parses_as_a_query_of_the_reverse_name() {
        let q = query(0x1234, a("192.0.2.1"));
        assert_eq!(dns::parse_answer(&q), Err(DnsError::NotResponse));
        // The same bytes with the response bit set read back the question.
        let mut r = q.clone();
        r[2] |= 0x80;
        assert_eq!(dns::parse_answer(&r).expect("parses").question, "1.2.0.192.in-addr.arpa");
        assert_eq!(parse_reply(&r, 0x1234, a("192.0.2.1")), Ok(PtrReply::NoName));
    }

    #[test]
    fn a_ptr_answer_names_the_address_through_a_cname() {
        let q = "1.2.0.192.in-addr.arpa";
        let direct = response_of_type(7, q, 12, &[Rr::Ptr(q, "Host.Example.", 300)]);
        assert_eq!(parse_reply(&direct, 7, a("192.0.2.1")), Ok(PtrReply::Named(Pointer { name: "host.example".into(), ttl: 300 })));
        // RFC 2317: the address's name is a CNAME into the delegated zone.
        let delegated = response_of_type(
            8,
            q,
            12,
            &[Rr::Cname(q, "1.0-127.2.0.192.in-addr.arpa", 60), Rr::Ptr("1.0-127.2.0.192.in-addr.arpa", "small.example", 600)],
        );
        assert_eq!(parse_reply(&delegated, 8, a("192.0.2.1")), Ok(PtrReply::Named(Pointer { name: "small.example".into(), ttl: 60 })));
        // A PTR for some other name is not this address's name.
        let stray = response_of_type(9, q, 12, &[Rr::Ptr("2.2.0.192.in-addr.arpa", "other.example", 60)]);
        assert_eq!(parse_reply(&stray, 9, a("192.0.2.1")), Ok(PtrReply::NoName));
    }

    #[test]
    fn replies_to_other_queries_and_failures_are_refused() {
        let q = "1.2.0.192.in-addr.arpa";
        let r = response_of_type(7, q, 12, &[Rr::Ptr(q, "host.example", 300)]);
        assert_eq!(parse_reply(&r, 8, a("192.0.2.1")), Err(PtrError::OtherId { got: 7, expected: 8 }));
        assert!(matches!(parse_reply(&r, 7, a("192.0.2.2")), Err(PtrError::OtherQuestion { .. })));
        let mut servfail = response_of_type(7, q, 12, &[]);
        servfail[3] = (servfail[3] & 0xF0) | 2;
        assert_eq!(parse_reply(&servfail, 7, a("192.0.2.1")), Err(PtrError::Failed(2)));
        let mut nx = response_of_type(7, q, 12, &[]);
        nx[3] = (nx[3] & 0xF0) | RCODE_NXDOMAIN;
        assert_eq!(parse_reply(&nx, 7, a("192.0.2.1")), Ok(PtrReply::NoName));
        let mut tc = response_of_type(7, q, 12, &[]);
        tc[2] |= 0x02;
        assert_eq!(parse_reply(&tc, 7, a("192.0.2.1")), Err(PtrError::Truncated));
        assert!(matches!(parse_reply(&r[..5], 7, a("192.0.2.1")), Err(PtrError::Dns(_))));
    }
}
