//! DNS-rebinding protection: a page on any web site can make the browser send requests
//! to 127.0.0.1 by pointing its own name there, but the browser still names that site
//! in the Host header. Requests are answered only when Host is a loopback name (which
//! no outside DNS can point anywhere) or a name the administrator allowed.
use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct HostCheck {
    /// Lowercase `name` (any port) or `name:port` entries of `[webui] allowed_hosts`.
    allowed: Vec<String>,
}

/// Splits `host[:port]`, `[v6]:port` into the name (brackets kept off) and the port.
fn split(host: &str) -> Option<(String, Option<u16>)> {
    let host = host.trim().to_ascii_lowercase();
    if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((addr.to_string(), port));
    }
    match host.rsplit_once(':') {
        // More than one colon without brackets is not a valid Host.
        Some((name, _)) if name.contains(':') => None,
        Some((name, p)) => Some((name.to_string(), Some(p.parse().ok()?))),
        None => Some((host, None)),
    }
}

impl HostCheck {
    pub fn new(allowed: &[String]) -> HostCheck {
        HostCheck { allowed: allowed.iter().map(|h| h.trim().to_ascii_lowercase()).collect() }
    }

    /// `Ok` when a request naming `host` may be answered; otherwise the reason.
    pub fn check(&self, host: Option<&str>) -> Result<(), String> {
        let Some(raw) = host else {
            return Err("the request has no Host header; the web UI answers only requests naming localhost, 127.0.0.1 or [::1]".into());
        };
        let refused = || {
            format!(
                "the Host header {raw:?} is not a name this web UI answers to: open it as http://127.0.0.1 or http://localhost with its port (this protects against DNS rebinding; a reverse proxy's name goes in [webui] allowed_hosts)"
            )
        };
        let (name, port) = split(raw).ok_or_else(refused)?;
        let name = name.strip_suffix('.').unwrap_or(&name).to_string();
        if name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return Ok(());
        }
        let with_port = port.map(|p| format!("{name}:{p}"));
        if self.allowed.iter().any(|a| *a == name || Some(a) == with_port.as_ref()) {
            return Ok(());
        }
        Err(refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_allowed_names_only() {
        let c = HostCheck::new(&["Snitch.example.org".into(), "proxy.lan:8443".into()]);
        for ok in ["127.0.0.1:5100", "localhost:5100", "LOCALHOST", "localhost.:5100", "[::1]:5100", "[::1]", "127.0.0.2", "snitch.example.org", "snitch.example.org:443", "proxy.lan:8443"] {
            assert_eq!(c.check(Some(ok)), Ok(()), "{ok}");
        }
        for bad in ["evil.example:5100", "127.0.0.1.evil.example", "localhost.evil.example", "192.168.1.2:5100", "[::2]:5100", "proxy.lan", "proxy.lan:80", "::1", "a:b:c", "[::1", "", "x.localhost"] {
            let e = c.check(Some(bad)).expect_err(bad);
            assert!(e.contains("DNS rebinding"), "{e}");
        }
        assert!(c.check(None).expect_err("no host").contains("no Host header"));
    }
}
