//! Shared fixtures: a small history, live updates, and a driver that runs an app's
//! queries synchronously and renders it to a test backend.
#![allow(dead_code)]
use jiff::tz::TimeZone;
use picosnitch_feed::{Direction, FlowUpdate, UpdateKind, FORMAT_VERSION};
use picosnitch_store::{ConnectionRecord, ExeRecord, Store};
use picosnitch_tui::event_loop::{App, Effect, Msg};
use picosnitch_tui::format::UserNames;
use picosnitch_tui::history::worker::{HistoryReply, RunFailure, StoreSource};
use picosnitch_tui::keys::Key;
use picosnitch_tui::live::source::FeedEvent;
use picosnitch_tui::tui::{TuiApp, TuiOptions};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sunday 2026-11-22 10:37:15 UTC.
pub const NOW: i64 = 1_795_343_835;

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\nsystemd-resolve:x:102:102::/:/usr/sbin/nologin\n";

pub fn exe(path: &str, name: &str, cmdline: &str, sha: &str) -> ExeRecord {
    ExeRecord { exe: path.into(), name: name.into(), cmdline: cmdline.into(), sha256: sha.into() }
}

fn bash() -> ExeRecord {
    exe("/usr/bin/bash", "bash", "/bin/bash", "5f3c0b1e9a7d2c4e6f8a0b2d4c6e8f0a1b3d5f7e9c1a3e5b7d9f1c3e5a7b9d1f")
}

fn systemd() -> ExeRecord {
    exe("/usr/lib/systemd/systemd", "systemd", "/sbin/init splash", "7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c")
}

#[allow(clippy::too_many_arguments)]
fn row(ago: i64, e: ExeRecord, p: ExeRecord, g: ExeRecord, uid: i64, proto: i64, lport: i64, raddr: &str, rport: i64, domain: &str, send: i64, recv: i64) -> ConnectionRecord {
    ConnectionRecord {
        contime: NOW - ago,
        send,
        recv,
        events: 1,
        exe: e,
        pexe: p,
        gpexe: g,
        uid,
        family: if raddr.contains(':') { 10 } else { 2 },
        protocol: proto,
        lport,
        rport,
        laddr: if raddr.contains(':') { "2001:db8::42".into() } else { "192.168.1.42".into() },
        raddr: raddr.into(),
        domain: domain.into(),
        netns: 4_026_531_840,
    }
}

/// A week and more of a small desktop: curl and firefox going out, sshd taking a
/// connection, the resolver asking, a replaced wget binary.
pub fn history_rows() -> Vec<ConnectionRecord> {
    let curl = exe("/usr/bin/curl", "curl", "curl -sSL https://example.com", "9f2c3a0e5b1d7c4f8e6a2b0d3c5e7f9a1b3d5f7e9c1a3e5b7d9f1c3e5a7b9d1f");
    let firefox = exe("/usr/lib/firefox/firefox", "firefox", "/usr/lib/firefox/firefox", "1c3e5a7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c");
    let sshd = exe("/usr/sbin/sshd", "sshd", "sshd: /usr/sbin/sshd -D [listener]", "!unreadable");
    let resolved = exe("/usr/lib/systemd/systemd-resolved", "systemd-resolve", "/lib/systemd/systemd-resolved", "3e5b7d9f1c3e5a7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b");
    let wget = exe("/usr/bin/wget", "wget", "wget https://deb.debian.org/debian/dists/stable/Release", "!replaced");
    let none = ExeRecord::default();
    vec![
        row(60, curl.clone(), bash(), systemd(), 1000, 6, 40219, "93.184.216.34", 443, "example.com", 517, 18_233),
        row(5 * 3_600, curl.clone(), bash(), systemd(), 1000, 6, 40377, "93.184.216.34", 443, "example.com", 12_000, 1_400_000),
        row(300, sshd, systemd(), none.clone(), 0, 6, 22, "203.0.113.7", 48201, "", 8_920, 13_422),
        row(30 * 60, resolved.clone(), systemd(), none.clone(), 102, 17, 52391, "1.1.1.1", 53, "github.com", 74, 92),
        row(2 * 86_400, firefox.clone(), bash(), systemd(), 1000, 6, 58122, "140.82.112.3", 443, "github.com", 1_844_000, 48_720_000),
        row(2 * 86_400 + 60, firefox, bash(), systemd(), 1000, 6, 58124, "2606:4700::1111", 443, "", 4_192, 1_228_841),
        row(10 * 86_400, wget, bash(), systemd(), 0, 6, 40288, "199.232.18.132", 443, "deb.debian.org", 822, 482_001),
        row(40 * 86_400, resolved, systemd(), none, 102, 17, 52401, "1.0.0.1", 53, "news.ycombinator.com", 68, 188),
    ]
}

