//! A tmux server of the test's own driving a real terminal: keys in with send-keys,
//! the screen back with capture-pane. Shared by the TUI crate's tests and the daemon's
//! end-to-end UI tests (included there by path).
#![allow(dead_code)] // each test binary uses a different part
use std::process::Command;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(15);

pub fn tmux_available() -> bool {
    if Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("tmux not installed, and CI=true: the end-to-end terminal tests need it (apt-get install tmux)");
    }
    println!("SKIPPED: tmux not installed");
    false
}

pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// A tmux server of our own (`-L`), so the user's sessions are never touched.
pub struct Tmux {
    server: String,
}

impl Tmux {
    /// Runs `command` (a shell command line) in a `w`x`h` window. The pane stays after
    /// the command exits, so the screen it leaves behind can be checked.
    pub fn start(test: &str, w: u16, h: u16, command: &str) -> Tmux {
        let server = format!("picosnitch-test-{}-{test}", std::process::id());
        let t = Tmux { server };
        let status = Command::new("tmux")
            .args(["-L", &t.server, "-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", &w.to_string(), "-y", &h.to_string()])
            .arg(command)
            .args([";", "set-option", "-t", "main", "remain-on-exit", "on"])
            .env("TZ", "UTC")
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        t
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(["-L", &self.server]).args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", "main", k]);
            // One key at a time, as a person types: the UI redraws between them.
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "main"])
    }

    /// The screen with the lines scrolled above it: when the command exits, tmux's
    /// "Pane is dead" line pushes the first line up.
    pub fn scrollback(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-S", "-", "-t", "main"])
    }

    pub fn wait_for(&self, what: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.screen();
            if what.iter().all(|w| s.contains(w)) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what:?}; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_gone(&self, what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.screen();
            if !s.contains(what) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what:?} to go; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the command line to finish: the program exited and the shell printed
    /// its status and the terminal modes after it. Returns the screen with scrollback.
    /// (tmux's own #{pane_dead_status} is sometimes never filled in.)
    pub fn finished(&self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.scrollback();
            if s.contains("EXIT=") && s.contains("icanon") {
                return s;
            }
            assert!(Instant::now() < deadline, "the program did not exit; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Tmux {
    /// Ends the terminal now (as when an ssh session drops).
    pub fn kill_server(&mut self) {
        self.tmux(&["kill-server"]);
        self.server.clear();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if !self.server.is_empty() {
            let _ = Command::new("tmux").args(["-L", &self.server, "kill-server"]).output();
        }
    }
}

