//! The domain of a connection, learnt from packets the machine itself handles: DNS
//! answers it receives (`dns`), and, where no answer was seen, the server name a TLS
//! client sends in its ClientHello (`tls`). Both parsers take bytes from any process
//! or any server on the network: they never panic, never allocate more than a small
//! bound per packet, and say why a packet was refused (the caller counts it).
//! `cache` keeps what was learnt per network namespace, bounded by TTL and size.
//! `ptr` builds reverse DNS queries and reads their replies with the same parser.

pub mod cache;
pub mod dns;
#[doc(hidden)]
pub mod fuzzing;
pub mod name;
pub mod ptr;
pub mod tls;

pub use cache::NameCache;
pub use dns::{parse_answer, parse_tcp_segment, DnsAnswer, DnsError, TcpSegment};
pub use tls::{server_name, TlsError};
