//! `picosnitch webui` as a user starts it: the real binary, on the test daemon's
//! configuration, started by root and told to become `nobody` (with the daemon's
//! service group, which may read the history and the live feed), on a free port.
use super::{Daemon, DAEMON};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged account the web UI becomes in the tests: every Debian system has it.
pub const WEBUI_USER: &str = "nobody";

pub struct WebUiProcess {
    child: Option<Child>,
    pub log_path: PathBuf,
    pub port: u16,
}

impl WebUiProcess {
    /// Starts it and waits (30 s at most) for the line that names its address.
    pub fn start(d: &Daemon, env: &[(&str, &str)]) -> WebUiProcess {
        Self::start_args(d, &[], env)
    }

    pub fn start_args(d: &Daemon, args: &[&str], env: &[(&str, &str)]) -> WebUiProcess {
        Self::start_config(&d.config, d.dir.path(), args, env)
    }

    /// Starts it on the configuration `config`; its log goes into `dir`.
    pub fn start_config(config: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> WebUiProcess {
        let mut w = Self::spawn_config(config, dir, args, env);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = w.log();
            if let Some(url) = log.lines().find(|l| l.contains("serving the web UI")).and_then(|l| l.split("url=").nth(1)) {
                let port = url.split(':').nth(2).and_then(|p| p.split(|c: char| !c.is_ascii_digit()).next()).and_then(|p| p.parse().ok());
                w.port = port.unwrap_or_else(|| panic!("no port in {url:?}"));
                return w;
            }
            if let Some(code) = w.exited() {
                panic!("picosnitch webui ended ({code:?}) before serving; its log:\n{log}");
            }
            if Instant::now() > deadline {
                panic!("picosnitch webui did not serve within 30 s; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it without waiting (for a process expected to end).
    pub fn spawn(d: &Daemon, args: &[&str], env: &[(&str, &str)]) -> WebUiProcess {
        Self::spawn_config(&d.config, d.dir.path(), args, env)
    }

    pub fn spawn_config(config: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> WebUiProcess {
        let log_path = dir.join(format!("webui-{}.log", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.as_nanos()).unwrap_or(0)));
        let log = std::fs::File::create(&log_path).expect("webui log file");
        let mut command = Command::new(DAEMON);
        // SAFETY: prctl is async-signal-safe; the web UI goes when the test does.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .arg("webui")
            .arg("--config")
            .arg(config)
            .args(["--port", "0", "--user", WEBUI_USER])
            .args(args)
            .env("PICOSNITCH_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting picosnitch webui");
        WebUiProcess { child: Some(child), log_path, port: 0 }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The exit code (or 128 + signal) once it has ended.
    pub fn exited(&mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let st = self.child.as_mut()?.try_wait().ok()??;
        st.code().or(st.signal().map(|s| 128 + s))
    }

    /// Waits (bounded) for it to end.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(code) = self.exited() {
                return code;
            }
            if Instant::now() > deadline {
                panic!("picosnitch webui still runs after {timeout:?}; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until its log has a line with every one of `parts`.
    pub fn wait_log(&self, parts: &[&str], timeout: Duration) -> String {
        super::wait_log_line("web UI", || self.log(), parts, timeout)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// GET `path`; (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to the web UI");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port).expect("request");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer to {path}: {text:?}"));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {head:?}"));
        (status, body.to_string())
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"))
    }
}

impl Drop for WebUiProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            super::terminate(&mut child, Duration::from_secs(10));
        }
    }
}
