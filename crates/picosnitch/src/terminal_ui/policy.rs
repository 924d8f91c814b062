//! The terminal UIs' privileges: `top` reads the live feed, `tui` the history and the
//! live feed, and neither may write a file, reach the network or execute anything.
//! Their terminal is the one they inherit on stdin and stdout: no device is opened.
use crate::confine::{LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Allow, Family, FileAccess, FileRule, Network, Place, Policy, Syscall, User};
use syscalls::Sysno;

/// What both UIs draw: rows from the feed or the history, which hold command lines,
/// process and domain names chosen by any local program.
const UNTRUSTED: &str = "rows with command lines and names any local program chooses, drawn on a terminal";

const TIME_ZONE: [FileRule; 2] = [
    FileRule { place: Place::Path("/etc/localtime"), access: FileAccess::Read, why: "the local time zone (read at start; allowed should a lookup come later)" },
    FileRule { place: Place::Path("/usr/share/zoneinfo"), access: FileAccess::Read, why: "the time zone database /etc/localtime points into" },
];

/// The terminal: its input thread (crossterm's reader, with its SIGWINCH pipe).
const TERMINAL: &[Syscall] = &[
    Syscall {
        call: Sysno::socketpair,
        allow: Allow::ArgIn { index: 0, values: &[libc::AF_UNIX as u64] },
        family: Family::Sockets,
        why: "the terminal reader's wake-up pipe for SIGWINCH (signal-hook-mio): Unix sockets only",
    },
];

/// The live feed's client.
const FEED: &[Syscall] = &[
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

/// SQLite reading the history.
const HISTORY: &[Syscall] = &[
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

pub static TOP: Policy = Policy {
    role: "top",
    job: "`picosnitch top`: the live feed in the terminal",
    user: User::Viewer,
    starts_with: &[],
    keeps: &[],
    files: &[
        FileRule { place: Place::RuntimeDir, access: FileAccess::Read, why: "the live feed socket" },
        TIME_ZONE[0],
        TIME_ZONE[1],
    ],
    network: Network::UnixOnly { why: "the live feed's socket; no TCP (Landlock), no inet socket (seccomp)" },
    untrusted: Some(UNTRUSTED),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, TERMINAL, FEED],
    unfiltered: None,
    unlandlocked: None,
};

pub static TUI: Policy = Policy {
    role: "tui",
    job: "`picosnitch tui`: the history (and the live feed) in the terminal",
    user: User::Viewer,
    starts_with: &[],
    keeps: &[],
    files: &[
        FileRule { place: Place::StateDir, access: FileAccess::Read, why: "the history, read-only: SQLite cannot write it or its journals" },
        FileRule { place: Place::RuntimeDir, access: FileAccess::Read, why: "the live feed socket" },
        FileRule { place: Place::Path("/dev/urandom"), access: FileAccess::Read, why: "SQLite's randomness" },
        FileRule { place: Place::Path("/etc/group"), access: FileAccess::Read, why: "naming the group that may read the history, when this user may not" },
        TIME_ZONE[0],
        TIME_ZONE[1],
    ],
    network: Network::UnixOnly { why: "the live feed's socket; no TCP (Landlock), no inet socket (seccomp)" },
    untrusted: Some(UNTRUSTED),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, TERMINAL, FEED, HISTORY],
    unfiltered: None,
    unlandlocked: None,
};
