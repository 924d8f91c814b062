//! The records on the feed: one JSON object per line.
use serde::{Deserialize, Serialize};

/// The format version in every line's `v`. Fields are only ever added within a version;
/// a reader ignores fields it does not know. Removing or changing the meaning of a
/// field, or the framing, makes a new version.
pub const FORMAT_VERSION: u32 = 1;

/// What happened to a flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateKind {
    /// A new flow (connection, or UDP/raw socket talking to a new peer).
    Open,
    /// Bytes moved on a known flow since its previous update.
    Bytes,
    /// The flow ended (socket closed or timed out); carries its last bytes.
    Close,
    /// A program started (only with `[monitoring] every_exe = true`); no network fields.
    Exec,
    /// A kind this reader does not know (a newer daemon); skip it or show it as is.
    #[serde(other)]
    #[default]
    Unknown,
}

/// Who started the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// This process connected or sent first.
    Out,
    /// Accepted or listening side: the peer came to us.
    In,
}

/// One flow update. The identity and address keys keep picosnitch 2.x's names (`exe`,
/// `pname`, `gpcmdline`, `laddr`, `rport`, `send`, ...) so readers of its feed keep
/// working; the rest are additions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowUpdate {
    /// Format version, [`FORMAT_VERSION`].
    pub v: u32,
    pub kind: UpdateKind,
    /// Unique within one daemon run; 0 for `exec`.
    pub flow: u64,
    /// Unix time in seconds, with fraction.
    pub time: f64,
    pub pid: u32,
    pub ppid: u32,
    pub gppid: u32,
    pub uid: u32,
    pub exe: String,
    /// The process name (comm).
    pub name: String,
    pub cmdline: String,
    /// Hex sha256 of the executable, or a reason starting with '!' ("!unreadable",
    /// "!replaced", ...) when it could not be hashed; empty while hashing is pending.
    pub sha256: String,
    pub pexe: String,
    pub pname: String,
    pub pcmdline: String,
    pub psha256: String,
    pub gpexe: String,
    pub gpname: String,
    pub gpcmdline: String,
    pub gpsha256: String,
    /// AF_INET 2, AF_INET6 10, AF_PACKET 17; 0 for `exec`.
    pub family: u16,
    /// IPPROTO_*: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...
    pub protocol: u16,
    pub laddr: String,
    /// 0 when the protocol has no ports or it is not logged.
    pub lport: u16,
    pub raddr: String,
    pub rport: u16,
    /// The name the remote address was looked up as; may be empty.
    pub domain: String,
    /// Network namespace inode.
    pub netns: u64,
    /// `None` for `exec`.
    pub direction: Option<Direction>,
    /// Payload bytes since this flow's previous update.
    pub send: u64,
    pub recv: u64,
    /// Payload bytes since the flow opened.
    pub send_total: u64,
    pub recv_total: u64,
}

impl FlowUpdate {
    /// The line as sent: compact JSON and a newline.
    pub fn to_line(&self) -> Vec<u8> {
        // Serializing plain strings and numbers cannot fail; an empty object keeps the
        // framing intact if it ever did.
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        line
    }
}

/// The one line a refused subscriber gets before the socket closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedNotice {
    pub v: u32,
    /// Always "error".
    pub kind: String,
    pub error: String,
}

impl FeedNotice {
    pub fn error(message: impl Into<String>) -> FeedNotice {
        FeedNotice { v: FORMAT_VERSION, kind: "error".into(), error: message.into() }
    }

    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        line
    }
}
