//! `[log]`: which fields are recorded, and which connections are not recorded at all,
//! matched the way picosnitch users expect (domains by suffix on label boundaries,
//! addresses by CIDR).
use crate::KeyError;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Record local and remote addresses.
    pub addresses: bool,
    /// Record command lines.
    pub commands: bool,
    /// Record local and remote ports.
    pub ports: bool,
    /// Connections on these local or remote ports are not recorded.
    pub ignore_ports: Vec<u16>,
    /// Domains not recorded; "example.com" also covers "www.example.com" but not
    /// "badexample.com".
    pub ignore_domains: Vec<String>,
    /// Remote addresses not recorded: single addresses or CIDR ranges.
    pub ignore_ips: Vec<IpNet>,
    /// Executables not recorded, by sha256 (64 lowercase hex digits).
    pub ignore_sha256: Vec<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            addresses: true,
            commands: true,
            ports: true,
            ignore_ports: Vec::new(),
            ignore_domains: Vec::new(),
            ignore_ips: Vec::new(),
            ignore_sha256: Vec::new(),
        }
    }
}

impl LogConfig {
    pub fn ignores_port(&self, port: u16) -> bool {
        port != 0 && self.ignore_ports.contains(&port)
    }

    pub fn ignores_domain(&self, domain: &str) -> bool {
        // Asked for every new flow and every row: no allocation when nothing is ignored.
        if self.ignore_domains.is_empty() || domain.is_empty() {
            return false;
        }
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty() {
            return false;
        }
        self.ignore_domains.iter().any(|d| {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            !d.is_empty()
                && (domain == d
                    || (domain.len() > d.len()
                        && domain.ends_with(d.as_str())
                        && domain.as_bytes()[domain.len() - d.len() - 1] == b'.'))
        })
    }

    pub fn ignores_addr(&self, addr: IpAddr) -> bool {
        // An IPv4 peer reached through an IPv6 socket is written ::ffff:a.b.c.d; an IPv4
        // range should still cover it.
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        self.ignore_ips.iter().any(|net| net.contains(&addr))
    }

    pub fn ignores_sha256(&self, sha: &str) -> bool {
        self.ignore_sha256.iter().any(|s| s == sha)
    }

    pub(crate) fn check(&self) -> Result<(), KeyError> {
        for s in &self.ignore_sha256 {
            if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err((
                    "ignore_sha256".into(),
                    format!("{s:?} is not a sha256: 64 lowercase hex digits expected"),
                ));
            }
        }
        for d in &self.ignore_domains {
            if d.trim_end_matches('.').is_empty() || d.contains(char::is_whitespace) {
                return Err(("ignore_domains".into(), format!("{d:?} is not a domain name")));
            }
        }
        Ok(())
    }
}
