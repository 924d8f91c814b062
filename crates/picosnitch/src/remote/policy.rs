//! The remote role's privileges: its spool, and the one socket the supervisor gives it.
use crate::confine::{LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Capability, Family, FileAccess, FileRule, Kept, Network, Place, Policy, Syscall, User};
use syscalls::Sysno;

const OWN: &[Syscall] = &[
    #[cfg(target_arch = "x86_64")]
    any(Sysno::open, Family::Files, "spool segments"),
    any(Sysno::pread64, Family::Files, "reading spooled records"),
    any(Sysno::getdents64, Family::Files, "listing the spool's segments"),
    any(Sysno::unlinkat, Family::Files, "removing delivered spool segments"),
    #[cfg(target_arch = "x86_64")]
    any(Sysno::unlink, Family::Files, "removing delivered spool segments"),
    any(Sysno::recvfrom, Family::Sockets, "reading from the database connection it was given"),
    any(Sysno::shutdown, Family::Sockets, "closing the database connection"),
];

pub static POLICY: Policy = Policy {
    role: "remote",
    job: "delivers the spooled rows to the remote database (only with [database.remote])",
    user: User::Service,
    starts_with: &[Kept {
        cap: Capability::CAP_DAC_READ_SEARCH,
        why: "reading password_file and ca_file whoever owns them, before it confines itself",
    }],
    keeps: &[],
    files: &[FileRule { place: Place::Spool, access: FileAccess::ReadWrite, why: "reads spooled batches, removes delivered segments" }],
    network: Network::HandedOver { why: "TLS and the PostgreSQL protocol run in the role; DNS and connect() in the supervisor" },
    untrusted: Some("the database server's answers (TLS records, protocol messages) and rows derived from command lines"),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, OWN],
    unfiltered: None,
    unlandlocked: None,
};
