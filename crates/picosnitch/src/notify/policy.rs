//! The notify role's privileges: the desktop user, and a Unix socket to its session bus.
use crate::confine::{LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Allow, Family, Network, Policy, Syscall, User};
use syscalls::Sysno;

const OWN: &[Syscall] = &[
    Syscall {
        call: Sysno::socket,
        allow: Allow::ArgIn { index: 0, values: &[libc::AF_UNIX as u64] },
        family: Family::Sockets,
        why: "a Unix socket to the session bus, for each notification (only AF_UNIX)",
    },
    any(Sysno::connect, Family::Sockets, "the session bus at /run/user/UID/bus"),
    any(Sysno::shutdown, Family::Sockets, "closing the bus connection"),
    any(Sysno::getsockname, Family::Sockets, "zbus checks its socket"),
    any(Sysno::getpeername, Family::Sockets, "zbus checks its socket"),
    any(Sysno::setsockopt, Family::Sockets, "zbus sets SO_PASSCRED for the bus's credentials check"),
    any(Sysno::recvfrom, Family::Sockets, "reading the bus"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::readlink, Family::Files, "notify-rust names a new notification after /proc/self/exe (its own binary)"),
    any(Sysno::readlinkat, Family::Files, "notify-rust names a new notification after /proc/self/exe (its own binary)"),
    any(Sysno::geteuid, Family::Identity, "the bus's EXTERNAL authentication sends the user's uid"),
    any(Sysno::getuid, Family::Identity, "the bus's EXTERNAL authentication sends the user's uid"),
];

pub static POLICY: Policy = Policy {
    role: "notify",
    job: "desktop notifications over the desktop user's session bus (D-Bus)",
    user: User::Desktop,
    starts_with: &[],
    keeps: &[],
    files: &[],
    network: Network::UnixOnly { why: "the desktop user's session bus, /run/user/UID/bus (Landlock does not govern Unix sockets by path; the bus checks the uid)" },
    untrusted: Some("process names and paths chosen by any user (the notices' text)"),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, OWN],
    unfiltered: None,
    unlandlocked: None,
};
