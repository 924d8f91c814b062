//! The primary's privileges: reading /proc and executables, writing nothing.
use crate::confine::{LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Capability, Family, FileAccess, FileRule, Kept, Network, Place, Policy, Syscall, User};
use syscalls::Sysno;

const OWN: &[Syscall] = &[
    #[cfg(target_arch = "x86_64")]
    any(Sysno::open, Family::Files, "/proc/PID/exe and executables by path, read-only"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::readlink, Family::Files, "/proc/PID/exe"),
    any(Sysno::readlinkat, Family::Files, "/proc/PID/exe"),
    any(Sysno::lseek, Family::Files, "reading /proc files"),
    any(Sysno::pread64, Family::Files, "the runtime reading its own files"),
    any(Sysno::statfs, Family::Files, "which filesystem holds a binary"),
    any(Sysno::fstatfs, Family::Files, "which filesystem holds a binary"),
    any(Sysno::fanotify_mark, Family::Files, "watching the executables it hashes for writes (in the group the monitor made)"),
    any(Sysno::accept4, Family::Links, "live feed readers connecting to the socket the supervisor bound"),
    any(Sysno::recvfrom, Family::Links, "noticing a live feed reader that hung up"),
];

pub static POLICY: Policy = Policy {
    role: "primary",
    job: "identities of processes, rows per write period, the live feed",
    user: User::Service,
    starts_with: &[],
    keeps: &[
        Kept { cap: Capability::CAP_DAC_READ_SEARCH, why: "opening executables its user may not read (to hash them)" },
    ],
    files: &[FileRule {
        place: Place::RootExcept(&["/etc", "/boot", "/dev", "/sys", "/lost+found"]),
        access: FileAccess::Read,
        why: "/proc/PID and executables, wherever they were run from (configuration and secrets in /etc are not executables)",
    }],
    network: Network::None,
    untrusted: Some("command lines, process names and paths chosen by any user"),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, OWN],
    unfiltered: None,
    unlandlocked: None,
};
