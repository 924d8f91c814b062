//! The primary's side of VirusTotal: every executable hashed for the first time is
//! queued for the virustotal role (a few at a time, so sending never waits), and each
//! verdict goes to the writer with the rows. A flagged verdict is an event for the
//! desktop notifications ([`Flagged`]).
use super::identity::NewlyHashed;
use picosnitch_ipc::virustotal::{VtReply, VtRequest};
use picosnitch_ipc::Link;
use picosnitch_store::Verdict;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

pub type VtLink = Link<VtRequest, VtReply>;

/// Requests sent and not answered at once: well under the link's queue, and the
/// role answers one per `request_limit_seconds` anyway.
const WINDOW: usize = 4;
/// Executables waiting for their turn. Beyond it new ones are not checked (counted).
const MAX_WAITING: usize = 4096;
/// Descriptors held for uploads at once; beyond it an executable is looked up by hash
/// only (and not uploaded if VirusTotal does not know it).
const MAX_HELD_FDS: usize = 128;
/// Hashes remembered as asked; forgotten all at once beyond it (then asked again).
const MAX_ASKED: usize = 100_000;

/// A verdict that at least one engine calls malicious or suspicious: what the notify
/// role shows ("VirusTotal flags /usr/bin/x: 5/70 malicious").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flagged {
    pub exe: String,
    pub sha256: String,
    pub summary: String,
}

struct Waiting {
    req: VtRequest,
    fd: Option<OwnedFd>,
}

#[derive(Default)]
pub struct VirusTotalQueue {
    enabled: bool,
    upload: bool,
    asked: HashSet<String>,
    waiting: VecDeque<Waiting>,
    /// Sent and unanswered, kept to send again to a restarted role.
    sent: HashMap<String, Waiting>,
    held_fds: usize,
    pub link: Option<(u32, Rc<VtLink>)>,
    /// Verdicts for the writer's next batch.
    pub verdicts: Vec<Verdict>,
    pub not_checked: u64,
}

impl VirusTotalQueue {
    pub fn new(config: &picosnitch_config::VirusTotalConfig) -> Self {
        VirusTotalQueue { enabled: config.enabled(), upload: config.file_upload, ..Default::default() }
    }

    /// An executable's sha256 is known for the first time.
    pub fn hashed(&mut self, new: NewlyHashed) {
        if !self.enabled || new.sha256.starts_with('!') || new.sha256.is_empty() {
            return;
        }
        if self.asked.len() >= MAX_ASKED {
            self.asked.clear();
        }
        if !self.asked.insert(new.sha256.clone()) {
            return;
        }
        if self.waiting.len() >= MAX_WAITING {
            self.not_checked += 1;
            tracing::warn!(exe = %new.exe, "too many executables waiting for VirusTotal; this one is not checked");
            return;
        }
        let fd = if self.upload && self.held_fds < MAX_HELD_FDS { new.fd } else { None };
        self.held_fds += usize::from(fd.is_some());
        self.waiting.push_back(Waiting { req: VtRequest { sha256: new.sha256, exe: new.exe }, fd });
    }

    /// The history already has verdicts for these: they are not asked about again.
    pub fn already_checked(&mut self, hashes: Vec<String>) {
        if self.enabled && self.asked.len() + hashes.len() <= MAX_ASKED {
            self.asked.extend(hashes);
        }
    }

    /// A new virustotal role: what the old one had not answered is asked again first.
    pub fn relinked(&mut self) {
        let mut sent: Vec<Waiting> = self.sent.drain().map(|(_, w)| w).collect();
        sent.sort_by(|a, b| a.req.sha256.cmp(&b.req.sha256));
        for w in sent {
            self.waiting.push_front(w);
        }
    }

    /// The role's answer. A flagged verdict is returned for the notifications.
    pub fn answered(&mut self, reply: VtReply) -> Option<Flagged> {
        if let Some(w) = self.sent.remove(&reply.sha256) {
            self.held_fds -= usize::from(w.fd.is_some());
        }
        match reply.result {
            Ok(v) => {
                let flagged = v.flagged().then(|| Flagged { exe: reply.exe, sha256: v.sha256.clone(), summary: v.summary() });
                self.verdicts.push(v);
                flagged
            }
            Err(e) => {
                tracing::warn!(exe = %reply.exe, error = %e, "no VirusTotal verdict for this executable");
                None
            }
        }
    }

    /// Sends what the window allows; on a failed link everything waits for the next.
    pub async fn send(&mut self) {
        while self.sent.len() < WINDOW {
            let Some((_, link)) = &self.link else { return };
            let Some(w) = self.waiting.pop_front() else { return };
            let fds: Vec<_> = w.fd.iter().map(AsFd::as_fd).collect();
            if let Err(e) = link.send_with_fds(&w.req, &fds).await {
                tracing::warn!(error = %e, "virustotal link failed; requests wait for its restart");
                self.waiting.push_front(w);
                self.link = None;
                self.relinked();
                return;
            }
            self.sent.insert(w.req.sha256.clone(), w);
        }
    }
}

/// What happens when VirusTotal flags an executable. Today: an error in the log (the
/// journal). The desktop notification is sent from here once the notify role exists.
pub fn on_flagged(f: &Flagged) {
    tracing::error!(exe = %f.exe, sha256 = %f.sha256, verdict = %f.summary, "VirusTotal flags an executable that used the network");
}
