//! Primary (and supervisor) -> notify: what the desktop user should be told. The
//! sender decides *that* something is worth telling; the notify role decides *when*
//! (duplicates dropped, bursts rate-limited).
use serde::{Deserialize, Serialize};

/// Why a notice was raised; the notify role rate-limits each kind on its own, so a
/// burst of new executables never hides a loss of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NoticeKind {
    /// An executable or process name talked to the network for the first time.
    FirstSeen,
    /// A known executable's sha256 changed.
    Sha256Changed,
    /// VirusTotal flags an executable that used the network.
    VirusTotalFlagged,
    /// Events or rows were lost (a counter in `picosnitch status` went up).
    EventsLost,
    /// A role failed.
    Error,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 5] =
        [NoticeKind::FirstSeen, NoticeKind::Sha256Changed, NoticeKind::VirusTotalFlagged, NoticeKind::EventsLost, NoticeKind::Error];

    pub fn name(self) -> &'static str {
        match self {
            NoticeKind::FirstSeen => "first_seen",
            NoticeKind::Sha256Changed => "sha256_changed",
            NoticeKind::VirusTotalFlagged => "virustotal_flagged",
            NoticeKind::EventsLost => "events_lost",
            NoticeKind::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    /// The notification's text, as picosnitch 2.x words it
    /// ("First network connection detected for curl").
    pub text: String,
    /// Detail shown under it (paths, hashes); may be empty.
    pub detail: String,
}

impl Notice {
    /// A notice cut so it always fits a message.
    pub fn new(kind: NoticeKind, text: impl Into<String>, detail: impl Into<String>) -> Notice {
        Notice { kind, text: cut(text.into(), 512), detail: cut(detail.into(), 2048) }
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
