//! Confinement of picosnitch's roles. Each role keeps its policy next to it as data
//! ([`Policy`]): the user it runs as, the capabilities it keeps, the files and network it
//! may reach, and the system calls it may make, each with the reason. [`confine`] applies
//! a policy in the order the design requires:
//!
//! 1. the role has already opened every descriptor it needs with its start-up privileges;
//! 2. the bounding set is cut to the role's capabilities (this needs CAP_SETPCAP, which
//!    the user change below takes away, so it comes first);
//! 3. change to the role's user, keeping only the role's capabilities in the permitted,
//!    effective, inheritable and ambient sets;
//! 4. no_new_privs;
//! 5. Landlock: filesystem rules, TCP bind/connect rules and signal/abstract-socket
//!    scoping where the kernel has them; a hard requirement for roles that parse
//!    untrusted data, when the kernel has Landlock at all;
//! 6. seccomp: the role's allow-list; anything else raises SIGSYS, whose handler
//!    writes the call's number to the death-note descriptor for the supervisor and ends
//!    the process (the decided outcome of a violation: the role dies and is restarted,
//!    and the supervisor logs which call it was).
//!
//! [`table`] renders every policy as the privilege table in the README.
mod caps_drop;
mod error;
mod landlock_rules;
mod policy;
mod seccomp_filter;
pub mod probe;
pub mod table;

pub use error::SandboxError;
pub use policy::{any, Allow, Capability, Family, FileAccess, FileRule, Kept, Network, Place, Policy, Syscall, User, NOBODY_UID};
pub use seccomp_filter::{syscall_name, DEATH_NOTE_FD, LOG_ONLY_ENV, SECCOMP_EXIT_STATUS};

use std::path::PathBuf;

/// What a policy's places and users resolve to on this machine.
#[derive(Debug, Clone)]
pub struct Context {
    pub service_uid: u32,
    pub service_gid: u32,
    /// The history's directory.
    pub state_dir: PathBuf,
    pub runtime_dir: PathBuf,
    /// This binary, which the supervisor executes to start roles.
    pub own_exe: PathBuf,
    /// The desktop user's uid and gid (`[desktop] user`), for `User::Desktop`.
    pub desktop: Option<(u32, u32)>,
    /// The remote database's spool directory.
    pub spool_dir: PathBuf,
    /// The one TCP port a `Network::ConnectPort` role may connect to.
    pub connect_port: Option<u16>,
    /// The port a `Network::BindConfigured` program serves on.
    pub bind_port: Option<u16>,
    /// Who a `User::Invoker` program started by root becomes: (uid, gid), with that
    /// gid as its only group.
    pub run_as: Option<(u32, u32)>,
}

/// What confinement achieved, for the log and `picosnitch status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub uid: u32,
    pub gid: u32,
    pub capabilities: Vec<String>,
    /// "fully enforced (ABI 7)", "partially enforced", "not enforced: ...".
    pub landlock: String,
    pub seccomp_syscalls: usize,
}

/// Confines the calling process to `policy`. Must run while the process has a single
/// thread: Landlock (before ABI 8) restricts only the calling thread.
pub fn confine(policy: &Policy, ctx: &Context) -> Result<Report, SandboxError> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(SandboxError::Threads { role: policy.role, threads });
    }
    let keep = policy.kept_capabilities();
    // SAFETY: getuid/getgid have no preconditions.
    let (own_uid, own_gid) = unsafe { (libc::getuid(), libc::getgid()) };
    caps_drop::check_available(policy.role, &keep)?;
    let (uid, gid) = match policy.user {
        User::Root => (0, 0),
        User::Service => (ctx.service_uid, ctx.service_gid),
        User::Invoker => match ctx.run_as {
            Some((0, _)) => return Err(SandboxError::RootInvoker { role: policy.role }),
            Some(target) => target,
            None if own_uid == 0 => return Err(SandboxError::RootInvoker { role: policy.role }),
            None => (own_uid, own_gid),
        },
        User::Viewer if own_uid == 0 => (NOBODY_UID, ctx.service_gid),
        User::Viewer => (own_uid, own_gid),
        User::Desktop => match ctx.desktop {
            Some((uid, gid)) if uid != 0 => (uid, gid),
            _ => return Err(SandboxError::NoDesktopUser { role: policy.role }),
        },
    };
    // Only a privileged process may cut its bounding set; an unprivileged one has no
    // capability to lose and, with no_new_privs below, none to gain.
    if own_uid == 0 || caps_drop::may_cut_bounding_set() {
        caps_drop::cut_bounding_set(&keep)?;
    }
    caps_drop::become_user(uid, gid, &keep)?;
    // Not dumpable: no other process of the service user may ptrace this one or read
    // its memory through /proc.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(SandboxError::os("prctl(PR_SET_DUMPABLE)"));
    }
    // SAFETY: as above.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(SandboxError::os("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    let landlock = match policy.unlandlocked {
        Some(why) => format!("not applied: {why}"),
        None => landlock_rules::restrict(policy, ctx)?,
    };
    let seccomp_syscalls = if policy.unfiltered.is_some() { 0 } else { seccomp_filter::install(policy)? };
    Ok(Report {
        uid,
        gid,
        capabilities: keep.iter().map(|c| c.to_string()).collect(),
        landlock,
        seccomp_syscalls,
    })
}

fn thread_count() -> Result<usize, SandboxError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|source| SandboxError::Io { what: "reading /proc/self/status", source })?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}
