//! Primary <-> opener: "open the executable process `pid` runs, if it is the file the
//! kernel reported", and the answer, with the descriptor attached when it was opened.
//!
//! Both messages have a fixed size and a fixed little-endian layout, so the opener (which
//! holds CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, and no Landlock) parses nothing with
//! a variable length: a message of any other size is refused whole. Over postcard they
//! travel as byte arrays, which postcard writes as they are (no length prefix).
use serde::{Deserialize, Serialize};

/// One executable to open through `/proc/<pid>/exe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "[u8; OpenRequest::LEN]", try_from = "[u8; OpenRequest::LEN]")]
pub struct OpenRequest {
    pub id: u64,
    pub pid: u32,
    /// The binary's device as the kernel reported it (`major << 20 | minor`).
    pub dev: u32,
    pub ino: u64,
    /// Which device bits to compare (0 on btrfs, whose st_dev is per subvolume).
    pub dev_mask: u32,
}

/// What the opener did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Opened, and its (device, inode) is the kernel's: the descriptor is attached.
    Opened,
    /// The process no longer exists.
    Gone,
    /// The process runs another file now (it exec'd again, or the pid was reused).
    Mismatch,
    /// `/proc/<pid>/exe` could not be opened; `errno` says why.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "[u8; OpenReply::LEN]", try_from = "[u8; OpenReply::LEN]")]
pub struct OpenReply {
    pub id: u64,
    pub outcome: Outcome,
    /// The error number of a failure (0 otherwise).
    pub errno: i32,
}

/// A message that is not one of the above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadMessage {
    #[error("an open request or reply of {got} bytes, expected {expected}")]
    Length { got: usize, expected: usize },
    #[error("an open reply with the unknown outcome {0}")]
    Outcome(u32),
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

impl OpenRequest {
    pub const LEN: usize = 28;

    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..12].copy_from_slice(&self.pid.to_le_bytes());
        b[12..16].copy_from_slice(&self.dev.to_le_bytes());
        b[16..24].copy_from_slice(&self.ino.to_le_bytes());
        b[24..28].copy_from_slice(&self.dev_mask.to_le_bytes());
        b
    }

    /// Exactly [`Self::LEN`] bytes, or refused.
    pub fn parse(b: &[u8]) -> Result<Self, BadMessage> {
        if b.len() != Self::LEN {
            return Err(BadMessage::Length { got: b.len(), expected: Self::LEN });
        }
        Ok(OpenRequest { id: u64_at(b, 0), pid: u32_at(b, 8), dev: u32_at(b, 12), ino: u64_at(b, 16), dev_mask: u32_at(b, 24) })
    }
}

impl From<OpenRequest> for [u8; OpenRequest::LEN] {
    fn from(r: OpenRequest) -> Self {
        r.to_bytes()
    }
}

impl TryFrom<[u8; OpenRequest::LEN]> for OpenRequest {
    type Error = BadMessage;
    fn try_from(b: [u8; OpenRequest::LEN]) -> Result<Self, BadMessage> {
        OpenRequest::parse(&b)
    }
}

impl OpenReply {
    pub const LEN: usize = 16;

    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let outcome: u32 = match self.outcome {
            Outcome::Opened => 0,
            Outcome::Gone => 1,
            Outcome::Mismatch => 2,
            Outcome::Failed => 3,
        };
        let mut b = [0u8; Self::LEN];
        b[0..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..12].copy_from_slice(&outcome.to_le_bytes());
        b[12..16].copy_from_slice(&self.errno.to_le_bytes());
        b
    }

    pub fn parse(b: &[u8]) -> Result<Self, BadMessage> {
        if b.len() != Self::LEN {
            return Err(BadMessage::Length { got: b.len(), expected: Self::LEN });
        }
        let outcome = match u32_at(b, 8) {
            0 => Outcome::Opened,
            1 => Outcome::Gone,
            2 => Outcome::Mismatch,
            3 => Outcome::Failed,
            other => return Err(BadMessage::Outcome(other)),
        };
        Ok(OpenReply { id: u64_at(b, 0), outcome, errno: u32_at(b, 12) as i32 })
    }
}

impl From<OpenReply> for [u8; OpenReply::LEN] {
    fn from(r: OpenReply) -> Self {
        r.to_bytes()
    }
}

impl TryFrom<[u8; OpenReply::LEN]> for OpenReply {
    type Error = BadMessage;
    fn try_from(b: [u8; OpenReply::LEN]) -> Result<Self, BadMessage> {
        OpenReply::parse(&b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip_at_their_fixed_size() {
        let req = OpenRequest { id: 7, pid: 4242, dev: (8 << 20) | 1, ino: u64::MAX - 3, dev_mask: u32::MAX };
        let wire = crate::link::encode(&req).expect("encode");
        assert_eq!(wire.len(), OpenRequest::LEN, "postcard writes the array as it is");
        assert_eq!(OpenRequest::parse(&wire), Ok(req));
        assert_eq!(postcard::from_bytes::<OpenRequest>(&wire).expect("decode"), req);
        let reply = OpenReply { id: 7, outcome: Outcome::Failed, errno: 13 };
        let wire = crate::link::encode(&reply).expect("encode");
        assert_eq!(wire.len(), OpenReply::LEN);
        assert_eq!(postcard::from_bytes::<OpenReply>(&wire).expect("decode"), reply);
    }

    #[test]
    fn any_other_size_or_outcome_is_refused() {
        let req = OpenRequest { id: 1, pid: 2, dev: 3, ino: 4, dev_mask: 5 }.to_bytes();
        assert_eq!(OpenRequest::parse(&req[..27]), Err(BadMessage::Length { got: 27, expected: 28 }));
        let mut long = req.to_vec();
        long.push(0);
        assert!(OpenRequest::parse(&long).is_err());
        assert!(OpenRequest::parse(&[]).is_err());
        let mut reply = OpenReply { id: 1, outcome: Outcome::Opened, errno: 0 }.to_bytes();
        reply[8] = 9;
        assert_eq!(OpenReply::parse(&reply), Err(BadMessage::Outcome(9)));
    }
}
