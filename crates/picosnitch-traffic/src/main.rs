//! `picosnitch-traffic`: makes one kind of network traffic and prints, as one JSON line,
//! the bytes it sent and received itself (what the application wrote and read). Tests
//! and benchmarks run a copy of it under a name unique to the trial and compare what
//! picosnitch recorded for that executable with this ground truth.
mod ip_raw;
mod names;
mod pace;
mod packet;
mod report;
mod rr;
mod tcp;
mod udp;
mod uring;
mod zerocopy;

use clap::{Parser, Subcommand};
use pace::{Pace, PaceArgs};
use std::net::{IpAddr, SocketAddr};

#[derive(Parser)]
#[command(name = "picosnitch-traffic", about = "Makes one kind of traffic and reports its own byte counts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Accept connections; read each to EOF, answer with --send bytes. Prints the port first.
    TcpServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        #[arg(long, default_value_t = 1)]
        accepts: usize,
        #[arg(long, default_value_t = 0)]
        send: usize,
        /// Paces each answer.
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// Connect, send --send bytes, half-close, read the answer to EOF.
    TcpClient {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long, default_value_t = 0)]
        send: usize,
        /// How: plain write/read, io_uring send/recv, sendfile+read, or splice both ways.
        #[arg(long, value_enum, default_value_t = Io::Plain)]
        io: Io,
        /// Connections to make one after the other.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Paces the connections at this many per second (default: as fast as possible).
        #[arg(long)]
        rate: Option<f64>,
        /// Stops making new connections after this long, even before --repeat.
        #[arg(long)]
        for_ms: Option<u64>,
        /// Paces the bytes within each connection.
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// Receive --count datagrams and answer each with --reply bytes. Prints the port first.
    UdpServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        reply: usize,
        /// Receive with recvmmsg, this many per call.
        #[arg(long)]
        mmsg: Option<usize>,
        /// Waits --every-ms between answers (a burst of answers can overflow the
        /// client's receive buffer).
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// Send --count datagrams of --size bytes; read --replies answers.
    UdpClient {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        size: usize,
        /// connect() first, then send(); otherwise sendto() each datagram.
        #[arg(long)]
        connected: bool,
        /// With --connected: connect() to this address first, moving nothing (repeat
        /// for several), as getaddrinfo does to pick a source address.
        #[arg(long = "probe", requires = "connected")]
        probes: Vec<SocketAddr>,
        /// Send with sendmmsg, this many per call.
        #[arg(long)]
        mmsg: Option<usize>,
        #[arg(long, default_value_t = 0)]
        replies: usize,
        /// Waits --every-ms between datagrams (between batches with --mmsg).
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// ICMP echo through a ping socket (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6).
    Ping {
        #[arg(long)]
        to: IpAddr,
        #[arg(long, default_value_t = 3)]
        count: usize,
        #[arg(long, default_value_t = 56)]
        size: usize,
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// ICMP echo through a raw socket.
    RawPing {
        #[arg(long)]
        to: IpAddr,
        #[arg(long, default_value_t = 3)]
        count: usize,
        #[arg(long, default_value_t = 56)]
        size: usize,
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// Raw IP datagrams of another protocol number (253: for experiments, RFC 3692).
    RawIp {
        #[arg(long)]
        to: IpAddr,
        #[arg(long, default_value_t = 253)]
        proto: i32,
        #[arg(long, default_value_t = 3)]
        count: usize,
        #[arg(long, default_value_t = 100)]
        size: usize,
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// A DNS server answering --count queries for any name with the --cname chain,
    /// then --a or --aaaa. Prints the port first.
    DnsServer {
        #[arg(long, default_value = "127.0.0.53:53")]
        bind: SocketAddr,
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Over TCP (length-prefixed) instead of UDP.
        #[arg(long)]
        tcp: bool,
        /// CNAMEs, in order from the question's name.
        #[arg(long)]
        cname: Vec<String>,
        #[arg(long, default_value = "127.0.0.1")]
        a: IpAddr,
        #[arg(long, default_value = "::1")]
        aaaa: IpAddr,
        #[arg(long, default_value_t = 300)]
        ttl: u32,
    },
    /// Resolve --name at --dns, then connect to the answer's address at --port, send
    /// --send bytes and read the answer to EOF.
    ResolveConnect {
        #[arg(long, default_value = "127.0.0.53:53")]
        dns: SocketAddr,
        #[arg(long)]
        name: String,
        /// Ask for AAAA instead of A.
        #[arg(long)]
        v6: bool,
        /// Ask over TCP.
        #[arg(long)]
        tcp_dns: bool,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 0)]
        send: usize,
    },
    /// Connect and send a TLS ClientHello naming --sni, then --send bytes; read to EOF.
    TlsHello {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long)]
        sni: String,
        #[arg(long, default_value_t = 0)]
        send: usize,
        /// Read this many bytes the server sends first, then pause --pause-ms.
        #[arg(long, default_value_t = 0)]
        greeting: usize,
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
    /// Accept --accepts connections; greet each with --greet bytes, read it to EOF.
    /// Prints the port first.
    GreetingServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        #[arg(long, default_value_t = 1)]
        accepts: usize,
        #[arg(long, default_value_t = 10)]
        greet: usize,
    },
    /// Ethernet frames through an AF_PACKET socket.
    Packet {
        #[arg(long, default_value = "lo")]
        ifname: String,
        #[arg(long, default_value_t = 3)]
        count: usize,
        #[arg(long, default_value_t = 100)]
        size: usize,
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// Echo --size byte requests on each connection until the client closes (for rr-client).
    RrServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        #[arg(long, default_value_t = 1)]
        accepts: usize,
        #[arg(long, default_value_t = 64)]
        size: usize,
    },
    /// --count requests of --size bytes on one connection, each waiting for its answer;
    /// reports round-trip percentiles.
    RrClient {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value_t = 64)]
        size: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Io {
    Plain,
    Uring,
    Sendfile,
    Splice,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let start = std::time::Instant::now();
    let result = match cli.command {
        Command::TcpServer { bind, accepts, send, pace } => tcp::server(bind, accepts, send, Pace::new(pace)),
        Command::TcpClient { to, send, io, repeat, rate, for_ms, pace } => {
            let until = for_ms.map(|ms| std::time::Instant::now() + std::time::Duration::from_millis(ms));
            tcp::client(to, send, io, repeat, rate, until, Pace::new(pace))
        }
        Command::UdpServer { bind, count, reply, mmsg, pace } => udp::server(bind, count, reply, mmsg, Pace::new(pace)),
        Command::UdpClient { to, count, size, connected, probes, mmsg, replies, pace } => {
            let addressing = if connected { udp::Addressing::Connected { probes } } else { udp::Addressing::Unconnected };
            udp::client(to, count, size, addressing, mmsg, replies, Pace::new(pace))
        }
        Command::Ping { to, count, size, pace } => ip_raw::ping(to, count, size, false, Pace::new(pace)),
        Command::RawPing { to, count, size, pace } => ip_raw::ping(to, count, size, true, Pace::new(pace)),
        Command::RawIp { to, proto, count, size, pace } => ip_raw::raw_ip(to, proto, count, size, Pace::new(pace)),
        Command::Packet { ifname, count, size, pace } => packet::send(&ifname, count, size, Pace::new(pace)),
        Command::RrServer { bind, accepts, size } => rr::server(bind, accepts, size),
        Command::RrClient { to, count, size } => rr::client(to, count, size),
        Command::DnsServer { bind, count, tcp, cname, a, aaaa, ttl } => names::dns_server(bind, count, tcp, &cname, a, aaaa, ttl),
        Command::ResolveConnect { dns, name, v6, tcp_dns, port, send } => {
            names::resolve_connect(dns, &name, v6, tcp_dns, port, send)
        }
        Command::TlsHello { to, sni, send, greeting, pause_ms } => names::tls_hello(to, &sni, send, greeting, pause_ms),
        Command::GreetingServer { bind, accepts, greet } => names::greeting_server(bind, accepts, greet),
    }
    .map(|mut r| {
        r.elapsed = start.elapsed();
        r
    });
    match result {
        Ok(r) => {
            r.print();
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("picosnitch-traffic: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
