//! The supervisor's privileges: what its roles start with (they drop it), and the
//! files it keeps itself.
use picosnitch_sandbox::{Capability, Kept, Network, Policy, User};

pub static POLICY: Policy = Policy {
    role: "supervisor",
    job: "starts and restarts the roles, reports readiness and status",
    user: User::Root,
    starts_with: &[],
    keeps: &[
        Kept { cap: Capability::CAP_BPF, why: "for the monitor it starts (the monitor drops it after attaching)" },
        Kept { cap: Capability::CAP_PERFMON, why: "for the monitor it starts" },
        Kept { cap: Capability::CAP_NET_ADMIN, why: "for the monitor it starts" },
        Kept { cap: Capability::CAP_SYS_ADMIN, why: "for the monitor it starts" },
        Kept { cap: Capability::CAP_SYS_PTRACE, why: "for the monitor and the opener it starts" },
        Kept { cap: Capability::CAP_DAC_READ_SEARCH, why: "for the monitor, primary and opener it starts" },
        Kept { cap: Capability::CAP_SETUID, why: "roles change to the service user" },
        Kept { cap: Capability::CAP_SETGID, why: "roles change to the service group" },
        Kept { cap: Capability::CAP_SETPCAP, why: "roles cut their bounding sets" },
        Kept { cap: Capability::CAP_CHOWN, why: "the history's and runtime directories belong to the service user and group" },
        Kept { cap: Capability::CAP_KILL, why: "stopping roles that run as the service user" },
    ],
    files: &[],
    network: Network::NotRestricted { why: "it opens no connection itself (only systemd's notify socket)" },
    untrusted: None,
    scoped: false,
    syscalls: &[],
    unfiltered: Some("every role inherits its parent's filter, so the supervisor's would have to allow all of theirs; each role installs its own"),
    unlandlocked: Some("its roles would inherit its domain, and Landlock refuses ptrace-mode access across domains: the monitor must read /proc/PID/exe of every running process once at start, before it confines itself"),
};
