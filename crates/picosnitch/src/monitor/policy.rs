//! The monitor's privileges: the kernel capabilities to load and attach the BPF
//! programs, then none; afterwards it only reads the maps it holds.
use crate::confine::{LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Allow, Capability, Family, Kept, Network, Policy, Syscall, User};
use syscalls::Sysno;

/// bpf(2) commands on maps and programs it already holds: lookup, delete, iterate; and
/// the information of its programs (how many runs the kernel skipped).
const HELD_FD_COMMANDS: &[u64] = &[1, 3, 4, picosnitch_bpf::skipped_runs::BPF_OBJ_GET_INFO_BY_FD];

const OWN: &[Syscall] = &[
    Syscall {
        call: Sysno::bpf,
        allow: Allow::ArgIn { index: 0, values: HELD_FD_COMMANDS },
        family: Family::Bpf,
        why: "reading and deleting the kernel's flow counters, reading its programs' skipped runs; never loading anything",
    },
    any(Sysno::pidfd_open, Family::Process, "whether the process behind a flow still exists"),
    any(Sysno::pread64, Family::Files, "the runtime reading its own files"),
];

pub static POLICY: Policy = Policy {
    role: "monitor",
    job: "loads and attaches the BPF programs, drains their ring buffer and counters",
    user: User::Service,
    starts_with: &[
        Kept { cap: Capability::CAP_BPF, why: "loading the BPF programs and creating their maps" },
        Kept { cap: Capability::CAP_PERFMON, why: "tracing programs (tp_btf, fexit)" },
        Kept { cap: Capability::CAP_NET_ADMIN, why: "cgroup socket programs" },
        Kept { cap: Capability::CAP_SYS_ADMIN, why: "attaching to the root cgroup" },
        Kept { cap: Capability::CAP_SYS_PTRACE, why: "reading /proc/PID/exe of every process running at start" },
        Kept { cap: Capability::CAP_DAC_READ_SEARCH, why: "reading /proc/PID of every process running at start" },
    ],
    keeps: &[],
    files: &[],
    network: Network::None,
    untrusted: Some("kernel records describing any process's traffic"),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, OWN],
    unfiltered: None,
    unlandlocked: None,
};
