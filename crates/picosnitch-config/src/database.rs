//! `[database]`: the local SQLite history, and `[database.remote]`, the INSERT-only copy.
use crate::{absolute, absolute_or_empty, KeyError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Write the local SQLite history.
    pub enabled: bool,
    /// The SQLite file (picosnitch 2.x's fixed location by default).
    pub path: PathBuf,
    /// Rows older than this many days are pruned at start and hourly; 0 keeps all.
    pub retention_days: u32,
    /// Traffic is summed over this many seconds per row before it is written.
    pub write_limit_seconds: u32,
    /// picosnitch 2.x's CSV copy (`conn.log`); not implemented here, so `true` is refused.
    pub text_log: bool,
    /// Rows held in memory while the database cannot be written (disk full, locked);
    /// beyond it rows are dropped and counted.
    pub queue_limit: u32,
    /// The INSERT-only remote copy; absent means none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteConfig>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: PathBuf::from("/var/lib/picosnitch/picosnitch.db"),
            retention_days: 30,
            write_limit_seconds: 10,
            text_log: false,
            queue_limit: 100_000,
            remote: None,
        }
    }
}

impl DatabaseConfig {
    pub(crate) fn check(&self) -> Result<(), KeyError> {
        absolute("path", &self.path)?;
        if !(1..=3600).contains(&self.write_limit_seconds) {
            return Err((
                "write_limit_seconds".into(),
                format!("{} is out of range; allowed 1..=3600", self.write_limit_seconds),
            ));
        }
        if self.text_log {
            return Err((
                "text_log".into(),
                "the CSV text log is not implemented by this picosnitch; remove the key or set it to false (the SQLite history has every field)".into(),
            ));
        }
        if self.queue_limit == 0 {
            return Err(("queue_limit".into(), "must be at least 1".into()));
        }
        if let Some(r) = &self.remote {
            r.check().map_err(|(k, m)| (format!("remote.{k}"), m))?;
            if !self.enabled {
                return Err((
                    "enabled".into(),
                    "the remote copy is fed by the local history's writer: keep enabled = true with [database.remote] (a small retention_days keeps little locally)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Which server `[database.remote]` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteClient {
    Postgresql,
    /// Named so that the refusal can say why (see [`RemoteConfig::check`]).
    Mysql,
    Mariadb,
}

/// How the remote connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// No TLS (only sensible on loopback or a trusted link).
    Disable,
    /// TLS with the server certificate checked against `ca_file` (or the system roots)
    /// and the host name.
    VerifyFull,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteConfig {
    pub client: RemoteClient,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// File holding the password (the NixOS module's passwordFile); keeps it out of
    /// the config and the Nix store.
    pub password_file: PathBuf,
    pub database: String,
    /// Put before each table's name (`laptop_` gives `laptop_connections`, ...), so
    /// several hosts can share one database with tables (and GRANTs) of their own.
    pub table_prefix: String,
    pub tls: TlsMode,
    /// CA bundle for `tls = "verify-full"`; empty uses the system roots.
    pub ca_file: PathBuf,
    /// Bytes the on-disk spool may hold while the remote is unreachable.
    pub spool_limit_bytes: u64,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            client: RemoteClient::Postgresql,
            host: String::new(),
            port: 5432,
            user: "picosnitch".into(),
            password_file: PathBuf::new(),
            database: "picosnitch".into(),
            table_prefix: String::new(),
            tls: TlsMode::VerifyFull,
            ca_file: PathBuf::new(),
            spool_limit_bytes: 256 << 20,
        }
    }
}

impl RemoteConfig {
    fn check(&self) -> Result<(), KeyError> {
        if self.host.is_empty() {
            return Err(("host".into(), "must name the server (a host name or an address)".into()));
        }
        if self.port == 0 {
            return Err(("port".into(), "must be 1..=65535".into()));
        }
        absolute_or_empty("password_file", &self.password_file)?;
        absolute_or_empty("ca_file", &self.ca_file)?;
        if let RemoteClient::Mysql | RemoteClient::Mariadb = self.client {
            return Err((
                "client".into(),
                "MySQL and MariaDB are not supported: no well-kept Rust client for them can work over a connection handed to it by the supervisor, which is how the remote role is confined to the configured host; use \"postgresql\"".into(),
            ));
        }
        let t = &self.table_prefix;
        // The longest table name is the prefix plus "executables" (11), within
        // PostgreSQL's 63-byte identifiers.
        let valid = t.len() <= 40
            && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !t.as_bytes().first().is_some_and(u8::is_ascii_digit);
        if !valid {
            return Err((
                "table_prefix".into(),
                format!("{t:?} must be up to 40 characters of a-z, 0-9 and _, not starting with a digit"),
            ));
        }
        if self.user.is_empty() || self.database.is_empty() {
            return Err((
                if self.user.is_empty() { "user" } else { "database" }.into(),
                "must not be empty".into(),
            ));
        }
        if self.spool_limit_bytes < 1 << 20 {
            return Err(("spool_limit_bytes".into(), "must be at least 1048576 (1 MiB)".into()));
        }
        Ok(())
    }
}
