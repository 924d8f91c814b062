//! The hasher's privileges: nothing but the descriptors it is handed.
use crate::confine::{LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Family, Network, Policy, Syscall, User};
use syscalls::Sysno;

const OWN: &[Syscall] = &[
    any(Sysno::pread64, Family::Files, "reading the executables it is handed, by offset"),
    any(Sysno::lseek, Family::Files, "file sizes of the executables it is handed"),
];

pub static POLICY: Policy = Policy {
    role: "hasher",
    job: "sha256 of executables it receives as open descriptors",
    user: User::Service,
    starts_with: &[],
    keeps: &[],
    files: &[],
    network: Network::None,
    untrusted: Some("the contents of any executable on the machine"),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, OWN],
    unfiltered: None,
    unlandlocked: None,
};
