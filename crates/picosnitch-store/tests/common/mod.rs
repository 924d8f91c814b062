//! Rows for the history tests: deterministic, spread over days, from a few programs.
#![allow(dead_code)] // each test binary uses part of it
use picosnitch_store::*;

/// 2026-11-22 00:00:00 UTC, a midnight.
pub const DAY0: i64 = 1_795_305_600;
pub const H: i64 = 3_600;
pub const D: i64 = 86_400;

pub fn exe(path: &str, sha: &str) -> ExeRecord {
    ExeRecord { exe: path.into(), name: path.rsplit('/').next().unwrap_or("").into(), cmdline: format!("{path} --run"), sha256: sha.into() }
}

pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        // xorshift: deterministic rows without a dependency.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// Rows over `days` days from DAY0, every ~7 minutes, from a handful of programs.
pub fn rows(days: i64, seed: u64) -> Vec<ConnectionRecord> {
    let mut g = Gen(seed);
    let mut out = Vec::new();
    let mut t = DAY0 + 17;
    while t < DAY0 + days * D {
        let path = g.pick(&["/usr/bin/curl", "/usr/bin/firefox", "/usr/lib/firefox/firefox", "/usr/sbin/sshd"]);
        let sha = if path == "/usr/sbin/sshd" { "!unreadable" } else { g.pick(&["aa11", "bb22"]) };
        out.push(ConnectionRecord {
            contime: t,
            send: (g.next() % 5000) as i64,
            recv: (g.next() % 90000) as i64,
            events: (g.next() % 3) as i64,
            exe: exe(path, sha),
            pexe: exe(g.pick(&["/usr/bin/bash", "/usr/lib/systemd/systemd"]), "cc33"),
            gpexe: if g.next().is_multiple_of(2) { ExeRecord::default() } else { exe("/usr/bin/sudo", "dd44") },
            uid: [0, 1000, 1001][(g.next() % 3) as usize],
            family: 2,
            protocol: 6,
            lport: 40_000 + (g.next() % 50) as i64,
            rport: [443, 80, 22][(g.next() % 3) as usize],
            laddr: g.pick(&["10.0.0.2", "192.168.1.5"]).into(),
            raddr: g.pick(&["93.184.216.34", "1.1.1.1", "140.82.112.3", "2606:4700::1111"]).into(),
            domain: g.pick(&["", "example.com", "github.com", "one.one.one.one"]).into(),
            netns: [4026531840, 4026532001][(g.next() % 2) as usize],
        });
        t += 400 + (g.next() % 100) as i64;
    }
    out
}

pub fn fresh() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snitch.db");
    let (store, _) = Store::open(&path).expect("open");
    (dir, path, store)
}

