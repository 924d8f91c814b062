//! A real web UI on a real SQLite file and a real live feed socket, in this process,
//! on a port of its own; and the rows the tests put in the history.
#![allow(dead_code)] // each test binary uses part of it

pub mod client;

use picosnitch_feed::{FeedHub, FeedLimits, FeedServer, SocketAccess};
use picosnitch_store::{ConnectionRecord, ExeRecord, Store};
use picosnitch_webui::api::PageSettings;
use picosnitch_webui::http::{Limits, Listener};
use picosnitch_webui::users::UserNames;
use picosnitch_webui::{Settings, WebUi};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// 2026-11-22 00:00:00 UTC.
pub const DAY0: i64 = 1_795_305_600;

pub fn exe(path: &str) -> ExeRecord {
    let name = path.rsplit('/').next().unwrap_or("").to_string();
    ExeRecord { exe: path.into(), name: name.clone(), cmdline: format!("{name} --go"), sha256: format!("{:0>64}", name.len()) }
}

/// A few programs talking to a few places over four days, with exact sums known.
pub fn rows() -> Vec<ConnectionRecord> {
    let mut out = Vec::new();
    let programs = ["/usr/bin/curl", "/usr/bin/firefox", "/usr/sbin/sshd", "/usr/bin/wget"];
    let places = [("93.184.216.34", "example.com", 443), ("1.1.1.1", "one.one.one.one", 53), ("140.82.112.3", "github.com", 443), ("10.0.0.9", "", 22)];
    for i in 0..400i64 {
        let p = programs[(i % 4) as usize];
        let (raddr, domain, rport) = places[((i / 3 + i / 11) % 4) as usize];
        out.push(ConnectionRecord {
            contime: DAY0 + i * 877,
            send: 100 + i * 7,
            recv: 1_000 + i * 31,
            events: 1 + i % 2,
            exe: exe(p),
            pexe: exe("/usr/bin/bash"),
            gpexe: if i % 5 == 0 { ExeRecord::default() } else { exe("/usr/lib/systemd/systemd") },
            uid: [0, 1000][(i % 2) as usize],
            family: 2,
            protocol: 6,
            lport: 40_000 + i % 7,
            rport,
            laddr: "10.0.0.2".into(),
            raddr: raddr.into(),
            domain: domain.into(),
            netns: 4_026_531_840 + i % 3,
        });
    }
    out
}

pub fn filled_db(dir: &Path) -> PathBuf {
    let path = dir.join("history/picosnitch.db");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let (mut store, _) = Store::open(&path).expect("open");
    store.insert_batch(&rows()).expect("insert");
    path
}

/// The web UI serving `db` and the feed at `socket` on a free port.
pub struct Server {
    pub port: u16,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub fn start(db: &Path, socket: &Path) -> Server {
        Self::start_with(db, socket, Limits::default(), vec![])
    }

    pub fn start_with(db: &Path, socket: &Path, limits: Limits, allowed_hosts: Vec<String>) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let settings = Settings {
            database: db.to_path_buf(),
            feed_socket: socket.to_path_buf(),
            allowed_hosts,
            page: PageSettings { theme: "dark".into(), scroll_zoom: true },
            query_threads: 2,
        };
        let (stop, rx) = async_channel::bounded(1);
        let thread = std::thread::spawn(move || {
            let web = WebUi::start(settings, UserNames::parse("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"));
            picosnitch_webui::run(web, vec![Listener::Tcp(listener)], limits, rx)
        });
        Server { port, stop: Some(stop), thread: Some(thread) }
    }

    pub fn get(&self, path: &str) -> client::Answer {
        client::get(self.port, path)
    }

    /// Polls `path` until `done` holds for its JSON.
    pub fn wait_json(&self, path: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.get(path).json();
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last answer {v:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A live feed served by the feed crate's real server, as the daemon serves it.
pub struct Feed {
    pub hub: FeedHub,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Feed {
    pub fn start(socket: &Path) -> Feed {
        let (server, hub) = FeedServer::bind(socket, SocketAccess::default(), FeedLimits::default()).expect("bind the feed");
        let thread = std::thread::spawn(move || {
            let _ = server.run_blocking();
        });
        Feed { hub, thread: Some(thread) }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.hub.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
