//! Which kernel hooks this kernel offers, read from its BTF at start, and which hook set
//! to use. Hooks are annotated with the kernel versions they need (see
//! `bpf/picosnitch.bpf.c`); the decision and its reason are logged and shown in
//! `picosnitch status`.
use std::fmt;

/// How the byte counts are hooked; everything else is common to both sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookSet {
    /// `sock:sock_send_length`/`sock_recv_length` tracepoints as tp_btf programs
    /// (Linux >= 6.4): a stable interface that needs no kprobes, fentry or BPF LSM.
    Tracepoint,
    /// fexit on `inet_sendmsg`/`inet_recvmsg` (and the IPv6 and AF_PACKET ones): the
    /// same points on kernels older than 6.4 (BPF trampolines).
    Fentry,
}

impl fmt::Display for HookSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookSet::Tracepoint => "tracepoint",
            HookSet::Fentry => "fentry",
        })
    }
}

/// What the configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Requested {
    /// The best set the kernel offers, falling back when one fails to load.
    #[default]
    Auto,
    Only(HookSet),
}

/// What the kernel's BTF says it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelFeatures {
    /// The sock_send_length/sock_recv_length tracepoints (6.4).
    pub sock_length_tracepoints: bool,
    /// inet_sendmsg and inet_recvmsg as functions fexit can attach to.
    pub sock_msg_functions: bool,
    /// The bpf_loop helper (5.17); without it the exec path walk is unrolled.
    pub bpf_loop: bool,
    /// Socket cookies (5.12) and socket-local storage (5.11) in tracing programs, which
    /// every hook set needs: the minimum kernel.
    pub tracing_socket_helpers: bool,
}

/// The hook sets to try, best first, with the reason for the order.
#[derive(Debug, Clone)]
pub struct HookPlan {
    pub candidates: Vec<HookSet>,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("reading the kernel's BTF at {path}: {source}; picosnitch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    Btf { path: &'static str, source: std::io::Error },
    #[error("this kernel offers no hook set picosnitch can use: {0}")]
    NoHookSet(String),
    #[error(
        "Linux {release} is too old: picosnitch needs Linux >= 5.12, where BPF tracing programs may read socket cookies and socket-local storage (this kernel's BTF has no bpf_get_socket_ptr_cookie)"
    )]
    KernelTooOld { release: String },
}

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Whether `name` is one of the blob's strings (names in BTF are NUL-terminated and
/// preceded by the previous string's NUL, so a longer name containing it does not count).
fn has_name(blob: &[u8], name: &str) -> bool {
    let mut needle = Vec::with_capacity(name.len() + 2);
    needle.push(0);
    needle.extend_from_slice(name.as_bytes());
    needle.push(0);
    blob.windows(needle.len()).any(|w| w == needle.as_slice())
}

pub fn features(vmlinux_btf: &[u8]) -> KernelFeatures {
    KernelFeatures {
        sock_length_tracepoints: has_name(vmlinux_btf, "btf_trace_sock_send_length")
            && has_name(vmlinux_btf, "btf_trace_sock_recv_length"),
        sock_msg_functions: has_name(vmlinux_btf, "inet_sendmsg") && has_name(vmlinux_btf, "inet_recvmsg"),
        bpf_loop: has_name(vmlinux_btf, "bpf_loop"),
        // The helpers' implementations, or the typedefs BPF_CALL_x declares beside them
        // (both are in the BTF of Debian's 6.1 to 7.2 kernels, neither in 5.10's).
        tracing_socket_helpers: (has_name(vmlinux_btf, "bpf_get_socket_ptr_cookie")
            || has_name(vmlinux_btf, "btf_bpf_get_socket_ptr_cookie"))
            && (has_name(vmlinux_btf, "bpf_sk_storage_get_tracing")
                || has_name(vmlinux_btf, "btf_bpf_sk_storage_get_tracing")),
    }
}

/// `major.minor` of a kernel release such as "6.12.117+deb12-cloud-amd64".
fn release_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
    Some((major, minor.parse().ok()?))
}

/// Refuses, before anything is loaded, a kernel older than the programs need, in words
/// instead of a verifier log. The BTF decides when it has the helpers (distributions
/// backport BPF features); when it lacks them the release decides, so a kernel whose BTF
/// left them out for another reason is still tried. Returns a warning for that case.
pub fn check_minimum(f: KernelFeatures, release: &str) -> Result<Option<String>, ProbeError> {
    if f.tracing_socket_helpers {
        return Ok(None);
    }
    match release_version(release) {
        Some(v) if v >= (5, 12) => Ok(Some(format!(
            "the kernel's BTF has no bpf_get_socket_ptr_cookie/bpf_sk_storage_get_tracing, but Linux {release} should have them; trying anyway"
        ))),
        _ => Err(ProbeError::KernelTooOld { release: release.to_string() }),
    }
}

