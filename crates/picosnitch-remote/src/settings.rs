//! Everything the role needs to log in, gathered before it confines itself: the
//! password and CA files are read as root at start and never opened again.
use crate::error::RemoteError;
use crate::schema::Tables;
use crate::tls::Tls;
use picosnitch_config::RemoteConfig;

#[derive(Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub password: Option<String>,
    pub tables: Tables,
    pub tls: Tls,
    /// This machine's name, recorded with each delivered batch.
    pub machine: String,
}

impl Settings {
    pub fn load(config: &RemoteConfig) -> Result<Settings, RemoteError> {
        let password = if config.password_file.as_os_str().is_empty() {
            None
        } else {
            let text = std::fs::read_to_string(&config.password_file).map_err(|source| RemoteError::ReadFile {
                key: "password_file",
                path: config.password_file.clone(),
                source,
            })?;
            // One trailing newline is the editor's, not the password's.
            let p = text.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&text);
            (!p.is_empty()).then(|| p.to_string())
        };
        Ok(Settings {
            host: config.host.clone(),
            port: config.port,
            user: config.user.clone(),
            database: config.database.clone(),
            password,
            tables: Tables::new(&config.table_prefix),
            tls: Tls::load(config.tls, &config.ca_file)?,
            machine: host_name(),
        })
    }

    /// `postgresql://user@host:port/database`, for logs and status (never the password).
    pub fn server(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let prefix = if self.tables.prefix.is_empty() { String::new() } else { format!(" (tables {}*)", self.tables.prefix) };
        format!("postgresql://{}@{host}:{}/{}{prefix}", self.user, self.port, self.database)
    }
}

/// The kernel's host name (uname's nodename).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
