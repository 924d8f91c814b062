//! The daemon's TOML configuration: every key has a default, unknown keys are refused.
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// SQLite history.
    pub db_path: PathBuf,
    /// Rows older than this are pruned.
    pub retention_days: u32,
    /// Rows aggregate over this many seconds.
    pub write_limit_seconds: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            db_path: PathBuf::from("/var/lib/picosnitch/snitch.db"),
            retention_days: 30,
            write_limit_seconds: 10,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Parse(String),
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("").expect("empty is valid"), Config::default());
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = Config::from_toml("retention_dayz = 3").expect_err("typo must fail");
        assert!(err.to_string().contains("retention_dayz"), "{err}");
    }
}
