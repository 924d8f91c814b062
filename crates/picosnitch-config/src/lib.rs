//! picosnitch's configuration: `/etc/picosnitch/config.toml` by default.
//!
//! The sections and keys are picosnitch 2.x's (`[database]`, `[log]`, `[desktop]`,
//! `[monitoring]`, `[virustotal]`, `[data]`, `[dash]`), so an existing file keeps
//! working (`[webui]` is new); keys this implementation adds are marked in `config.example.toml`, which a
//! test keeps equal to the defaults. Unknown keys are refused, and a bad file is
//! reported as file:line:column with what is wrong.
mod database;
mod error;
mod log;
mod monitoring;
mod sections;
mod webui;

pub use database::{DatabaseConfig, RemoteClient, RemoteConfig, TlsMode};
pub use error::ConfigError;
pub use log::LogConfig;
pub use monitoring::{parse_resolver, HookSetChoice, MonitoringConfig};
pub use sections::{DashConfig, DataConfig, DesktopConfig, VirusTotalConfig};
pub use webui::WebUiConfig;

use serde::{Deserialize, Serialize};
use std::path::Path;

/// sysexits.h EX_CONFIG: what a binary exits with when its configuration is invalid.
pub const EX_CONFIG: u8 = 78;

/// Where the daemon looks when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/picosnitch/config.toml";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub dash: DashConfig,
    pub data: DataConfig,
    pub log: LogConfig,
    pub desktop: DesktopConfig,
    pub monitoring: MonitoringConfig,
    pub virustotal: VirusTotalConfig,
    pub webui: WebUiConfig,
}

/// A semantic problem: which key, and what is wrong with its value.
pub(crate) type KeyError = (String, String);

impl Config {
    /// Parses and checks `text`; `origin` names the file in errors.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::syntax(origin, text, &e))?;
        config
            .check()
            .map_err(|(key, message)| ConfigError::invalid(origin, text, key, message))?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// The daemon's rule: a missing file at the default path means all defaults; a
    /// missing file that was named explicitly is an error.
    pub fn load_or_default(path: &Path, explicitly_given: bool) -> Result<Config, ConfigError> {
        if !explicitly_given && !path.exists() {
            return Ok(Config::default());
        }
        Self::load(path)
    }

    /// Checks what the types cannot: ranges, formats, combinations.
    pub fn check(&self) -> Result<(), KeyError> {
        let prefix = |section: &'static str| move |(key, msg): KeyError| (format!("{section}.{key}"), msg);
        self.database.check().map_err(prefix("database"))?;
        self.data.check().map_err(prefix("data"))?;
        self.log.check().map_err(prefix("log"))?;
        self.desktop.check().map_err(prefix("desktop"))?;
        self.monitoring.check().map_err(prefix("monitoring"))?;
        self.virustotal.check().map_err(prefix("virustotal"))?;
        self.webui.check().map_err(prefix("webui"))?;
        Ok(())
    }

    /// The file's contents with every key spelled out, as `picosnitch check-config --print` shows.
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

/// Absolute-path check shared by the sections.
pub(crate) fn absolute(key: &str, p: &Path) -> Result<(), KeyError> {
    if p.is_absolute() {
        Ok(())
    } else {
        Err((key.into(), format!("{} must be an absolute path", p.display())))
    }
}

/// An optional path: empty means "not set".
pub(crate) fn absolute_or_empty(key: &str, p: &Path) -> Result<(), KeyError> {
    if p.as_os_str().is_empty() {
        Ok(())
    } else {
        absolute(key, p)
    }
}

#[cfg(test)]
mod tests;
