//! The web UI's privileges: reading the history and the live feed, serving on its own
//! port, nothing else. It runs as whoever starts it (never root), and neither Landlock
//! nor seccomp lets it write a file, connect over TCP or execute anything.
use crate::confine::{FEED_CLIENT, HISTORY_READER, LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Family, FileAccess, FileRule, Network, Place, Policy, Syscall, User};
use syscalls::Sysno;

const OWN: &[Syscall] = &[
    any(Sysno::accept4, Family::Sockets, "taking connections on the sockets bound before confinement"),
    any(Sysno::recvfrom, Family::Sockets, "reading requests"),
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
    syscalls: &[RUNTIME, LINK_SENDS, HISTORY_READER, FEED_CLIENT, OWN],
    unfiltered: None,
    unlandlocked: None,
};
