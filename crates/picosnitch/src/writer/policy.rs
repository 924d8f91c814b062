//! The writer's privileges: its history's directory (with the remote spool in it); no network.
use crate::confine::{LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Family, FileAccess, FileRule, Network, Place, Policy, Syscall, User};
use syscalls::Sysno;

const OWN: &[Syscall] = &[
    #[cfg(target_arch = "x86_64")]
    any(Sysno::open, Family::Files, "SQLite's database, journal and WAL files"),
    any(Sysno::pread64, Family::Files, "SQLite reads pages"),
    any(Sysno::pwrite64, Family::Files, "SQLite writes pages"),
    any(Sysno::lseek, Family::Files, "SQLite"),
    any(Sysno::fsync, Family::Files, "SQLite commits durably"),
    any(Sysno::fdatasync, Family::Files, "SQLite commits durably"),
    any(Sysno::ftruncate, Family::Files, "SQLite's WAL checkpoints"),
    any(Sysno::fallocate, Family::Files, "SQLite's WAL growth"),
    any(Sysno::unlinkat, Family::Files, "SQLite's journal files"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::unlink, Family::Files, "SQLite's journal files"),
    any(Sysno::renameat, Family::Files, "moving a corrupt database aside"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::rename, Family::Files, "moving a corrupt database aside"),
    any(Sysno::mkdirat, Family::Files, "the history's directory, if it vanished"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::mkdir, Family::Files, "the history's directory, if it vanished"),
    any(Sysno::getcwd, Family::Files, "SQLite resolves relative names"),
    any(Sysno::getdents64, Family::Files, "listing the remote spool's segments (to keep it within its limit)"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::readlink, Family::Files, "SQLite resolves links in the database path"),
    any(Sysno::readlinkat, Family::Files, "SQLite resolves links in the database path"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::access, Family::Files, "SQLite checks for its journal files"),
    any(Sysno::faccessat, Family::Files, "SQLite checks for its journal files"),
    any(Sysno::fchmod, Family::Files, "SQLite gives a new journal the database's mode"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::chmod, Family::Files, "giving the history's files [data] mode"),
    any(Sysno::fchmodat, Family::Files, "giving the history's files [data] mode"),
    any(Sysno::fchown, Family::Files, "SQLite gives a new journal the database's owner (its own)"),
    any(Sysno::geteuid, Family::Identity, "SQLite"),
    any(Sysno::getuid, Family::Identity, "SQLite"),
];

pub static POLICY: Policy = Policy {
    role: "writer",
    job: "the only process that writes the history (SQLite)",
    user: User::Service,
    starts_with: &[],
    keeps: &[],
    files: &[
        FileRule { place: Place::StateDir, access: FileAccess::ReadWrite, why: "the SQLite history and its journals, and the remote spool it fills" },
        FileRule { place: Place::Path("/dev/urandom"), access: FileAccess::Read, why: "SQLite's randomness" },
    ],
    network: Network::None,
    untrusted: Some("rows derived from command lines and addresses"),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, OWN],
    unfiltered: None,
    unlandlocked: None,
};