/// The running kernel's release ("unknown" when /proc is not there to say).
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// Orders the hook sets to try for `requested` on a kernel with `f`.
pub fn plan(f: KernelFeatures, requested: Requested) -> Result<HookPlan, ProbeError> {
    match requested {
        Requested::Only(HookSet::Tracepoint) if !f.sock_length_tracepoints => Err(ProbeError::NoHookSet(
            "hook_set = \"tracepoint\" was configured, but this kernel has no sock:sock_send_length tracepoint (Linux >= 6.4); use \"auto\"".into(),
        )),
        Requested::Only(HookSet::Fentry) if !f.sock_msg_functions => Err(ProbeError::NoHookSet(
            "hook_set = \"fentry\" was configured, but inet_sendmsg/inet_recvmsg are not in the kernel's BTF; use \"auto\"".into(),
        )),
        Requested::Only(set) => Ok(HookPlan { candidates: vec![set], reason: format!("hook_set = \"{set}\" configured") }),
        Requested::Auto => {
            let mut candidates = Vec::new();
            let mut why = Vec::new();
            if f.sock_length_tracepoints {
                candidates.push(HookSet::Tracepoint);
                why.push("the kernel has the sock_send_length/sock_recv_length tracepoints (stable, no trampolines needed)");
            } else {
                why.push("no sock_send_length tracepoint (kernel < 6.4)");
            }
            if f.sock_msg_functions {
                candidates.push(HookSet::Fentry);
                if candidates.len() == 1 {
                    why.push("fexit on inet_sendmsg/inet_recvmsg instead");
                }
            }
            if candidates.is_empty() {
                return Err(ProbeError::NoHookSet(
                    "neither the sock_send_length tracepoints (Linux >= 6.4) nor inet_sendmsg/inet_recvmsg in BTF for fexit".into(),
                ));
            }
            Ok(HookPlan { candidates, reason: why.join("; ") })
        }
    }
}

pub fn read_vmlinux_btf() -> Result<Vec<u8>, ProbeError> {
    std::fs::read(VMLINUX_BTF).map_err(|source| ProbeError::Btf { path: VMLINUX_BTF, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &[u8] = b"\0btf_trace_sock_send_length\0btf_trace_sock_recv_length\0inet_sendmsg\0inet_recvmsg\0bpf_loop\0bpf_get_socket_ptr_cookie\0bpf_sk_storage_get_tracing\0";
    const OLD: &[u8] = b"\0inet_sendmsg\0inet_recvmsg\0";

    #[test]
    fn features_are_read_from_names() {
        let f = features(NEW);
        assert!(f.sock_length_tracepoints && f.sock_msg_functions && f.bpf_loop);
        let f = features(OLD);
        assert!(!f.sock_length_tracepoints && f.sock_msg_functions && !f.bpf_loop);
        // A longer name that merely contains the wanted one does not count.
        assert!(!features(b"\0xbtf_trace_sock_send_length\0btf_trace_sock_recv_length\0").sock_length_tracepoints);
    }

    #[test]
    fn auto_prefers_tracepoints_and_falls_back_to_fentry() {
        assert_eq!(plan(features(NEW), Requested::Auto).expect("plan").candidates, vec![HookSet::Tracepoint, HookSet::Fentry]);
        assert_eq!(plan(features(OLD), Requested::Auto).expect("plan").candidates, vec![HookSet::Fentry]);
        assert!(plan(features(b"\0"), Requested::Auto).is_err());
    }

    #[test]
    fn a_configured_set_the_kernel_lacks_is_an_error_naming_it() {
        let err = plan(features(OLD), Requested::Only(HookSet::Tracepoint)).expect_err("no tracepoint");
        assert!(err.to_string().contains("6.4"), "{err}");
        assert_eq!(plan(features(NEW), Requested::Only(HookSet::Fentry)).expect("ok").candidates, vec![HookSet::Fentry]);
    }

    #[test]
    fn kernels_without_socket_helpers_in_tracing_are_refused_by_release() {
        assert!(features(NEW).tracing_socket_helpers);
        assert!(check_minimum(features(NEW), "5.10.0-32-cloud-amd64").expect("BTF decides").is_none());
        // BPF_CALL_x's typedefs count as well as the functions.
        assert!(features(b"\0btf_bpf_get_socket_ptr_cookie\0btf_bpf_sk_storage_get_tracing\0").tracing_socket_helpers);
        let err = check_minimum(features(OLD), "5.10.0-32-cloud-amd64").expect_err("too old");
        let text = err.to_string();
        assert!(text.contains("Linux 5.10.0-32-cloud-amd64 is too old") && text.contains(">= 5.12"), "{text}");
        assert!(check_minimum(features(OLD), "unknown").is_err());
        // A release that should have them is tried, with a warning.
        assert!(check_minimum(features(OLD), "5.12.0").expect("tried").is_some());
        assert!(check_minimum(features(OLD), "6.1.0-50-cloud-amd64").expect("tried").is_some());
        assert_eq!(release_version("7.2.13+deb14-cloud-amd64"), Some((7, 2)));
        assert_eq!(release_version("5.4"), Some((5, 4)));
        assert_eq!(release_version("x"), None);
    }
}
