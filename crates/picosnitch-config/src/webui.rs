//! `[webui]` (new): where `picosnitch webui` listens and who it runs as.
use crate::{absolute_or_empty, KeyError};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebUiConfig {
    /// The loopback address to listen on: 127.0.0.0/8 or ::1. For other machines, put
    /// a reverse proxy in front of `socket`.
    pub address: IpAddr,
    /// TCP port; 0 lets the system pick a free one (it is logged).
    pub port: u16,
    /// A Unix socket to serve on as well, for a reverse proxy; empty: none.
    pub socket: PathBuf,
    /// Mode of `socket`, octal; connecting needs write permission.
    pub socket_mode: String,
    /// The user root becomes to serve (name or uid); empty: started as root, the web UI
    /// refuses to run. Another user keeps its own identity.
    pub user: String,
    /// Host names answered besides the loopback ones (a reverse proxy's public name);
    /// requests naming any other host are refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
}

impl Default for WebUiConfig {
    fn default() -> Self {
        Self {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 5100,
            socket: PathBuf::new(),
            socket_mode: "0660".into(),
            user: String::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

impl WebUiConfig {
    /// The socket's mode as a number; `check` guarantees it parses.
    pub fn socket_mode_bits(&self) -> u32 {
        u32::from_str_radix(&self.socket_mode, 8).unwrap_or(0o660)
    }

    pub(crate) fn check(&self) -> Result<(), KeyError> {
        if !self.address.is_loopback() {
            return Err((
                "address".into(),
                format!("{} is not a loopback address: the web UI serves 127.0.0.1 or ::1 only; for other machines put a reverse proxy in front of `socket`", self.address),
            ));
        }
        absolute_or_empty("socket", &self.socket)?;
        match u32::from_str_radix(&self.socket_mode, 8) {
            Ok(m) if m <= 0o777 && m & 0o600 == 0o600 => {}
            _ => return Err(("socket_mode".into(), format!("{:?} is not an octal mode with owner read and write, such as \"0660\"", self.socket_mode))),
        }
        if self.user == "root" || self.user == "0" {
            return Err(("user".into(), "the web UI never serves as root; name an unprivileged user who may read the history".into()));
        }
        for h in &self.allowed_hosts {
            let ok = !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
            if !ok {
                return Err(("allowed_hosts".into(), format!("{h:?} is not a host name (letters, digits, '.', '-', optionally :port)")));
            }
        }
        Ok(())
    }
}
