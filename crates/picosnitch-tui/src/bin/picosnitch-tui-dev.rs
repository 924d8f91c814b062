//! A small driver for trying `top` and `tui` by hand and in the tmux test, until the
//! `picosnitch` CLI wires them in:
//!
//!     picosnitch-tui-dev top [--socket PATH] [--config FILE]
//!     picosnitch-tui-dev tui [--db PATH] [--socket PATH] [--config FILE]
//!     picosnitch-tui-dev demo-feed --socket PATH [--per-second N]
//!     picosnitch-tui-dev panic-demo
//!
//! `demo-feed` serves made-up flow updates through the real feed hub. `panic-demo`
//! takes the terminal as the UIs do and panics, to show (and test) that the terminal
//! comes back in order. Unlike `picosnitch top` and `picosnitch tui`, this driver
//! runs unconfined: it is a development tool that installs nothing.
use picosnitch_feed::{Direction, FeedLimits, FeedServer, FlowUpdate, SocketAccess, UpdateKind, FORMAT_VERSION};
use picosnitch_tui::{TopOptions, TuiOptions};
use std::path::PathBuf;
use std::time::Duration;

struct Args {
    command: String,
    db: Option<PathBuf>,
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    per_second: u32,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("usage: picosnitch-tui-dev top|tui|demo-feed [--db PATH] [--socket PATH] [--config FILE]")?;
    let mut a = Args { command, db: None, socket: None, config: None, per_second: 20 };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--db" => a.db = Some(value()?.into()),
            "--socket" => a.socket = Some(value()?.into()),
            "--config" => a.config = Some(value()?.into()),
            "--per-second" => a.per_second = value()?.parse().map_err(|e| format!("--per-second: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn demo_feed(socket: PathBuf, per_second: u32) -> Result<(), String> {
    let (server, hub) = FeedServer::bind(&socket, SocketAccess::default(), FeedLimits::default()).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        if let Err(e) = server.run_blocking() {
            eprintln!("demo feed: {e}");
        }
    });
    let programs = [("/usr/bin/firefox", "firefox", "example.com", 443u16), ("/usr/bin/curl", "curl", "api.github.com", 443), ("/usr/sbin/ntpd", "ntpd", "pool.ntp.org", 123)];
    let mut flow = 0u64;
    loop {
        flow += 1;
        let (exe, name, domain, rport) = programs[(flow % 3) as usize];
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        hub.publish(&FlowUpdate {
            v: FORMAT_VERSION,
            kind: if flow % 4 == 1 { UpdateKind::Open } else { UpdateKind::Bytes },
            flow: flow / 4,
            time: now,
            pid: 1000 + (flow % 3) as u32,
            uid: 1000,
            exe: exe.into(),
            name: name.into(),
            cmdline: exe.into(),
            sha256: "ab".repeat(32),
            family: 2,
            protocol: if rport == 123 { 17 } else { 6 },
            laddr: "192.168.1.42".into(),
            lport: 40_000 + (flow % 1000) as u16,
            raddr: "93.184.216.34".into(),
            rport,
            domain: domain.into(),
            direction: Some(Direction::Out),
            send: flow % 700,
            recv: flow % 9000,
            ..Default::default()
        });
        std::thread::sleep(Duration::from_secs_f64(1.0 / f64::from(per_second.max(1))));
    }
}

fn panic_demo() -> Result<(), String> {
    let mut guard = picosnitch_tui::terminal::TerminalGuard::enter().map_err(|e| e.to_string())?;
    guard
        .terminal
        .draw(|f| f.render_widget(ratatui::widgets::Paragraph::new("picosnitch-tui-dev: about to panic"), f.area()))
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(300));
    panic!("panic-demo: a deliberate panic inside the UI");
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("picosnitch-tui-dev: {e}");
            std::process::exit(2);
        }
    };
    let config = match &args.config {
        Some(path) => picosnitch_config::Config::load_or_default(path, true),
        None => picosnitch_config::Config::load_or_default(std::path::Path::new(picosnitch_config::DEFAULT_PATH), false),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("picosnitch-tui-dev: {e}");
            std::process::exit(78);
        }
    };
    let result = match args.command.as_str() {
        "top" => {
            let mut o = TopOptions::from_config(&config);
            if let Some(s) = args.socket {
                o.feed_socket = s;
            }
            picosnitch_tui::top::run(o, || Ok(())).map_err(|e| e.to_string())
        }
        "tui" => {
            let mut o = TuiOptions::from_config(&config);
            if let Some(s) = args.socket {
                o.feed_socket = s;
            }
            if let Some(d) = args.db {
                o.database = d;
            }
            picosnitch_tui::tui::run(o, || Ok(())).map_err(|e| e.to_string())
        }
        "panic-demo" => panic_demo(),
        "demo-feed" => match args.socket {
            Some(s) => demo_feed(s, args.per_second),
            None => Err("demo-feed needs --socket PATH".into()),
        },
        other => Err(format!("unknown command {other}; use top, tui or demo-feed")),
    };
    if let Err(e) = result {
        eprintln!("picosnitch-tui-dev: {e}");
        std::process::exit(1);
    }
}
