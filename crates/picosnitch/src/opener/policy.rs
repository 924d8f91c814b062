//! The opener's privileges: ptrace-mode read access to other processes' /proc/PID/exe
//! and reading past file permissions, and almost no system call to use them with.
//!
//! It has no Landlock (Landlock refuses ptrace-mode access to processes outside the
//! caller's domain, which is what opening /proc/PID/exe needs), so its seccomp list is
//! what bounds it: it may open files only read-only with one set of flags, fstat them and
//! pass descriptors on its two links, and has no call that reads a file's contents
//! (read, pread, readv, mmap of a file, sendfile, splice, io_uring) or writes to a file
//! it opened. Compromised, it could learn whether any file exists and its metadata, and
//! send descriptors to the primary, which takes only the file it asked for (it checks the
//! (device, inode) again) and to the supervisor, which takes none.
use picosnitch_sandbox::{any, Allow, Capability, Family, Kept, Network, Policy, Syscall, User};
use syscalls::Sysno;

/// openat's flags argument: exactly the opener's (see [`super::OPEN_FLAGS`]), with or
/// without O_LARGEFILE (which rustix always adds, and which means nothing on 64 bits).
const OPEN_FLAGS: &[u64] =
    &[super::OPEN_FLAGS.bits() as u64, super::OPEN_FLAGS.union(rustix::fs::OFlags::LARGEFILE).bits() as u64];
/// mmap's descriptor argument: -1 only (anonymous memory; glibc passes it sign-extended,
/// and the kernel reads a descriptor as 32 bits, where 0xffffffff is -1 too).
const NO_FD: &[u64] = &[u64::MAX, 0xffff_ffff];

const OWN: &[Syscall] = &[
    Syscall {
        call: Sysno::openat,
        allow: Allow::ArgIn { index: 2, values: OPEN_FLAGS },
        family: Family::Files,
        why: "/proc/PID/exe, read-only, non-blocking, close-on-exec: no other flags (so nothing is created or written)",
    },
    #[cfg(target_arch = "x86_64")]
    Syscall {
        call: Sysno::open,
        allow: Allow::ArgIn { index: 1, values: OPEN_FLAGS },
        family: Family::Files,
        why: "as openat (what the standard library calls on x86_64)",
    },
    any(Sysno::statx, Family::Files, "the (device, inode) of the opened executable"),
    any(Sysno::fstat, Family::Files, "the (device, inode) of the opened executable"),
    any(Sysno::newfstatat, Family::Files, "the (device, inode) of the opened executable"),
    any(Sysno::close, Family::Files, "closing descriptors it has answered with"),
    Syscall {
        call: Sysno::fcntl,
        allow: Allow::ArgIn { index: 1, values: &[libc::F_GETFD as u64] },
        family: Family::Files,
        why: "the standard library checking a descriptor it adopts is open (F_GETFD only)",
    },
    any(Sysno::write, Family::Files, "logs to stderr; the seccomp handler's note to the supervisor"),
    any(Sysno::writev, Family::Files, "logs to stderr"),
    any(Sysno::recvmsg, Family::Links, "requests from the primary, commands from the supervisor"),
    any(Sysno::sendmsg, Family::Links, "answers (with the descriptor) to the primary, status to the supervisor; logs to journald"),
    any(Sysno::sendto, Family::Links, "logs to journald"),
    any(Sysno::getsockopt, Family::Links, "checking a new link is a SOCK_SEQPACKET socket"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::poll, Family::Events, "waiting on its two links"),
    any(Sysno::ppoll, Family::Events, "waiting on its two links"),
    any(Sysno::brk, Family::Memory, "the allocator"),
    Syscall {
        call: Sysno::mmap,
        allow: Allow::ArgIn { index: 4, values: NO_FD },
        family: Family::Memory,
        why: "the allocator: anonymous memory only (mapping a file would read it)",
    },
    any(Sysno::munmap, Family::Memory, "the allocator"),
    any(Sysno::mremap, Family::Memory, "the allocator"),
    any(Sysno::mprotect, Family::Memory, "the allocator"),
    any(Sysno::madvise, Family::Memory, "the allocator returning memory"),
    any(Sysno::futex, Family::Threads, "the lock around stderr"),
    any(Sysno::clock_gettime, Family::Time, "timestamps and the status period (when the vDSO cannot answer)"),
    any(Sysno::getrandom, Family::Process, "hash map seeds"),
    any(Sysno::getpid, Family::Process, "its own pid in logs"),
    any(Sysno::rt_sigreturn, Family::Signals, "returning from a signal handler"),
    any(Sysno::restart_syscall, Family::Signals, "resuming a wait interrupted by SIGSTOP/SIGCONT or the cgroup freezer"),
    any(Sysno::exit_group, Family::Process, "ending"),
];

pub static POLICY: Policy = Policy {
    role: "opener",
    job: "opens /proc/PID/exe for the primary when the reported path no longer leads to the binary, and checks it is the kernel's",
    user: User::Service,
    starts_with: &[],
    keeps: &[
        Kept { cap: Capability::CAP_SYS_PTRACE, why: "ptrace-mode read access to /proc/PID/exe of processes of other users" },
        Kept { cap: Capability::CAP_DAC_READ_SEARCH, why: "opening executables its user may not read (only to pass them on: it cannot read them)" },
    ],
    files: &[],
    network: Network::None,
    untrusted: None,
    scoped: false,
    syscalls: &[OWN],
    unfiltered: None,
    unlandlocked: Some(
        "Landlock refuses ptrace-mode access (which /proc/PID/exe needs) to processes outside the caller's domain; its seccomp list bounds it instead: read-only opens with fixed flags, and no call that reads a file's contents",
    ),
};
