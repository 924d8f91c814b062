//! Seccomp: a role's allow-list, and what happens on a call outside it.
//!
//! A forbidden call raises SIGSYS (SECCOMP_RET_TRAP). The handler writes the call's
//! number to [`DEATH_NOTE_FD`], a pipe the supervisor reads, and exits with
//! [`SECCOMP_EXIT_STATUS`]; the supervisor logs the role and the call's name and
//! restarts the role. Nothing of the call happened.
use crate::error::SandboxError;
use crate::policy::{Allow, Policy};
use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};
use std::collections::BTreeMap;

/// Where the supervisor puts the write end of a role's death-note pipe.
pub const DEATH_NOTE_FD: i32 = 4;
/// A role's exit status after a seccomp violation.
pub const SECCOMP_EXIT_STATUS: i32 = 159;

/// Set to 1, calls outside the allow-list are allowed and logged by the kernel (dmesg:
/// `audit: type=1326`) instead of stopping the role: a diagnostic for building
/// allow-lists, never for production.
pub const LOG_ONLY_ENV: &str = "PICOSNITCH_SECCOMP_LOG";

fn arch() -> seccompiler::TargetArch {
    #[cfg(target_arch = "x86_64")]
    {
        seccompiler::TargetArch::x86_64
    }
    #[cfg(target_arch = "aarch64")]
    {
        seccompiler::TargetArch::aarch64
    }
}

/// The name of a system call number on this architecture.
pub fn syscall_name(nr: i64) -> String {
    i32::try_from(nr)
        .ok()
        .and_then(|n| syscalls::Sysno::new(n as usize))
        .map_or_else(|| format!("#{nr}"), |s| s.name().to_string())
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // siginfo's SIGSYS fields: si_call_addr (pointer), then si_syscall (int), after the
    // three ints of the header and their padding: offset 16 + 8 on 64-bit targets.
    // SAFETY: the kernel passes a valid siginfo_t for SIGSYS; reading the int at that
    // offset is within the structure (128 bytes).
    let nr: i32 = unsafe { std::ptr::read_unaligned(info.cast::<u8>().add(24).cast::<i32>()) };
    let bytes = nr.to_le_bytes();
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is on the stack.
    unsafe {
        libc::write(DEATH_NOTE_FD, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(SECCOMP_EXIT_STATUS);
    }
}

/// Installs the SIGSYS handler and the role's filter on every thread.
pub(crate) fn install(policy: &Policy) -> Result<usize, SandboxError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for s in policy.all_syscalls() {
        let nr = s.call.id() as i64;
        let entry = rules.entry(nr).or_default();
        match s.allow {
            Allow::Any => entry.clear(), // an empty rule list means: any arguments
            Allow::ArgIn { index, values } => {
                for v in values {
                    let cond = SeccompCondition::new(index, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, *v)
                        .map_err(|e| SandboxError::Seccomp(format!("{}: {e}", s.call.name())))?;
                    entry.push(SeccompRule::new(vec![cond]).map_err(|e| SandboxError::Seccomp(e.to_string()))?);
                }
            }
            Allow::ArgNot { index, value } => {
                let cond = SeccompCondition::new(index, SeccompCmpArgLen::Qword, SeccompCmpOp::Ne, value)
                    .map_err(|e| SandboxError::Seccomp(format!("{}: {e}", s.call.name())))?;
                entry.push(SeccompRule::new(vec![cond]).map_err(|e| SandboxError::Seccomp(e.to_string()))?);
            }
        }
    }
    // A call allowed with any arguments in one entry and restricted in another is
    // allowed with any: an empty list must win.
    for s in policy.all_syscalls() {
        if s.allow == Allow::Any {
            if let Some(r) = rules.get_mut(&(s.call.id() as i64)) {
                r.clear();
            }
        }
    }
    let count = rules.len();
    let mismatch = if std::env::var_os(LOG_ONLY_ENV).is_some_and(|v| v == "1") {
        tracing::warn!(role = policy.role, "{LOG_ONLY_ENV}=1: seccomp only LOGS calls outside the allow-list; the role is not confined by it");
        SeccompAction::Log
    } else {
        SeccompAction::Trap
    };
    let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, arch())
        .map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    let program: BpfProgram = filter.try_into().map_err(|e: seccompiler::BackendError| SandboxError::Seccomp(e.to_string()))?;
    // SAFETY: sigaction with a zeroed struct, our handler and SA_SIGINFO; the handler
    // only uses async-signal-safe calls.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        if libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) != 0 {
            return Err(SandboxError::os("sigaction(SIGSYS)"));
        }
    }
    seccompiler::apply_filter_all_threads(&program).map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_calls() {
        assert_eq!(syscall_name(libc::SYS_execve), "execve");
        assert_eq!(syscall_name(libc::SYS_openat), "openat");
        assert_eq!(syscall_name(100_000), "#100000");
    }
}
