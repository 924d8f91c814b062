//! What the desktop user is told about executables, decided as picosnitch 2.x does:
//! the first network connection of a process name, a new executable for a known name,
//! a new name for a known executable, and a new sha256 for a known executable.
//!
//! Process names are compared with their digits folded (`DNS Resolver #3` is
//! `DNS Resolver #0`), so a program whose threads are numbered is announced once, not
//! once per thread. What the history already holds is known from the start, so a
//! restarted daemon does not announce everything again.
use picosnitch_ipc::notices::{Notice, NoticeKind};
use picosnitch_store::KnownExe;
use std::collections::{HashMap, HashSet};

/// Executables remembered; beyond this, new ones are still announced but not remembered
/// (a second announcement is then possible, never a missed one).
const MAX_EXES: usize = 65_536;
/// Raw (exe, name) pairs already decided, a fast path for the busy case; cleared when full.
const MAX_SEEN: usize = 65_536;

#[derive(Default)]
struct ExeKnown {
    names: HashSet<String>,
    shas: HashSet<String>,
}

#[derive(Default)]
pub struct Sightings {
    exes: HashMap<String, ExeKnown>,
    names: HashSet<String>,
    /// (exe, raw name) pairs already looked at.
    seen: HashMap<String, HashSet<String>>,
    seen_len: usize,
}

/// A process name with every run of digits folded to one `0`.
pub fn fold_digits(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_digits = false;
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('0');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// Hashes that are not hashes (`!unreadable`, ...) or none yet.
fn real_sha(sha: &str) -> bool {
    !sha.is_empty() && !sha.starts_with('!')
}

impl Sightings {
    pub fn new(known: Vec<KnownExe>) -> Sightings {
        let mut s = Sightings::default();
        for k in known {
            if k.exe.is_empty() || s.exes.len() >= MAX_EXES {
                continue;
            }
            let folded = fold_digits(&k.name);
            s.names.insert(folded.clone());
            let e = s.exes.entry(k.exe).or_default();
            e.names.insert(folded);
            if real_sha(&k.sha256) {
                e.shas.insert(k.sha256);
            }
        }
        s
    }

    /// A process `name` running `exe` made a connection.
    pub fn saw_name(&mut self, exe: &str, name: &str) -> Option<Notice> {
        if exe.is_empty() {
            return None;
        }
        if self.seen.get(exe).is_some_and(|names| names.contains(name)) {
            return None;
        }
        if self.seen_len >= MAX_SEEN {
            self.seen.clear();
            self.seen_len = 0;
        }
        self.seen.entry(exe.to_string()).or_default().insert(name.to_string());
        self.seen_len += 1;
        let folded = fold_digits(name);
        let name_known = self.names.contains(&folded);
        let entry = self.exes.get(exe);
        let exe_known = entry.is_some();
        let name_known_for_exe = entry.is_some_and(|e| e.names.contains(&folded));
        if exe_known || self.exes.len() < MAX_EXES {
            self.names.insert(folded.clone());
            self.exes.entry(exe.to_string()).or_default().names.insert(folded);
        }
        match (exe_known, name_known, name_known_for_exe) {
            (false, false, _) => Some(Notice::new(NoticeKind::FirstSeen, format!("First network connection detected for {name}"), exe)),
            (false, true, _) => Some(Notice::new(NoticeKind::FirstSeen, format!("New executable detected for {name}: {exe}"), "")),
            (true, _, false) => Some(Notice::new(NoticeKind::FirstSeen, format!("New name detected for {exe}: {name}"), "")),
            (true, _, true) => None,
        }
    }

    /// `exe` (run as `name`) was hashed to `sha256`.
    pub fn saw_sha256(&mut self, exe: &str, name: &str, sha256: &str) -> Option<Notice> {
        if exe.is_empty() || !real_sha(sha256) {
            return None;
        }
        let e = self.exes.get_mut(exe)?;
        if e.shas.contains(sha256) {
            return None;
        }
        let first = e.shas.is_empty();
        if e.shas.len() >= 64 {
            e.shas.clear(); // a binary rebuilt all day: remember the recent ones
        }
        e.shas.insert(sha256.to_string());
        (!first).then(|| Notice::new(NoticeKind::Sha256Changed, format!("New sha256 detected for {name}: {exe}"), sha256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: Option<Notice>) -> Option<String> {
        n.map(|n| n.text)
    }

    #[test]
    fn as_picosnitch_words_it() {
        let mut s = Sightings::new(Vec::new());
        assert_eq!(text(s.saw_name("/usr/bin/curl", "curl")).as_deref(), Some("First network connection detected for curl"));
        assert_eq!(text(s.saw_name("/usr/bin/curl", "curl")), None);
        assert_eq!(text(s.saw_name("/opt/curl", "curl")).as_deref(), Some("New executable detected for curl: /opt/curl"));
        assert_eq!(text(s.saw_name("/usr/bin/curl", "fetch")).as_deref(), Some("New name detected for /usr/bin/curl: fetch"));
    }

    #[test]
    fn numbered_threads_are_one_name() {
        let mut s = Sightings::new(Vec::new());
        assert!(s.saw_name("/usr/lib/firefox/firefox", "DNS Resolver #1").is_some());
        for i in 2..500 {
            assert_eq!(text(s.saw_name("/usr/lib/firefox/firefox", &format!("DNS Resolver #{i}"))), None, "thread {i}");
        }
        assert_eq!(fold_digits("kworker/u8:12"), "kworker/u0:0");
    }

    #[test]
    fn the_history_is_known_and_a_changed_sha256_is_news() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let mut s = Sightings::new(vec![KnownExe { exe: "/usr/bin/curl".into(), name: "curl".into(), sha256: a.clone() }]);
        assert_eq!(text(s.saw_name("/usr/bin/curl", "curl")), None);
        assert_eq!(text(s.saw_sha256("/usr/bin/curl", "curl", &a)), None);
        assert_eq!(text(s.saw_sha256("/usr/bin/curl", "curl", "!unreadable")), None);
        let n = s.saw_sha256("/usr/bin/curl", "curl", &b).expect("changed");
        assert_eq!(n.text, "New sha256 detected for curl: /usr/bin/curl");
        assert_eq!(n.kind, NoticeKind::Sha256Changed);
        assert_eq!(n.detail, b);
        assert_eq!(text(s.saw_sha256("/usr/bin/curl", "curl", &b)), None);
        // The first hash of a new executable is not a change.
        assert!(s.saw_name("/usr/bin/wget", "wget").is_some());
        assert_eq!(text(s.saw_sha256("/usr/bin/wget", "wget", &a)), None);
    }
}
