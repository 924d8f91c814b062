//! The virustotal role's privileges: HTTPS to the API's port, name resolution, and the
//! descriptors it is handed (the API key's pipe, executables to upload).
use crate::confine::{LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Allow, Family, FileAccess, FileRule, Network, Place, Policy, Syscall, User};
use syscalls::Sysno;

const SOCKET_FAMILIES: &[u64] = &[libc::AF_INET as u64, libc::AF_INET6 as u64, libc::AF_UNIX as u64, libc::AF_NETLINK as u64];

const OWN: &[Syscall] = &[
    Syscall {
        call: Sysno::socket,
        allow: Allow::ArgIn { index: 0, values: SOCKET_FAMILIES },
        family: Family::Sockets,
        why: "TCP to the API; glibc's resolver: UDP to the name server, a Unix socket to nscd, netlink for the host's addresses",
    },
    any(Sysno::connect, Family::Sockets, "the API (Landlock: its port only) and the name server"),
    any(Sysno::bind, Family::Sockets, "glibc's resolver binds its netlink socket"),
    any(Sysno::getsockname, Family::Sockets, "glibc's resolver orders the addresses it found"),
    any(Sysno::setsockopt, Family::Sockets, "TCP_NODELAY and timeouts on the API connection; the resolver's socket options"),
    any(Sysno::recvfrom, Family::Sockets, "answers from the API and the name server"),
    any(Sysno::sendmmsg, Family::Sockets, "glibc's resolver asks for A and AAAA at once"),
    any(Sysno::pread64, Family::Files, "reading an executable it was handed, to upload it"),
    any(Sysno::lseek, Family::Files, "glibc reads the name service files (/etc/hosts, ...)"),
    any(Sysno::uname, Family::Process, "glibc's resolver"),
];

pub static POLICY: Policy = Policy {
    role: "virustotal",
    job: "asks VirusTotal about new executables' sha256 (optional, off without an API key)",
    user: User::Service,
    starts_with: &[],
    keeps: &[],
    files: &[
        FileRule { place: Place::Path("/etc/hosts"), access: FileAccess::Read, why: "resolving the API's host name" },
        FileRule { place: Place::Path("/etc/resolv.conf"), access: FileAccess::Read, why: "resolving the API's host name" },
        FileRule { place: Place::Path("/etc/nsswitch.conf"), access: FileAccess::Read, why: "resolving the API's host name" },
        FileRule { place: Place::Path("/etc/host.conf"), access: FileAccess::Read, why: "resolving the API's host name" },
        FileRule { place: Place::Path("/etc/gai.conf"), access: FileAccess::Read, why: "resolving the API's host name (address order)" },
    ],
    network: Network::ConnectPort { why: "the port of [virustotal] api_url (443); it resolves the host name itself" },
    untrusted: Some("answers from the network (TLS-verified)"),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, OWN],
    unfiltered: None,
    unlandlocked: None,
};