pub fn history_db(dir: &Path) -> PathBuf {
    let path = dir.join("picosnitch.db");
    let (mut store, _) = Store::open(&path).expect("open");
    store.insert_batch(&history_rows()).expect("insert");
    path
}

pub fn update(kind: UpdateKind, flow: u64, ago: f64, exe: &str, name: &str, send: u64, recv: u64) -> FlowUpdate {
    FlowUpdate {
        v: FORMAT_VERSION,
        kind,
        flow,
        time: NOW as f64 - ago,
        pid: 18_000 + flow as u32,
        ppid: 2_301,
        uid: 1000,
        exe: exe.into(),
        name: name.into(),
        cmdline: exe.into(),
        sha256: "ab".repeat(32),
        pname: "bash".into(),
        family: 2,
        protocol: 6,
        laddr: "192.168.1.42".into(),
        lport: 40_000 + flow as u16,
        raddr: "93.184.216.34".into(),
        rport: 443,
        domain: "example.com".into(),
        direction: Some(Direction::Out),
        send,
        recv,
        send_total: send,
        recv_total: recv,
        ..Default::default()
    }
}

/// Live traffic: firefox busy, curl once, sshd accepting on 22, a program starting.
pub fn live_updates() -> Vec<FlowUpdate> {
    let mut sshd = update(UpdateKind::Open, 3, 2.0, "/usr/sbin/sshd", "sshd", 0, 0);
    sshd.direction = Some(Direction::In);
    sshd.lport = 22;
    sshd.raddr = "203.0.113.7".into();
    sshd.rport = 48_201;
    sshd.domain.clear();
    let mut ls = update(UpdateKind::Exec, 0, 1.0, "/usr/bin/ls", "ls", 0, 0);
    ls.cmdline = "ls --color=auto".into();
    ls.direction = None;
    ls.family = 0;
    ls.protocol = 0;
    ls.laddr.clear();
    ls.raddr.clear();
    ls.domain.clear();
    ls.lport = 0;
    ls.rport = 0;
    let mut github = update(UpdateKind::Open, 1, 4.0, "/usr/lib/firefox/firefox", "firefox", 1_844, 0);
    github.domain = "github.com".into();
    github.raddr = "140.82.112.3".into();
    vec![
        github.clone(),
        FlowUpdate { kind: UpdateKind::Bytes, time: NOW as f64 - 3.0, send: 2_000, recv: 1_228_841, ..github.clone() },
        update(UpdateKind::Open, 2, 2.5, "/usr/bin/curl", "curl", 517, 18_233),
        sshd,
        FlowUpdate { kind: UpdateKind::Close, time: NOW as f64 - 1.5, send: 0, recv: 24, ..github },
        ls,
    ]
}

pub fn options(db: &Path) -> TuiOptions {
    TuiOptions { database: db.to_path_buf(), feed_socket: "/run/picosnitch/events.sock".into() }
}

/// A tui app over `db` whose queries run synchronously.
pub struct Driver {
    pub app: TuiApp,
    pub source: StoreSource,
}

impl Driver {
    pub fn new(db: &Path) -> Driver {
        let mut app = TuiApp::new(&options(db), TimeZone::UTC, UserNames::parse(PASSWD), NOW as f64);
        let mut source = StoreSource::new(db.to_path_buf(), TimeZone::UTC);
        let first = app.start();
        settle(&mut app, &mut source, first);
        Driver { app, source }
    }

    pub fn keys(&mut self, keys: &[Key]) {
        for k in keys {
            let effects = self.app.on_key(*k);
            settle(&mut self.app, &mut self.source, effects);
        }
    }

    pub fn feed(&mut self, events: Vec<FeedEvent>) {
        for e in events {
            self.app.on_msg(Msg::Feed(e));
        }
    }

    pub fn tick(&mut self, now: f64) {
        let effects = self.app.on_tick(now);
        settle(&mut self.app, &mut self.source, effects);
    }

    pub fn screen(&mut self, w: u16, h: u16) -> String {
        screen(&mut self.app, w, h)
    }
}

pub fn settle(app: &mut TuiApp, source: &mut StoreSource, effects: Vec<Effect>) {
    for Effect::Query(generation, request) in effects {
        let (result, bounds) = match source.run(&request) {
            Ok(a) => (Ok(a.data), a.bounds),
            Err(RunFailure::Problem(p)) => (Err(p), None),
            Err(RunFailure::Interrupted) => panic!("nothing interrupts a synchronous query"),
        };
        // A fixed time, so the status bar is the same on every machine.
        let reply = HistoryReply { generation, result, elapsed: Duration::from_millis(7), bounds };
        app.on_msg(Msg::History(reply));
    }
}

/// The frame as text, one line per row, trailing spaces removed.
pub fn screen<A: App>(app: &mut A, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    terminal.draw(|f| app.render(f)).expect("draw");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn chars(s: &str) -> Vec<Key> {
    s.chars().map(Key::Char).collect()
}
