//! The desktop user's hasher's privileges: that user's rights, read-only, over the
//! places executables are run from, and nothing else.
use crate::confine::{LINK_SENDS, RUNTIME};
use picosnitch_sandbox::{any, Family, FileAccess, FileRule, Network, Place, Policy, Syscall, User};
use syscalls::Sysno;

const OWN: &[Syscall] = &[
    #[cfg(target_arch = "x86_64")]
    any(Sysno::open, Family::Files, "executables by path, read-only (as the desktop user)"),
    any(Sysno::pread64, Family::Files, "reading the executables it hashes, by offset"),
    any(Sysno::lseek, Family::Files, "file sizes of the executables it hashes"),
];

pub static POLICY: Policy = Policy {
    role: "user-hasher",
    job: "sha256 of executables the service cannot open (FUSE mounts, AppImages), opened by path as the desktop user",
    user: User::Desktop,
    starts_with: &[],
    keeps: &[],
    files: &[FileRule {
        // The user's own FUSE mounts live under /run/user/UID (gvfs, the document
        // portal), /home, /tmp and /media; AppImages mount under /tmp. Configuration
        // and secrets in /etc, /proc and devices are not executables.
        place: Place::RootExcept(&["/etc", "/boot", "/dev", "/sys", "/proc", "/lost+found"]),
        access: FileAccess::Read,
        why: "executables by path wherever they were run from (FUSE mounts under /run/user, /home, /tmp, /media), with the desktop user's own rights",
    }],
    network: Network::None,
    untrusted: Some("the contents of executables only the desktop user can read"),
    scoped: true,
    syscalls: &[RUNTIME, LINK_SENDS, OWN],
    unfiltered: None,
    unlandlocked: None,
};
