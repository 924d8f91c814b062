//! The small sections: `[desktop]`, `[virustotal]`, `[data]` and `[dash]`.
use crate::{absolute_or_empty, KeyError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[desktop]`: who gets notifications, and as whom files the service cannot read are
/// hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DesktopConfig {
    /// The desktop user (name or uid) whose session receives notifications, and who
    /// hashes the executables only that user can read (the user-hasher role); empty
    /// means none. Never root.
    pub user: String,
    /// picosnitch 2.x's "Desktop notifications".
    pub notifications: bool,
    /// Notifications of one kind shown at once before the rate limit holds the rest.
    pub notification_burst: u32,
    /// After a burst, one more notification of that kind every this many seconds; the
    /// ones held back are summed up ("and 12 more") when the next one goes out.
    pub notification_interval_seconds: u32,
    /// The same notification again within this many seconds is dropped.
    pub notification_dedup_seconds: u32,
    /// Seconds the desktop user's hasher may take for one file before it is recorded
    /// unhashed (`!hash-timeout`).
    pub hash_timeout_seconds: u32,
}

impl Default for DesktopConfig {
    fn default() -> Self {
        Self {
            user: String::new(),
            notifications: true,
            notification_burst: 5,
            notification_interval_seconds: 10,
            notification_dedup_seconds: 3600,
            hash_timeout_seconds: 10,
        }
    }
}

impl DesktopConfig {
    pub(crate) fn check(&self) -> Result<(), KeyError> {
        if self.user == "root" || self.user == "0" {
            return Err((
                "user".into(),
                "notifications are never sent as root; name the desktop user who should see them".into(),
            ));
        }
        if self.notification_burst == 0 {
            return Err(("notification_burst".into(), "must be at least 1".into()));
        }
        if !(1..=86_400).contains(&self.notification_interval_seconds) {
            return Err(("notification_interval_seconds".into(), "must be from 1 to 86400".into()));
        }
        if !(1..=3600).contains(&self.hash_timeout_seconds) {
            return Err(("hash_timeout_seconds".into(), "must be from 1 to 3600".into()));
        }
        Ok(())
    }
}

/// `[virustotal]`: optional hash lookups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VirusTotalConfig {
    /// picosnitch 2.x's inline key; prefer `api_key_file`.
    pub api_key: String,
    /// File holding the API key; keeps it out of the config and the Nix store.
    pub api_key_file: PathBuf,
    /// Upload files VirusTotal does not know (off: only hashes are sent).
    pub file_upload: bool,
    /// Seconds between requests (the public API allows 4 per minute).
    pub request_limit_seconds: u32,
    /// The API's base URL (tests point it at a local server). Always https.
    pub api_url: String,
    /// PEM file of the one CA to trust for `api_url` instead of the built-in Mozilla
    /// roots (a TLS-inspecting proxy's CA, or a test CA). Empty: the built-in roots.
    pub ca_file: PathBuf,
    /// Files larger than this many MiB are not uploaded (1..=32, VirusTotal's limit
    /// for a simple upload).
    pub upload_max_mib: u32,
}

impl Default for VirusTotalConfig {
    fn default() -> Self {
        Self {
            api_key: String::new(),
            api_key_file: PathBuf::new(),
            file_upload: false,
            request_limit_seconds: 15,
            api_url: "https://www.virustotal.com".into(),
            ca_file: PathBuf::new(),
            upload_max_mib: 32,
        }
    }
}

impl VirusTotalConfig {
    /// Lookups happen only with a key, inline or in a file.
    pub fn enabled(&self) -> bool {
        !self.api_key.is_empty() || !self.api_key_file.as_os_str().is_empty()
    }

    /// The TCP port of `api_url` (what the role may connect to); `check` guarantees it parses.
    pub fn api_port(&self) -> u16 {
        api_url_port(&self.api_url).unwrap_or(443)
    }

    pub(crate) fn check(&self) -> Result<(), KeyError> {
        absolute_or_empty("api_key_file", &self.api_key_file)?;
        absolute_or_empty("ca_file", &self.ca_file)?;
        if self.request_limit_seconds == 0 {
            return Err(("request_limit_seconds".into(), "must be at least 1".into()));
        }
        if !(1..=32).contains(&self.upload_max_mib) {
            return Err(("upload_max_mib".into(), format!("{} must be between 1 and 32 (VirusTotal's limit for an upload)", self.upload_max_mib)));
        }
        if api_url_port(&self.api_url).is_none() {
            return Err((
                "api_url".into(),
                format!("{:?} must be an https URL such as \"https://www.virustotal.com\" (host and optional port, no path)", self.api_url),
            ));
        }
        if !self.api_key.is_empty() && !self.api_key_file.as_os_str().is_empty() {
            return Err(("api_key".into(), "set api_key or api_key_file, not both".into()));
        }
        Ok(())
    }
}

/// The port of `https://host[:port][/]`; `None` for anything else.
fn api_url_port(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("https://")?.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    // [v6]:port, host:port, or host.
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => (h, p.parse().ok()?),
        _ => (rest, 443),
    };
    if host.is_empty() || port == 0 {
        return None;
    }
    Some(port)
}

/// `[data]`: where runtime files live and who may read the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Owner of the database files (picosnitch 2.x key), and the user the roles run as.
    pub owner: String,
    /// Group that may read the database, the status and the live feed.
    pub group: String,
    /// Mode of the database files, octal.
    pub mode: String,
    /// Status file and sockets.
    pub runtime_dir: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            owner: "picosnitch".into(),
            group: "picosnitch".into(),
            mode: "0640".into(),
            runtime_dir: PathBuf::from("/run/picosnitch"),
        }
    }
}

impl DataConfig {
    /// The mode as a number; `check` guarantees it parses.
    pub fn mode_bits(&self) -> u32 {
        u32::from_str_radix(&self.mode, 8).unwrap_or(0o640)
    }

    pub(crate) fn check(&self) -> Result<(), KeyError> {
        crate::absolute("runtime_dir", &self.runtime_dir)?;
        match u32::from_str_radix(&self.mode, 8) {
            Ok(m) if m <= 0o777 && m & 0o600 == 0o600 && m & 0o002 == 0 => Ok(()),
            Ok(_) => Err((
                "mode".into(),
                format!("{:?} must let the owner read and write (0600) and must not be world-writable", self.mode),
            )),
            Err(_) => Err(("mode".into(), format!("{:?} is not an octal mode such as \"0640\"", self.mode))),
        }
    }
}

/// `[dash]`: picosnitch 2.x's web dashboard settings; accepted for compatibility and
/// used by the web UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashConfig {
    pub scroll_zoom: bool,
    /// "" follows the browser, or "light" / "dark".
    pub theme: String,
}

impl Default for DashConfig {
    fn default() -> Self {
        Self { scroll_zoom: true, theme: String::new() }
    }
}
