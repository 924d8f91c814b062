//! A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` in a temporary
//! directory, the server on a free loopback port, removed again when dropped. It runs
//! as an unprivileged account (initdb refuses root): the `postgres` account the Debian
//! package makes when the tests run as root, else the current user.
//!
//! The server process is ended with the cluster, and also when the thread that started
//! it ends (PR_SET_PDEATHSIG): start and restart it from the test's own thread.
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser the cluster is made with, and its password.
pub const SUPERUSER: &str = "postgres";
const SUPERUSER_PASSWORD: &str = "throwaway-superuser";

pub struct Options {
    /// Serve TLS with a certificate for `localhost` and `127.0.0.1` from a CA made for
    /// this cluster ([`Postgres::ca_file`]).
    pub tls: bool,
}

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    uid: u32,
    gid: u32,
    pub port: u16,
    child: Option<Child>,
}

/// Where the server binaries are: `PICOSNITCH_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout), else `pg_config --bindir`.
pub fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PICOSNITCH_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    Err("the PostgreSQL server is not installed (Debian: apt-get install postgresql; scripts/install-deps.sh does it)".into())
}

/// The account to run the server as.
fn account() -> Result<(u32, u32), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // SAFETY: as above.
        return Ok(unsafe { (libc::geteuid(), libc::getegid()) });
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: getpwnam with a NUL-terminated name; the result is read at once, on
        // this thread, before any other passwd call.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if !pw.is_null() {
            // SAFETY: a non-null passwd entry from getpwnam.
            return Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) });
        }
    }
    Err("running as root and there is neither a postgres nor a nobody account to run PostgreSQL as".into())
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", path.display()))
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl Postgres {
    /// Makes the cluster and starts the server.
    pub fn start(options: Options) -> Result<Postgres, String> {
        let bin = binaries()?;
        let (uid, gid) = account()?;
        let dir = tempfile::Builder::new().prefix("picosnitch-pg-").tempdir().map_err(|e| e.to_string())?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        let sockets = dir.path().join("sockets");
        for d in [&data, &sockets] {
            std::fs::create_dir(d).map_err(|e| e.to_string())?;
            chown(d, uid, gid)?;
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        let pwfile = dir.path().join("superuser-password");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD).map_err(|e| e.to_string())?;
        chown(&pwfile, uid, gid)?;
        let out = Command::new(bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .uid(uid)
            .gid(gid)
            .current_dir(dir.path())
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
        }
        let _ = std::fs::remove_file(&pwfile);
        let mut conf = String::from("listen_addresses = '127.0.0.1'\nmax_connections = 20\nshared_buffers = 32MB\n");
        conf.push_str(&format!("unix_socket_directories = '{}'\n", sockets.display()));
        if options.tls {
            let (ca, cert, key) = certificates()?;
            std::fs::write(dir.path().join("ca.pem"), ca).map_err(|e| e.to_string())?;
            for (name, text) in [("server.crt", cert), ("server.key", key)] {
                let p = data.join(name);
                std::fs::write(&p, text).map_err(|e| e.to_string())?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
                chown(&p, uid, gid)?;
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        let conf_path = data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&conf_path).unwrap_or_default();
        text.push_str(&conf);
        std::fs::write(&conf_path, text).map_err(|e| e.to_string())?;
        let mut pg = Postgres { dir, bin, uid, gid, port: 0, child: None };
        // Another process may take the port between finding and binding it: try again.
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port()?;
            match pg.restart() {
                Ok(()) => return Ok(pg),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Starts the server again (after [`Postgres::stop`]) on the same port and data.
    pub fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D").arg(self.dir.path().join("data")).args(["-p", &self.port.to_string()]);
        cmd.uid(self.uid).gid(self.gid).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        // SAFETY: prctl is async-signal-safe; a killed test must not leave a server.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| format!("starting postgres: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.psql("postgres", "SELECT 1").is_ok() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    return Err(format!("postgres exited ({st}) while starting; its log:\n{}", self.log()));
                }
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!("postgres did not accept connections within 60 s; its log:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (fast shutdown: clients are disconnected, the data is kept).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Runs SQL as the superuser in `database`; returns psql's unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        self.psql_with(database, sql, "").map(|t| t.trim_end().to_string())
    }

    /// Every row of a query's answer, each value as text: separated by the ASCII unit
    /// and record separators, so values may hold `|` and newlines.
    pub fn query(&self, database: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
        let text = self.psql_with(database, sql, "\\pset fieldsep '\x1f'\n\\pset recordsep '\x1e'\n")?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        Ok(text.split('\x1e').filter(|r| !r.is_empty()).map(|r| r.split('\x1f').map(str::to_string).collect()).collect())
    }

    /// The script goes in through stdin: a test daemon records psql's command line,
    /// which should not carry the query.
    fn psql_with(&self, database: &str, sql: &str, settings: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", database, "-f", "-"])
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running psql: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(format!("{settings}{sql};\n").as_bytes()).map_err(|e| format!("writing to psql: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| format!("running psql: {e}"))?;
        if !out.status.success() {
            return Err(format!("psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The CA that signed the server's certificate (PEM), when started with TLS.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A directory for the test's own files, removed with the cluster.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA, and a server certificate it signed for localhost and 127.0.0.1 (PEM each,
/// with the server's key).
fn certificates() -> Result<(String, String, String), String> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let e = |e: rcgen::Error| format!("making test certificates: {e}");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "picosnitch test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(e)?).map_err(e)?;
    let key = KeyPair::generate().map_err(e)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).map_err(e)?;
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).map_err(e)?;
    Ok((ca.pem(), cert.pem(), key.serialize_pem()))
}

/// For tests: the cluster, or `None` after printing why it cannot run (a failure
/// instead under CI=true, where everything must run).
pub fn start_or_skip(test: &str, options: Options) -> Option<Postgres> {
    match Postgres::start(options) {
        Ok(pg) => Some(pg),
        Err(why) if std::env::var_os("CI").is_none() && binaries().is_err() => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
        Err(why) => panic!("{test}: cannot start a throwaway PostgreSQL: {why}"),
    }
}
