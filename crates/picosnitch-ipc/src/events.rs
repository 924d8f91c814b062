//! Monitor -> primary: what the kernel saw, one batch of events per message.
//!
//! The monitor turns the kernel's records into flows: it announces each flow once with
//! the identity of the process that made it, then sends byte deltas, then the close.
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// An executable file as the kernel names it: device in the kernel's encoding
/// (major << 20 | minor) and inode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u32,
    pub ino: u64,
}

impl FileId {
    pub fn is_none(&self) -> bool {
        self.ino == 0
    }
}

/// Who did it, captured by the kernel in the task's own context at the time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub tgid: u32,
    pub pid: u32,
    pub ppid: u32,
    pub gppid: u32,
    pub uid: u32,
    pub netns: u32,
    pub exe: FileId,
    pub pexe: FileId,
    pub gpexe: FileId,
    pub comm: String,
}

/// Which side started the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The process connected or sent first.
    Out,
    /// The process accepted a connection or received first.
    In,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecInfo {
    pub task: TaskInfo,
    /// Absolute path as the kernel resolved it at exec, in the process's mount namespace.
    pub path: String,
    pub argv: Vec<String>,
    pub path_truncated: bool,
    pub argv_truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowOpen {
    /// Names the flow in later events; unique within one monitor process.
    pub flow: u64,
    /// Unix time in nanoseconds when the kernel first saw it.
    pub unix_ns: i64,
    pub task: TaskInfo,
    /// AF_INET, AF_INET6 or AF_PACKET.
    pub family: u16,
    /// IPPROTO_* for inet sockets; the ethertype for AF_PACKET.
    pub protocol: u16,
    /// SOCK_STREAM, SOCK_DGRAM, SOCK_RAW.
    pub sock_type: u16,
    pub laddr: Option<IpAddr>,
    pub lport: u16,
    pub raddr: Option<IpAddr>,
    pub rport: u16,
    pub direction: Direction,
    /// The kernel's socket cookie: joins the flow to the TLS server name its socket sent.
    pub cookie: u64,
}

/// What a captured packet was, for the primary's parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamePacketKind {
    /// One DNS message in a UDP datagram from port 53.
    DnsUdp,
    /// A TCP segment from port 53 (length-prefixed DNS messages).
    DnsTcp,
    /// The first payload a TCP socket sent: a TLS ClientHello.
    TlsHello,
}

/// Bytes of a packet from which a domain may be learnt, copied by the kernel side and
/// not parsed before they reach the primary (which parses them inside its sandbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamePacket {
    pub kind: NamePacketKind,
    /// Network namespace inode of the socket; 0 when unknown.
    pub netns: u32,
    pub cookie: u64,
    /// Payload length on the wire; more than `data.len()` when the copy was cut.
    pub wire_len: u32,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KernelEvent {
    Exec(Box<ExecInfo>),
    FlowOpen(Box<FlowOpen>),
    /// Payload bytes and packets moved since the previous event for this flow.
    FlowBytes { flow: u64, send: u64, recv: u64, send_packets: u64, recv_packets: u64 },
    /// The socket is gone; no more bytes will come for this flow.
    FlowClose { flow: u64 },
    /// One descriptor attached: a fanotify group (notification class) the monitor
    /// created while it could, for the primary to mark the executables it hashes and
    /// learn when one is written to. Sent first on every new link.
    ExeWatch,
    /// A DNS answer or a TLS ClientHello, in the order the kernel saw it relative to
    /// the flows announced after it.
    NamePacket(Box<NamePacket>),
}

/// One message on the monitor -> primary link.
pub type EventBatch = Vec<KernelEvent>;
