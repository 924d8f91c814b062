use std::io;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the {role} role must confine itself while single-threaded, but it has {threads} threads")]
    Threads { role: &'static str, threads: usize },
    #[error("{what}: {source}")]
    Io { what: &'static str, source: io::Error },
    #[error("{what}: {source}")]
    Caps { what: String, source: caps::errors::CapsError },
    #[error("the {role} role needs {missing}, which this process does not have: add them to the service's CapabilityBoundingSet (see `picosnitch privileges`), or start it as root with full capabilities")]
    MissingCapabilities { role: &'static str, missing: String },
    #[error("Landlock: {0}")]
    Landlock(String),
    #[error("Landlock is required for the {role} role, which parses {untrusted}, and the kernel has it, but it is only {status}")]
    LandlockRequired { role: &'static str, untrusted: &'static str, status: String },
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("the {role} does not run as root: name the unprivileged user it should become")]
    RootInvoker { role: &'static str },
    #[error("the {role} role runs as the desktop user, and none other than root is configured: set [desktop] user to the user who should see notifications")]
    NoDesktopUser { role: &'static str },
    #[error("{0} is not an absolute path")]
    RelativePath(String),
}

impl SandboxError {
    pub(crate) fn os(what: &'static str) -> SandboxError {
        SandboxError::Io { what, source: io::Error::last_os_error() }
    }
}
