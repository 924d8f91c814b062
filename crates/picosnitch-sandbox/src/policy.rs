//! A role's privileges, as data. Every entry says why it is there: the README's
//! privilege table is rendered from these values and a test keeps the two equal.
pub use caps::Capability;
use syscalls::Sysno;

/// The overflow uid (`nobody`): owns no file and no process of its own on any Linux
/// system, so a process running as it can reach only what its group and "other"
/// permissions allow.
pub const NOBODY_UID: u32 = 65_534;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    /// Stays root (only the supervisor).
    Root,
    /// The service user (`[data] owner`).
    Service,
    /// Whoever started it, kept as is (with its groups); started by root, the user
    /// named in [`crate::Context::run_as`], and without one it refuses to run. For
    /// programs people start themselves (the web UI), not daemon roles.
    Invoker,
    /// Whoever started it, kept as is (with its groups); started by root, `nobody`
    /// ([`NOBODY_UID`]) with the history's group (`[data] group`, the context's
    /// service gid) as its only group: it reads what a member of that group may read
    /// and nothing root could. For the terminal UIs, which a person starts in a shell
    /// where asking whom to become would be a nuisance.
    Viewer,
    /// The desktop user (`[desktop] user`), never root.
    Desktop,
}

/// A capability kept, and why.
#[derive(Debug, Clone, Copy)]
pub struct Kept {
    pub cap: Capability,
    pub why: &'static str,
}

/// Where a file rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A fixed path (rules for paths that do not exist on this machine are skipped).
    Path(&'static str),
    /// The history's directory (`[database] path`'s parent).
    StateDir,
    /// The remote database's spool (`remote-spool` in the history's directory).
    Spool,
    /// `[data] runtime_dir`.
    RuntimeDir,
    /// This binary itself.
    OwnExecutable,
    /// This binary's ELF interpreter (the dynamic loader), which execve also executes;
    /// nothing for a static binary.
    OwnInterpreter,
    /// Every entry of `/` at start but these: "everywhere but configuration and secrets".
    RootExcept(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    /// Open files and list directories, read-only.
    Read,
    /// Read, write, create, rename and remove files beneath.
    ReadWrite,
    /// Execute (and read) files beneath.
    Execute,
}

#[derive(Debug, Clone, Copy)]
pub struct FileRule {
    pub place: Place,
    pub access: FileAccess,
    pub why: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// No TCP bind or connect (Landlock), no inet sockets at all (seccomp).
    None,
    /// No TCP (Landlock) and no inet sockets (seccomp); Unix stream sockets only, to
    /// reach the desktop user's session bus.
    UnixOnly { why: &'static str },
    /// Only a socket the supervisor connected to the configured host and port and
    /// handed over; the role itself may not create, bind or connect any (seccomp: no
    /// socket(); Landlock: no TCP connect or bind).
    HandedOver { why: &'static str },
    /// TCP connect to one configured port only (Landlock, where the kernel has TCP
    /// rules: ABI 4); the role resolves names and connects itself.
    ConnectPort { why: &'static str },
    /// Not restricted by the role itself (it has no Landlock), and why that is safe.
    NotRestricted { why: &'static str },
    /// TCP bind on [`crate::Context::bind_port`] only, and no TCP connect (Landlock).
    BindConfigured { why: &'static str },
}

/// How a system call's arguments are restricted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    Any,
    /// Only when argument `index` is one of `values`.
    ArgIn { index: u8, values: &'static [u64] },
    /// Only when argument `index` is not `value` (another entry for the same call may
    /// allow more: entries are alternatives).
    ArgNot { index: u8, value: u64 },
}

/// Groups calls for the README table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Memory,
    Threads,
    Time,
    Events,
    Files,
    Links,
    Sockets,
    Bpf,
    Process,
    Signals,
    Identity,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Memory => "memory",
            Family::Threads => "threads",
            Family::Time => "time",
            Family::Events => "event loop",
            Family::Files => "files",
            Family::Links => "links (sendmsg/recvmsg on inherited sockets)",
            Family::Sockets => "sockets",
            Family::Bpf => "bpf map reads",
            Family::Process => "process",
            Family::Signals => "signals",
            Family::Identity => "identity",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Syscall {
    pub call: Sysno,
    pub allow: Allow,
    pub family: Family,
    pub why: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub role: &'static str,
    /// The role's job, one line.
    pub job: &'static str,
    pub user: User,
    /// Capabilities held only until the role has opened what it needs (given by the
    /// supervisor at start, gone after confinement).
    pub starts_with: &'static [Kept],
    /// Capabilities kept for the role's whole life.
    pub keeps: &'static [Kept],
    pub files: &'static [FileRule],
    pub network: Network,
    /// The untrusted data the role parses, if any: then Landlock is a hard requirement
    /// whenever the kernel has it.
    pub untrusted: Option<&'static str>,
    /// Confine signals and abstract UNIX sockets to the role's own Landlock domain
    /// (Landlock ABI 6); not for the supervisor, whose sd_notify socket may be abstract.
    pub scoped: bool,
    /// Lists of allowed calls (shared ones and the role's own).
    pub syscalls: &'static [&'static [Syscall]],
    /// Why this role installs no seccomp filter at all (then `syscalls` is empty).
    pub unfiltered: Option<&'static str>,
    /// Why this role enforces no Landlock ruleset at all (then `files` is empty).
    pub unlandlocked: Option<&'static str>,
}

impl Policy {
    pub fn kept_capabilities(&self) -> Vec<Capability> {
        self.keeps.iter().map(|k| k.cap).collect()
    }

    /// Every allowed call, the shared lists first.
    pub fn all_syscalls(&self) -> impl Iterator<Item = &Syscall> {
        self.syscalls.iter().flat_map(|list| list.iter())
    }
}

/// Shorthand for policy tables: a call allowed with any arguments.
pub const fn any(call: Sysno, family: Family, why: &'static str) -> Syscall {
    Syscall { call, allow: Allow::Any, family, why }
}
