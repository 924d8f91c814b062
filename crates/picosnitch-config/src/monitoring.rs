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
        }
    }
}

impl MonitoringConfig {
    /// The ring buffer size in bytes.
    pub fn ring_buffer_bytes(&self) -> u32 {
        self.perf_ring_buffer_pages.saturating_mul(4096)
    }

    pub(crate) fn check(&self) -> Result<(), KeyError> {
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
