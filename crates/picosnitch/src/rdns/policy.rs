//! The rdns role's privileges: nothing but its links and the UDP socket the supervisor
//! connected to the resolver before starting it.
use crate::confine::RUNTIME;
use picosnitch_sandbox::{any, Allow, Family, Network, Policy, Syscall, User};
use syscalls::Sysno;

/// The resolver's socket, as a seccomp argument.
const RESOLVER: u64 = super::RESOLVER_FD as u64;

const OWN: &[Syscall] = &[
    any(Sysno::recvfrom, Family::Sockets, "replies on the resolver's socket it was given"),
    // Instead of the shared LINK_SENDS: a destination given with sendmsg or sendto would
    // take a datagram on the resolver's socket elsewhere than the resolver.
    Syscall {
        call: Sysno::sendmsg,
        allow: Allow::ArgNot { index: 0, value: RESOLVER },
        family: Family::Links,
        why: "messages on its links; logs to journald; never on the resolver's socket (fd 5), where it could name another destination",
    },
    Syscall { call: Sysno::sendto, allow: Allow::ArgNot { index: 0, value: RESOLVER }, family: Family::Links, why: "logs to journald" },
    Syscall {
        call: Sysno::sendto,
        allow: Allow::ArgIn { index: 4, values: &[0] },
        family: Family::Sockets,
        why: "queries on the resolver's socket, with no destination: only to the address it is connected to",
    },
];

pub static POLICY: Policy = Policy {
    role: "rdns",
    job: "reverse DNS (PTR) lookups of addresses nothing else named (only with [monitoring] reverse_dns)",
    user: User::Service,
    starts_with: &[],
    keeps: &[],
    files: &[],
    network: Network::HandedOver {
        why: "UDP, connected to the resolver: the kernel delivers it datagrams from that address and port only, and it may send on it only without naming a destination (seccomp: no sendmsg on that socket, sendto only with none), so only to the resolver (Landlock does not govern UDP; without socket() it has no other socket)",
    },
    untrusted: Some("DNS replies from the network"),
    scoped: true,
    syscalls: &[RUNTIME, OWN],
    unfiltered: None,
    unlandlocked: None,
};
