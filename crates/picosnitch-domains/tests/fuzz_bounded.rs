//! The fuzz targets' properties (src/fuzzing.rs) checked on stable Rust in CI: a
//! bounded, deterministic mutation run from valid seeds (DNS answers with CNAME chains
//! and compression, TCP framing, ClientHellos), plus random bytes. Each parse must not
//! panic, must keep its output bounds, and must not allocate more than a small bound
//! (a counting allocator measures the peak of every call). The cargo-fuzz targets in
//! `fuzz/` explore much further; see the README's Domains section for the runs made.
use picosnitch_domains::dns::build::{response, Rr};
use picosnitch_domains::{fuzzing, parse_answer, parse_tcp_segment, server_name};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes allocated now and the peak since the last reset, on this process.
struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let n = NOW.fetch_add(l.size(), Ordering::Relaxed).wrapping_add(l.size());
        PEAK.fetch_max(n, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: p came from System.alloc with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The most one parse may allocate: 64 addresses with names of up to 1020 bytes, a
/// chain's worth of CNAME names, and the vectors around them.
const PARSE_ALLOC_LIMIT: usize = 512 * 1024;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                let junk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                v.splice(i..i, junk);
            }
            4 if v.len() > 2 => {
                // A length or pointer byte pointing somewhere interesting.
                let i = rng.below(v.len());
                v[i] = [0x00, 0x3F, 0x40, 0xC0, 0xFF, 12][rng.below(6)];
            }
            _ if !v.is_empty() => {
                let (a, b) = (rng.below(v.len()), rng.below(v.len()));
                let chunk = v[a.min(b)..a.max(b)].to_vec();
                let i = rng.below(v.len());
                v.splice(i..i, chunk);
            }
            _ => {}
        }
    }
    v
}

fn seeds() -> Vec<Vec<u8>> {
    let a: IpAddr = "192.0.2.1".parse().expect("v4");
    let aaaa: IpAddr = "2001:db8::1".parse().expect("v6");
    let chain = response(
        1,
        "www.example.com",
        false,
        &[
            Rr::Cname("www.example.com", "cdn.example.net", 60),
            Rr::Cname("cdn.example.net", "e.cdn.example.net", 60),
            Rr::Addr("e.cdn.example.net", a, 30),
            Rr::Addr("e.cdn.example.net", aaaa, 30),
        ],
    );
    // Compressed: the answer's owner points at the question.
    let mut compressed = response(2, "c.example", false, &[]);
    compressed[7] = 2;
    for last in [1u8, 2] {
        compressed.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 192, 0, 2, last]);
    }
    let mut tcp = (chain.len() as u16).to_be_bytes().to_vec();
    tcp.extend_from_slice(&chain);
    tcp.extend_from_slice(&(compressed.len() as u16).to_be_bytes());
    tcp.extend_from_slice(&compressed);
    // Reverse DNS: a PTR through an RFC 2317 CNAME, compressed against the question.
    let q = "1.2.0.192.in-addr.arpa";
    let ptr = picosnitch_domains::dns::build::response_of_type(
        3,
        q,
        12,
        &[Rr::Cname(q, "1.0-63.2.0.192.in-addr.arpa", 60), Rr::Ptr("1.0-63.2.0.192.in-addr.arpa", "host.example", 300)],
    );
    let mut ptr_compressed = picosnitch_domains::dns::build::response_of_type(4, q, 12, &[]);
    ptr_compressed[7] = 1;
    ptr_compressed.extend_from_slice(&[0xC0, 12, 0, 12, 0, 1, 0, 0, 1, 0, 0, 4, 1, b'h', 0xC0, 12]);
    let hello = picosnitch_domains::tls::build::client_hello(Some("www.example.org"), 40);
    let hello_padded = picosnitch_domains::tls::build::client_hello(Some("a.example"), 1200);
    vec![chain, compressed, tcp, hello, hello_padded, ptr, ptr_compressed]
}

fn check_one(input: &[u8]) {
    let base = NOW.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    if let Ok(a) = parse_answer(input) {
        fuzzing::check_answer(&a);
    }
    if let Ok(v) = parse_tcp_segment(input) {
        assert!(v.next_message_at <= input.len() + 65_537);
        v.answers.iter().for_each(fuzzing::check_answer);
    }
    if let Ok(Some(n)) = server_name(input) {
        fuzzing::check_name(&n);
    }
    fuzzing::cache_stays_bounded(input);
    fuzzing::check_ptr_reply(input);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(peak <= PARSE_ALLOC_LIMIT, "parsing {} bytes allocated {peak} at once: {input:?}", input.len());
}

#[test]
fn parsers_keep_their_bounds_on_mutated_packets() {
    // About two seconds in a debug build; set FUZZ_ITERATIONS for a longer run.
    let iterations: usize = std::env::var("FUZZ_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(60_000);
    let seeds = seeds();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for seed in &seeds {
        check_one(seed);
    }
    for i in 0..iterations {
        let input = if i % 10 == 0 {
            (0..rng.below(600)).map(|_| rng.next() as u8).collect()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        check_one(&input);
    }
}

#[test]
fn the_seeds_parse() {
    let s = seeds();
    assert_eq!(parse_answer(&s[0]).expect("chain").resolved.len(), 2);
    assert_eq!(parse_answer(&s[1]).expect("compressed").resolved.len(), 2);
    assert_eq!(parse_tcp_segment(&s[2]).expect("tcp").answers.len(), 2);
    assert_eq!(server_name(&s[4]), Ok(Some("a.example".into())));
    let ptr = |m: &[u8], id| picosnitch_domains::ptr::parse_reply(m, id, "192.0.2.1".parse().expect("v4"));
    assert!(matches!(ptr(&s[5], 3), Ok(picosnitch_domains::ptr::PtrReply::Named(p)) if p.name == "host.example"));
    assert!(matches!(ptr(&s[6], 4), Ok(picosnitch_domains::ptr::PtrReply::Named(p)) if p.name == "h.1.2.0.192.in-addr.arpa"));
}
