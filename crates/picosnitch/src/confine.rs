//! What every role's seccomp allow-list shares: the Rust runtime, smol's event loop and
//! the role's links. Each role adds its own calls in its `policy.rs`, and confines
//! itself through [`confine_role`] once it has opened what it needs.
use anyhow::Context as _;
use picosnitch_config::Config;
use picosnitch_sandbox::{any, Allow, Family, Policy, Syscall};
use syscalls::Sysno;

/// Calls every role makes once running.
pub const RUNTIME: &[Syscall] = &[
    any(Sysno::brk, Family::Memory, "the allocator"),
    any(Sysno::mmap, Family::Memory, "the allocator and thread stacks"),
    any(Sysno::munmap, Family::Memory, "the allocator and thread stacks"),
    any(Sysno::mremap, Family::Memory, "the allocator"),
    any(Sysno::mprotect, Family::Memory, "thread stack guard pages"),
    any(Sysno::madvise, Family::Memory, "the allocator returning memory (malloc_trim)"),
    any(Sysno::clone3, Family::Threads, "smol's and blocking's worker threads (its flags are in memory seccomp cannot read)"),
    Syscall {
        call: Sysno::clone,
        allow: Allow::ArgIn { index: 0, values: &[THREAD_FLAGS] },
        family: Family::Threads,
        why: "threads, where clone3 is unavailable: only with glibc's thread flags",
    },
    any(Sysno::futex, Family::Threads, "locks and condition variables"),
    any(Sysno::set_robust_list, Family::Threads, "new threads (glibc)"),
    any(Sysno::rseq, Family::Threads, "new threads (glibc)"),
    any(Sysno::gettid, Family::Threads, "thread ids in locks and logs"),
    any(Sysno::sched_getaffinity, Family::Threads, "sizing thread pools"),
    any(Sysno::sched_yield, Family::Threads, "spin loops in locks"),
    Syscall {
        call: Sysno::prctl,
        allow: Allow::ArgIn { index: 0, values: &[libc::PR_SET_NAME as u64, libc::PR_GET_NAME as u64, PR_GET_AUXV] },
        family: Family::Threads,
        why: "naming threads, reading its own auxiliary vector (glibc); nothing else",
    },
    any(Sysno::sigaltstack, Family::Signals, "stack overflow detection on new threads"),
    any(Sysno::rt_sigaction, Family::Signals, "stack overflow detection on new threads"),
    any(Sysno::rt_sigprocmask, Family::Signals, "new threads block signals while starting"),
    any(Sysno::rt_sigreturn, Family::Signals, "returning from a signal handler"),
    any(
        Sysno::restart_syscall,
        Family::Signals,
        "resuming a sleep interrupted by SIGSTOP/SIGCONT, the cgroup freezer or a debugger (without it a frozen role dies when thawed)"
    ),
    any(Sysno::clock_gettime, Family::Time, "timestamps (when the vDSO cannot answer)"),
    any(Sysno::clock_nanosleep, Family::Time, "sleeping"),
    any(Sysno::nanosleep, Family::Time, "sleeping"),
    any(Sysno::timerfd_create, Family::Time, "smol's timers"),
    any(Sysno::timerfd_settime, Family::Time, "smol's timers"),
    any(Sysno::epoll_create1, Family::Events, "smol's reactor"),
    any(Sysno::epoll_ctl, Family::Events, "smol's reactor"),
    any(Sysno::epoll_pwait, Family::Events, "smol's reactor"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::epoll_wait, Family::Events, "smol's reactor"),
    any(Sysno::epoll_pwait2, Family::Events, "smol's reactor"),
    any(Sysno::eventfd2, Family::Events, "waking smol's reactor"),
    any(Sysno::ppoll, Family::Events, "waiting on one descriptor"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::poll, Family::Events, "waiting on one descriptor"),
    any(Sysno::read, Family::Files, "eventfds and timerfds"),
    any(Sysno::write, Family::Files, "logs to stderr, waking the reactor"),
    any(Sysno::writev, Family::Files, "logs to stderr"),
    any(Sysno::close, Family::Files, "closing what it is done with"),
    any(Sysno::fcntl, Family::Files, "non-blocking and close-on-exec flags"),
    any(Sysno::ioctl, Family::Files, "FIONBIO on links (Landlock limits device ioctls)"),
    any(Sysno::fstat, Family::Files, "the runtime's file metadata"),
    any(Sysno::newfstatat, Family::Files, "the runtime's file metadata"),
    any(Sysno::statx, Family::Files, "the runtime's file metadata"),
    any(Sysno::openat, Family::Files, "the runtime reads /proc/self and cgroup limits (Landlock decides what opens)"),
    any(Sysno::getrandom, Family::Process, "hash map seeds"),
    any(Sysno::getpid, Family::Process, "the role's own pid in logs"),
    any(Sysno::prlimit64, Family::Process, "thread stack size"),
    any(Sysno::exit, Family::Process, "ending a thread"),
    any(Sysno::exit_group, Family::Process, "ending"),
    any(Sysno::getsockopt, Family::Links, "checking an inherited link is a SOCK_SEQPACKET socket"),
    any(Sysno::recvmsg, Family::Links, "messages (and descriptors) on its links"),
];

