//! `[log_ignore]`: connections that are not recorded, matched the way picosnitch users
//! expect (domains by suffix on label boundaries, addresses by CIDR).
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogIgnore {
    /// Local or remote ports.
    pub ports: Vec<u16>,
    /// Domains; "example.com" also ignores "www.example.com" but not "badexample.com".
    pub domains: Vec<String>,
    /// Remote address ranges, e.g. "10.0.0.0/8" or "fe80::/10".
    pub cidrs: Vec<IpNet>,
    /// Executables by sha256 (64 lowercase hex digits).
    pub sha256: Vec<String>,
    /// Executables by absolute path.
    pub exes: Vec<PathBuf>,
}

impl LogIgnore {
    pub fn matches_port(&self, port: u16) -> bool {
        port != 0 && self.ports.contains(&port)
    }

    pub fn matches_domain(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|d| {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            !d.is_empty() && (domain == d || domain.ends_with(&format!(".{d}")))
        })
    }

    pub fn matches_addr(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        self.cidrs.iter().any(|net| net.contains(&addr))
    }

    pub fn matches_sha256(&self, sha: &str) -> bool {
        self.sha256.iter().any(|s| s == sha)
    }

    pub fn matches_exe(&self, exe: &Path) -> bool {
        self.exes.iter().any(|e| e == exe)
    }

    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        for s in &self.sha256 {
            if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(("sha256", format!("{s:?} is not a sha256: 64 lowercase hex digits expected")));
            }
        }
        for e in &self.exes {
            if !e.is_absolute() {
                return Err(("exes", format!("{} must be an absolute path", e.display())));
            }
        }
        Ok(())
    }
}
