//! Supervisor <-> role: which links a role gets, when to stop, and what it reports.
use crate::status::RoleStatus;
use serde::{Deserialize, Serialize};

pub use crate::status;

/// The processes of the pipeline. The supervisor is not one of them: it starts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Monitor,
    Primary,
    Hasher,
    Writer,
    /// Delivers the spooled rows to the remote database (only when one is configured).
    Remote,
    /// Optional: started only with a `[virustotal]` API key.
    VirusTotal,
    /// Desktop notifications, as the desktop user (only with `[desktop] user` set).
    Notify,
    /// Hashes, as the desktop user, executables the service cannot open (FUSE mounts,
    /// AppImages); only with `[desktop] user` set.
    UserHasher,
    /// Opens `/proc/PID/exe` for the primary when the path the kernel reported no
    /// longer leads to the binary (deleted, replaced, or in another mount namespace).
    Opener,
    /// Reverse DNS lookups (only with `[monitoring] reverse_dns`).
    ReverseDns,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Monitor,
        Role::Primary,
        Role::Hasher,
        Role::Writer,
        Role::Remote,
        Role::VirusTotal,
        Role::Notify,
        Role::UserHasher,
        Role::Opener,
        Role::ReverseDns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Monitor => "monitor",
            Role::Primary => "primary",
            Role::Hasher => "hasher",
            Role::Writer => "writer",
            Role::Remote => "remote",
            Role::VirusTotal => "virustotal",
            Role::Notify => "notify",
            Role::UserHasher => "user-hasher",
            Role::Opener => "opener",
            Role::ReverseDns => "rdns",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The roles this one talks to directly. The primary is the hub.
    pub fn peers(self) -> &'static [Role] {
        match self {
            Role::Primary => &[Role::Monitor, Role::Hasher, Role::Writer, Role::VirusTotal, Role::Notify, Role::UserHasher, Role::Opener, Role::ReverseDns],
            // It reads the spool the writer fills; no link to anyone but the supervisor.
            Role::Remote => &[],
            _ => &[Role::Primary],
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Supervisor -> role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToRole {
    /// One descriptor attached: this role's end of a fresh link to `peer`. Sent at start
    /// and again whenever `peer` was restarted.
    Link { peer: Role },
    /// Finish what is in hand and exit.
    Stop,
    /// Attempt something the role's confinement must refuse (the sandbox tests), and
    /// report how it was refused; `arg` is its target where it has one.
    Probe { probe: String, arg: Option<String> },
    /// Answer to [`FromRole::Connect`], with the connected TCP socket attached; `peer`
    /// is the address it reached.
    Connected { peer: String },
    /// Answer to [`FromRole::Connect`]: why no connection could be made.
    ConnectFailed { error: String },
    /// For the notify role: something the supervisor saw (a role died, events lost).
    Notice(crate::notices::Notice),
}

/// Role -> supervisor.
// Status is the large variant and the common one (every role, every 2 s): boxing it
// would allocate for each report to save a few hundred bytes on the rare others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromRole {
    /// The monitor has its kernel hooks attached: the daemon is ready.
    Attached { hook_set: String, reason: String },
    /// Counters for `picosnitch status`, every couple of seconds.
    Status(RoleStatus),
    /// How a probe was refused (one that its seccomp policy forbids never reports: the
    /// role is stopped and the supervisor names the call).
    ProbeResult { probe: String, outcome: String },
    /// The remote role asks for a TCP connection to the configured database server.
    /// The supervisor resolves and connects to `[database.remote] host` and `port`,
    /// nothing else, and hands the socket over: the role itself may not connect at all.
    Connect,
}
