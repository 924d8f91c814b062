//! Properties every parse must keep, whatever the input: shared by the cargo-fuzz
//! targets (`fuzz/`) and the bounded mutation run in `tests/fuzz_bounded.rs` that CI
//! runs on stable Rust. They panic when a property breaks: that is the finding.
use crate::dns::{DnsAnswer, MAX_ADDRESSES, MAX_POINTERS};
use crate::name::MAX_NAME_TEXT;
use crate::NameCache;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A name is short, and printable ASCII without spaces (so no terminal escapes).
pub fn check_name(name: &str) {
    assert!(name.len() <= MAX_NAME_TEXT, "name of {} bytes", name.len());
    assert!(name.bytes().all(|b| b.is_ascii_graphic()), "unprintable name {name:?}");
    assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "name not lowercased {name:?}");
}

pub fn check_answer(a: &DnsAnswer) {
    check_name(&a.question);
    assert!(a.resolved.len() <= MAX_ADDRESSES, "{} addresses", a.resolved.len());
    for r in &a.resolved {
        check_name(&r.name);
    }
    assert!(a.pointers.len() <= MAX_POINTERS, "{} PTR names", a.pointers.len());
    for p in &a.pointers {
        check_name(&p.name);
    }
}

/// A reverse DNS reply, read as the reply to the query (with the reply's own id) for
/// 192.0.2.1 and for 2001:db8::1: never a panic, and a name it gives is a printable one.
pub fn check_ptr_reply(data: &[u8]) {
    let id = crate::ptr::reply_id(data).unwrap_or(0);
    for addr in [IpAddr::from([192, 0, 2, 1]), IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])] {
        if let Ok(crate::ptr::PtrReply::Named(p)) = crate::ptr::parse_reply(data, id, addr) {
            check_name(&p.name);
        }
    }
}

/// Feeds the answers in `data` (as a TCP stream of DNS messages, and as one message)
/// into a cache of 16 entries and 256 bytes, with time moving by the input's bytes.
pub fn cache_stays_bounded(data: &[u8]) {
    let mut cache = NameCache::new(16, 256);
    let t0 = Instant::now();
    let mut answers = crate::parse_tcp_segment(data).map(|s| s.answers).unwrap_or_default();
    answers.extend(crate::parse_answer(data).ok());
    for (i, a) in answers.iter().enumerate() {
        let now = t0 + Duration::from_secs(u64::from(data.get(i).copied().unwrap_or(0)) * 10);
        for r in &a.resolved {
            let netns = u32::from(data.first().copied().unwrap_or(0) & 3);
            cache.insert(netns, r.addr, r.name.as_str().into(), r.ttl, now);
            assert!(cache.len() <= 16 && cache.bytes() <= 256, "cache grew to {} entries, {} bytes", cache.len(), cache.bytes());
            if let Some(n) = cache.lookup(netns, r.addr, now) {
                check_name(&n);
            }
        }
    }
    let _ = cache.lookup(0, IpAddr::from([0, 0, 0, 0]), t0);
}
