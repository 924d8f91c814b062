//! `[monitoring]`: what the kernel side captures and how much memory it may use.
use crate::KeyError;
use serde::{Deserialize, Serialize};

/// Which kernel hooks to use; `auto` probes the running kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookSetChoice {
    #[default]
    Auto,
    /// `sock:sock_send_length`/`sock_recv_length` tracepoints (Linux >= 6.4).
    Tracepoint,
    /// fexit on sock_sendmsg/sock_recvmsg (BPF trampolines; Linux >= 5.12 for the
    /// socket cookies the other hooks join on).
    Fentry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// Also record executions that make no network connection.
    pub every_exe: bool,
    /// picosnitch 2.x looks up the country of remote addresses for its web UI; this
    /// implementation has no GeoIP database yet, so the key is accepted and has no effect.
    pub geoip_lookup: bool,
    /// Size of the kernel-to-monitor ring buffer in 4 KiB pages, a power of two.
    pub perf_ring_buffer_pages: u32,
    /// Raise RLIMIT_NOFILE of the daemon to this (0 leaves it alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimit_nofile: Option<u64>,
    /// Mask for device numbers when checking that an opened executable is the one the
    /// kernel saw. Absent: auto (0 on btrfs, whose st_dev is per subvolume; all ones
    /// elsewhere). 0 compares inodes only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub st_dev_mask: Option<u32>,
    /// Flows the kernel tracks at once; beyond it each send/receive travels as its own
    /// event (counted as `flow_map_full`).
    pub flow_map_entries: u32,
    /// Which kernel hooks to use.
    pub hook_set: HookSetChoice,
    /// Addresses whose DNS name is remembered at once, over all network namespaces
    /// (each for its TTL, at least a minute); the least recently used go first.
    pub domain_cache_entries: u32,
    /// Ask the resolver for the name of remote addresses that no DNS answer or TLS
    /// ClientHello named (PTR lookups). Off by default: each lookup tells the resolver
    /// an address the machine talks to.
    pub reverse_dns: bool,
    /// The resolver asked, `address` or `address:port` (`[v6]:port`); empty: the first
    /// `nameserver` of /etc/resolv.conf, port 53.
    pub reverse_dns_resolver: String,
    /// How long one lookup may take before it counts as timed out.
    pub reverse_dns_timeout_ms: u32,
    /// Lookups sent per second at most (a burst of new addresses waits its turn).
    pub reverse_dns_per_second: u32,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            every_exe: false,
            geoip_lookup: true,
            perf_ring_buffer_pages: 256,
            rlimit_nofile: None,
            st_dev_mask: None,
            flow_map_entries: 65536,
            hook_set: HookSetChoice::Auto,
            domain_cache_entries: 16384,
            reverse_dns: false,
            reverse_dns_resolver: String::new(),
            reverse_dns_timeout_ms: 2000,
            reverse_dns_per_second: 20,
        }
    }
}

impl MonitoringConfig {
    /// The ring buffer size in bytes.
    pub fn ring_buffer_bytes(&self) -> u32 {
        self.perf_ring_buffer_pages.saturating_mul(4096)
    }

    /// `reverse_dns_resolver` as a socket address; None when empty (use resolv.conf).
    pub fn reverse_dns_resolver_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        parse_resolver(&self.reverse_dns_resolver)
    }

    pub(crate) fn check(&self) -> Result<(), KeyError> {
        if let Err(e) = self.reverse_dns_resolver_addr() {
            return Err(("reverse_dns_resolver".into(), e));
        }
        if !(1..=1000).contains(&self.reverse_dns_per_second) {
            return Err((
                "reverse_dns_per_second".into(),
                format!("{} is out of range; allowed 1..=1000", self.reverse_dns_per_second),
            ));
        }
        if !(100..=30_000).contains(&self.reverse_dns_timeout_ms) {
            return Err((
                "reverse_dns_timeout_ms".into(),
                format!("{} is out of range; allowed 100..=30000", self.reverse_dns_timeout_ms),
            ));
        }
        let p = self.perf_ring_buffer_pages;
        if !p.is_power_of_two() || !(16..=262_144).contains(&p) {
            return Err((
                "perf_ring_buffer_pages".into(),
                format!("{p} must be a power of two from 16 (64 KiB) to 262144 (1 GiB)"),
            ));
        }
        if !(1024..=4 << 20).contains(&self.flow_map_entries) {
            return Err((
                "flow_map_entries".into(),
                format!("{} is out of range; allowed 1024..=4194304", self.flow_map_entries),
            ));
        }
        if !(256..=1 << 20).contains(&self.domain_cache_entries) {
            return Err((
                "domain_cache_entries".into(),
                format!("{} is out of range; allowed 256..=1048576", self.domain_cache_entries),
            ));
        }
        if let Some(n) = self.rlimit_nofile {
            if !(64..=1 << 20).contains(&n) {
                return Err(("rlimit_nofile".into(), format!("{n} is out of range; allowed 64..=1048576")));
            }
        }
        Ok(())
    }
}

/// `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53`, `[2001:db8::53]:5353`; empty: None.
pub fn parse_resolver(text: &str) -> Result<Option<std::net::SocketAddr>, String> {
    use std::net::{IpAddr, SocketAddr};
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(Some(SocketAddr::new(ip, 53)));
    }
    match t.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Ok(Some(a)),
        _ => Err(format!(
            "{text:?} is not a resolver address; write an IP address, optionally with a port (\"192.0.2.53\", \"192.0.2.53:5353\", \"[2001:db8::53]:53\"), or leave it empty for /etc/resolv.conf"
        )),
    }
}
