//! The terminal UIs' privileges: `top` reads the live feed, `tui` the history and the
//! live feed, and neither may write a file, reach the network or execute anything.
//! Their terminal is the one they inherit on stdin and stdout: no device is opened.
use crate::confine::{FEED_CLIENT, HISTORY_READER, LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{Allow, Family, FileAccess, FileRule, Network, Place, Policy, Syscall, User};
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
    syscalls: &[RUNTIME, LINK_SENDS, TERMINAL, FEED_CLIENT],
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
    syscalls: &[RUNTIME, LINK_SENDS, TERMINAL, FEED_CLIENT, HISTORY_READER],
    unfiltered: None,
    unlandlocked: None,
};