/// Sending on any socket the role holds: its links, journald. Every role but the rdns
/// role, whose handed-over UDP socket must only send to the address it is connected to
/// (see `crate::rdns::policy`).
pub const LINK_SENDS: &[Syscall] = &[
    any(Sysno::sendmsg, Family::Links, "messages (and descriptors) on its links; logs to journald"),
    any(Sysno::sendto, Family::Links, "logs to journald"),
];

/// The live feed's client (`top`, `tui`, `webui`).
pub const FEED_CLIENT: &[Syscall] = &[
    Syscall {
        call: Sysno::socket,
        allow: Allow::ArgIn { index: 0, values: &[libc::AF_UNIX as u64] },
        family: Family::Sockets,
        why: "(re)connecting to the live feed when the daemon restarts: Unix sockets only",
    },
    any(Sysno::connect, Family::Sockets, "the live feed's Unix socket (Landlock allows no TCP connect)"),
    any(Sysno::recvfrom, Family::Sockets, "reading the live feed"),
    any(Sysno::setsockopt, Family::Sockets, "a read timeout on the feed, to notice the UI quitting"),
];

/// SQLite reading the history, read-only (`tui`, `webui`).
pub const HISTORY_READER: &[Syscall] = &[
    #[cfg(target_arch = "x86_64")]
    any(Sysno::open, Family::Files, "SQLite opens the history read-only (Landlock refuses any write)"),
    any(Sysno::pread64, Family::Files, "SQLite reads pages"),
    any(Sysno::lseek, Family::Files, "SQLite"),
    any(Sysno::getcwd, Family::Files, "SQLite resolves relative names"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::readlink, Family::Files, "SQLite resolves links in the database path"),
    any(Sysno::readlinkat, Family::Files, "SQLite resolves links in the database path"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::access, Family::Files, "SQLite checks for the -wal and -shm files"),
    any(Sysno::faccessat, Family::Files, "SQLite checks for the -wal and -shm files"),
    any(Sysno::faccessat2, Family::Files, "SQLite checks for the -wal and -shm files"),
    any(Sysno::geteuid, Family::Identity, "SQLite"),
    any(Sysno::getuid, Family::Identity, "SQLite"),
];

/// prctl(PR_GET_AUXV) (Linux 6.4), which libc's feature detection calls.
const PR_GET_AUXV: u64 = 0x4155_5856;

/// glibc's clone flags for a new thread (CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|
/// SETTLS|PARENT_SETTID|CHILD_CLEARTID).
const THREAD_FLAGS: u64 = 0x3d0f00;

/// The context a role's places and users resolve to, from the configuration.
pub fn context(config: &Config) -> anyhow::Result<picosnitch_sandbox::Context> {
    let owner = &config.data.owner;
    let uid = crate::accounts::uid_of(owner).with_context(|| {
        format!("the service user {owner:?} ([data] owner) does not exist: create it with `useradd --system --user-group {owner}`, or name another user or a uid")
    })?;
    let group = &config.data.group;
    let gid = crate::accounts::gid_of(group)
        .with_context(|| format!("the group {group:?} ([data] group) does not exist: create it, or name another group or a gid"))?;
    let state_dir = config.database.path.parent().map(std::path::Path::to_path_buf).unwrap_or_else(|| "/".into());
    Ok(picosnitch_sandbox::Context {
        service_uid: uid,
        service_gid: gid,
        state_dir,
        runtime_dir: config.data.runtime_dir.clone(),
        own_exe: std::env::current_exe().context("finding this executable")?,
        desktop: crate::notify::desktop_account(config)?,
        spool_dir: crate::remote::spool_dir(config),
        connect_port: None,
        bind_port: None,
        run_as: None,
    })
}

