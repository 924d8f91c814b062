//! picosnitch's configuration: `/etc/picosnitch/config.toml` by default. Every key has
//! a default (see `config.example.toml` at the repository root, kept in sync by a test),
//! unknown keys are refused, and a bad file is reported with file:line:column.
mod error;
mod ignore;

pub use error::ConfigError;
pub use ignore::LogIgnore;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// sysexits.h EX_CONFIG: what a binary exits with when its configuration is invalid.
pub const EX_CONFIG: i32 = 78;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// SQLite history. Default "/var/lib/picosnitch/snitch.db".
    pub db_path: PathBuf,
    /// Status file and live feed socket. Default "/run/picosnitch".
    pub runtime_dir: PathBuf,
    /// Rows older than this many days are pruned; 0 keeps everything. Default 30.
    pub retention_days: u32,
    /// Rows aggregate over this many seconds before they are written. Default 10.
    pub write_limit_seconds: u32,
    /// Record local and remote addresses. Default true.
    pub log_addresses: bool,
    /// Record command lines. Default true.
    pub log_commands: bool,
    /// Record local and remote ports. Default true.
    pub log_ports: bool,
    /// Also record executions that make no connection. Default false.
    pub every_exe: bool,
    /// Size of the kernel-to-monitor ring buffer in bytes, a power of two. Default 4194304.
    pub ring_buffer_bytes: u32,
    /// Flows the kernel tracks at once before it falls back to per-event counts. Default 65536.
    pub flow_map_entries: u32,
    /// Rows the writer keeps in memory while the database cannot be written. Default 100000.
    pub writer_queue_limit: u32,
    /// Mask applied to device numbers when checking an executable's identity: "auto"
    /// detects filesystems that reuse inodes across subvolumes (btrfs) and uses 0 there.
    pub st_dev_mask: StDevMask,
    /// Connections that are not recorded.
    pub log_ignore: LogIgnore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StDevMask {
    #[default]
    Auto,
    Value(u32),
}

impl Serialize for StDevMask {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StDevMask::Auto => s.serialize_str("auto"),
            StDevMask::Value(v) => s.serialize_u32(*v),
        }
    }
}

impl<'de> Deserialize<'de> for StDevMask {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) if t == "auto" => Ok(StDevMask::Auto),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "st_dev_mask must be \"auto\" or an integer, not {t:?}"
            ))),
            Raw::Number(n) => u32::try_from(n)
                .map(StDevMask::Value)
                .map_err(|_| serde::de::Error::custom(format!("st_dev_mask {n} is out of range 0..=4294967295"))),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            db_path: PathBuf::from("/var/lib/picosnitch/snitch.db"),
            runtime_dir: PathBuf::from("/run/picosnitch"),
            retention_days: 30,
            write_limit_seconds: 10,
            log_addresses: true,
            log_commands: true,
            log_ports: true,
            every_exe: false,
            ring_buffer_bytes: 4 << 20,
            flow_map_entries: 65536,
            writer_queue_limit: 100_000,
            st_dev_mask: StDevMask::Auto,
            log_ignore: LogIgnore::default(),
        }
    }
}

impl Config {
    /// Parses and checks `text`; `origin` names the file in errors.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::syntax(origin, text, &e))?;
        config.check(origin)?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::from_toml_str(&text, path)
    }

    /// The daemon's rule: a missing file at the default path means all defaults, a
    /// missing file that was named explicitly is an error.
    pub fn load_or_default(path: &Path, explicitly_given: bool) -> Result<Config, ConfigError> {
        if !explicitly_given && !path.exists() {
            return Ok(Config::default());
        }
        Self::load(path)
    }

    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks what types cannot: ranges and formats.
    pub fn check(&self, origin: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid { path: origin.to_path_buf(), key: key.into(), message };
        if !(1..=3600).contains(&self.write_limit_seconds) {
            return Err(invalid("write_limit_seconds", format!("{} is out of range; allowed 1..=3600", self.write_limit_seconds)));
        }
        let rb = self.ring_buffer_bytes;
        if !rb.is_power_of_two() || !(64 << 10..=1 << 30).contains(&rb) {
            return Err(invalid(
                "ring_buffer_bytes",
                format!("{rb} must be a power of two between 65536 (64 KiB) and 1073741824 (1 GiB)"),
            ));
        }
        if !(1024..=4 << 20).contains(&self.flow_map_entries) {
            return Err(invalid("flow_map_entries", format!("{} is out of range; allowed 1024..=4194304", self.flow_map_entries)));
        }
        if self.writer_queue_limit == 0 {
            return Err(invalid("writer_queue_limit", "must be at least 1".into()));
        }
        for (key, p) in [("db_path", &self.db_path), ("runtime_dir", &self.runtime_dir)] {
            if !p.is_absolute() {
                return Err(invalid(key, format!("{} must be an absolute path", p.display())));
            }
        }
        self.log_ignore.check().map_err(|(key, message)| invalid(&format!("log_ignore.{key}"), message))
    }
}

#[cfg(test)]
mod tests;
