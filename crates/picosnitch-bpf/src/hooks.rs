//! Which set of kernel hooks this kernel supports, decided from its BTF at start.
use std::fmt;

/// A set of hooks that together see every send and receive with its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookSet {
    /// `sock:sock_send_length`/`sock_recv_length` tracepoints (kernel >= 6.4) as
    /// tp_btf programs plus cgroup socket hooks: needs no kprobes, fentry or BPF LSM.
    TracepointCgroup,
}

impl fmt::Display for HookSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookSet::TracepointCgroup => f.write_str("tracepoint+cgroup"),
        }
    }
}

/// What the probe found and why it chose what it chose, for the log and `status`.
#[derive(Debug, Clone)]
pub struct HookChoice {
    pub hook_set: HookSet,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("reading the kernel's BTF at {path}: {source}; picosnitch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    Btf { path: &'static str, source: std::io::Error },
    #[error("this kernel has no sock:sock_send_length tracepoint (added in Linux 6.4), and the fentry hook set for older kernels is not implemented yet")]
    NoHookSet,
}

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Picks the hook set from the type names present in the kernel's BTF blob.
pub fn choose(vmlinux_btf: &[u8]) -> Result<HookChoice, ProbeError> {
    let has = |name: &str| {
        let mut needle = Vec::with_capacity(name.len() + 2);
        needle.push(0);
        needle.extend_from_slice(name.as_bytes());
        needle.push(0);
        vmlinux_btf.windows(needle.len()).any(|w| w == needle.as_slice())
    };
    if has("btf_trace_sock_send_length") && has("btf_trace_sock_recv_length") {
        return Ok(HookChoice {
            hook_set: HookSet::TracepointCgroup,
            reason: "kernel BTF has the sock_send_length/sock_recv_length tracepoints".into(),
        });
    }
    Err(ProbeError::NoHookSet)
}

pub fn probe() -> Result<HookChoice, ProbeError> {
    let blob = std::fs::read(VMLINUX_BTF).map_err(|source| ProbeError::Btf { path: VMLINUX_BTF, source })?;
    choose(&blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_tracepoints_only_when_both_exist() {
        let both = b"\0btf_trace_sock_send_length\0btf_trace_sock_recv_length\0";
        assert_eq!(choose(both).map(|c| c.hook_set).ok(), Some(HookSet::TracepointCgroup));
        assert!(matches!(choose(b"\0btf_trace_sock_send_length\0"), Err(ProbeError::NoHookSet)));
        // A longer name that merely contains the wanted one does not count.
        assert!(choose(b"\0xbtf_trace_sock_send_length\0btf_trace_sock_recv_length\0").is_err());
    }
}