/// Confines this role process: its policy's user, capabilities, Landlock and seccomp.
/// `[data] owner = "root"` keeps the roles root (still confined otherwise), which
/// the log warns about.
pub fn confine_role(policy: &Policy, config: &Config) -> anyhow::Result<()> {
    let ctx = context(config)?;
    confine_with(policy, ctx)
}

/// [`confine_role`] for a `Network::ConnectPort` role (virustotal: its API's port).
pub fn confine_role_connecting(policy: &Policy, config: &Config, port: Option<u16>) -> anyhow::Result<()> {
    let mut ctx = context(config)?;
    ctx.connect_port = port;
    confine_with(policy, ctx)
}

fn confine_with(policy: &Policy, ctx: picosnitch_sandbox::Context) -> anyhow::Result<()> {
    if policy.user == picosnitch_sandbox::User::Service && ctx.service_uid == 0 {
        tracing::warn!(role = policy.role, "[data] owner is root: the role keeps uid 0 (its capabilities, Landlock and seccomp still apply)");
    }
    // Files the role creates (the history) are readable by its group, nobody else.
    // SAFETY: umask only changes the process's file creation mask.
    unsafe { libc::umask(0o027) };
    if crate::unconfined::requested() {
        crate::unconfined::warn(policy.role);
        return Ok(());
    }
    let report = picosnitch_sandbox::confine(policy, &ctx).with_context(|| format!("confining the {} role", policy.role))?;
    tracing::info!(
        role = policy.role,
        uid = report.uid,
        gid = report.gid,
        capabilities = %report.capabilities.join(","),
        landlock = %report.landlock,
        seccomp_syscalls = report.seccomp_syscalls,
        "confined"
    );
    Ok(())
}

/// Every role's policy, in the order of the README table.
pub fn all_policies() -> Vec<&'static Policy> {
    vec![
        &crate::supervisor::policy::POLICY,
        &crate::monitor::policy::POLICY,
        &crate::primary::policy::POLICY,
        &crate::hasher::policy::POLICY,
        &crate::opener::policy::POLICY,
        &crate::writer::policy::POLICY,
        &crate::notify::policy::POLICY,
        &crate::user_hasher::policy::POLICY,
        &crate::remote::policy::POLICY,
        &crate::virustotal::policy::POLICY,
        &crate::rdns::policy::POLICY,
        &crate::webui::policy::POLICY,
        &crate::terminal_ui::policy::TOP,
        &crate::terminal_ui::policy::TUI,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_privilege_table_is_what_the_code_enforces() {
        let readme = include_str!("../../../README.md");
        let table = picosnitch_sandbox::table::render(&all_policies());
        let begin = table.lines().next().unwrap_or_default();
        let end = picosnitch_sandbox::table::END;
        let found = readme.find(begin).and_then(|b| readme[b..].find(end).map(|e| &readme[b..b + e + end.len()]));
        let Some(found) = found else { panic!("README.md has no privilege table between {begin:?} and {end:?}") };
        assert!(
            table.trim_end() == found,
            "README.md's privilege table differs from the policies in the code: replace it with the output of `picosnitch privileges`"
        );
    }

    #[test]
    fn every_role_has_a_policy_and_every_policy_a_reason() {
        let policies = all_policies();
        for role in picosnitch_ipc::control::Role::ALL {
            assert!(policies.iter().any(|p| p.role == role.name()), "no policy for the {role} role");
        }
        for p in policies {
            for c in p.all_syscalls() {
                assert!(!c.why.trim().is_empty(), "{}: {} has no reason", p.role, c.call.name());
            }
            for k in p.keeps.iter().chain(p.starts_with) {
                assert!(!k.why.trim().is_empty(), "{}: {} has no reason", p.role, k.cap);
            }
        }
    }
}
