//! The rdns role's privileges: nothing but its links and the UDP socket the supervisor
//! connected to the resolver before starting it.
use crate::confine::RUNTIME;
use picosnitch_sandbox::{any, Family, Network, Policy, Syscall, User};
use syscalls::Sysno;

const OWN: &[Syscall] = &[
    any(Sysno::recvfrom, Family::Sockets, "replies on the resolver's socket it was given"),
];

pub static POLICY: Policy = Policy {
    role: "rdns",
    job: "reverse DNS (PTR) lookups of addresses nothing else named (only with [monitoring] reverse_dns)",
    user: User::Service,
    starts_with: &[],
    keeps: &[],
    files: &[],
    network: Network::HandedOver {
        why: "UDP, connected to the resolver: the kernel delivers it datagrams from that address and port only (Landlock does not govern UDP; without socket() it has no other socket); seccomp cannot read sendmsg's destination, so a datagram to another address on that socket is not refused",
    },
    untrusted: Some("DNS replies from the network"),
    scoped: true,
    syscalls: &[RUNTIME, OWN],
    unfiltered: None,
    unlandlocked: None,
};
