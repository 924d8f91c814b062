//! Capabilities and the user change.
use crate::error::SandboxError;
use caps::{CapSet, Capability, CapsHashSet};

fn caps_err(what: impl Into<String>) -> impl FnOnce(caps::errors::CapsError) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Caps { what, source }
}

/// Whether this process may change its bounding set (it holds CAP_SETPCAP).
pub(crate) fn may_cut_bounding_set() -> bool {
    caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false)
}

/// Fails, naming them, if capabilities the role keeps are not permitted to this process
/// (a service manager's CapabilityBoundingSet without them): later steps would only
/// report EPERM.
pub(crate) fn check_available(role: &'static str, keep: &[Capability]) -> Result<(), SandboxError> {
    let permitted = caps::read(None, CapSet::Permitted).map_err(caps_err("reading the permitted set"))?;
    let mut missing: Vec<String> = keep.iter().filter(|c| !permitted.contains(c)).map(|c| c.to_string()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    Err(SandboxError::MissingCapabilities { role, missing: missing.join(" ") })
}

/// Drops every capability but `keep` from the bounding set, so nothing this process (or
/// a child) executes can ever hold more.
pub(crate) fn cut_bounding_set(keep: &[Capability]) -> Result<(), SandboxError> {
    let bounding = caps::read(None, CapSet::Bounding).map_err(caps_err("reading the bounding set"))?;
    for cap in bounding {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(caps_err(format!("dropping {cap} from the bounding set")))?;
        }
    }
    Ok(())
}

/// Becomes `uid`/`gid` (no supplementary groups), keeping exactly `keep` as permitted
/// and effective capabilities, none inheritable or ambient.
pub(crate) fn become_user(uid: u32, gid: u32, keep: &[Capability]) -> Result<(), SandboxError> {
    // SAFETY: getuid/getgid have no preconditions.
    let (cur_uid, cur_gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if cur_uid != uid || cur_gid != gid {
        // Keep the permitted set across the change of uid; effective is rebuilt below.
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
            return Err(SandboxError::os("prctl(PR_SET_KEEPCAPS)"));
        }
        let groups = [gid];
        // SAFETY: one valid gid_t in the array for the length given.
        if unsafe { libc::setgroups(1, groups.as_ptr()) } != 0 {
            return Err(SandboxError::os("setgroups"));
        }
        // SAFETY: plain integer arguments.
        if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
            return Err(SandboxError::os("setresgid"));
        }
        // SAFETY: plain integer arguments.
        if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
            return Err(SandboxError::os("setresuid"));
        }
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) } != 0 {
            return Err(SandboxError::os("prctl(PR_SET_KEEPCAPS)"));
        }
    }
    let set: CapsHashSet = keep.iter().copied().collect();
    caps::clear(None, CapSet::Ambient).map_err(caps_err("clearing the ambient set"))?;
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new()).map_err(caps_err("clearing the inheritable set"))?;
    caps::set(None, CapSet::Effective, &set).map_err(caps_err("setting the effective set"))?;
    caps::set(None, CapSet::Permitted, &set).map_err(caps_err("setting the permitted set"))?;
    Ok(())
}
