//! The web UI's privileges: reading the history and the live feed, serving on its own
//! port, nothing else. It runs as whoever starts it (never root), and neither Landlock
//! nor seccomp lets it write a file, connect over TCP or execute anything.
use crate::confine::{LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Allow, Family, FileAccess, FileRule, Network, Place, Policy, Syscall, User};
use syscalls::Sysno;

const OWN: &[Syscall] = &[
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
    Syscall {
        call: Sysno::socket,
        allow: Allow::ArgIn { index: 0, values: &[libc::AF_UNIX as u64] },
        family: Family::Sockets,
        why: "(re)connecting to the live feed when the daemon restarts: Unix sockets only",
    },
    any(Sysno::connect, Family::Sockets, "the live feed's Unix socket (Landlock allows no TCP connect)"),
    any(Sysno::accept4, Family::Sockets, "taking connections on the sockets bound before confinement"),
    any(Sysno::recvfrom, Family::Sockets, "reading requests and the live feed"),
    any(Sysno::shutdown, Family::Sockets, "closing connections"),
    any(Sysno::setsockopt, Family::Sockets, "socket options of accepted connections"),
    any(Sysno::getsockname, Family::Sockets, "addresses of accepted connections"),
    any(Sysno::getpeername, Family::Sockets, "addresses of accepted connections"),
];

pub static POLICY: Policy = Policy {
    role: "webui",
    job: "`picosnitch webui`: the history and the live feed in the browser",
    user: User::Invoker,
    starts_with: &[],
    keeps: &[],
    files: &[
        FileRule { place: Place::StateDir, access: FileAccess::Read, why: "the history, read-only: SQLite cannot write it or its journals" },
        FileRule { place: Place::RuntimeDir, access: FileAccess::Read, why: "the live feed socket" },
        FileRule { place: Place::Path("/dev/urandom"), access: FileAccess::Read, why: "SQLite's randomness" },
    ],
    network: Network::BindConfigured { why: "its sockets are bound before confinement; it connects nowhere over TCP" },
    untrusted: Some("HTTP requests from any local program"),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, OWN],
    unfiltered: None,
    unlandlocked: None,
};
