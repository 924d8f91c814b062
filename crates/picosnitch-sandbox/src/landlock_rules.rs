//! Landlock: what a role may reach in the filesystem and over TCP.
use crate::error::SandboxError;
use crate::policy::{FileAccess, Network, Place, Policy};
use crate::Context;
use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use std::path::{Path, PathBuf};

/// The newest ABI this build knows; the kernel's own is read at run time.
const NEWEST: ABI = ABI::V6;

fn ll(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Landlock(e.to_string())
}

fn resolve(place: Place, ctx: &Context) -> Vec<PathBuf> {
    let p = match place {
        Place::Path(p) => PathBuf::from(p),
        Place::StateDir => ctx.state_dir.clone(),
        Place::Spool => ctx.spool_dir.clone(),
        Place::RuntimeDir => ctx.runtime_dir.clone(),
        Place::OwnExecutable => ctx.own_exe.clone(),
        Place::OwnInterpreter => match interpreter() {
            Some(p) => p,
            None => return Vec::new(),
        },
        Place::RootExcept(except) => {
            let Ok(entries) = std::fs::read_dir("/") else { return Vec::new() };
            return entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| !except.iter().any(|x| Path::new(x) == p.as_path()))
                .collect();
        }
    };
    // A rule for a path this machine does not have is no rule at all.
    if p.exists() {
        vec![p]
    } else {
        Vec::new()
    }
}

fn rights(access: FileAccess, abi: ABI, is_dir: bool) -> BitFlags<AccessFs> {
    let r = match access {
        FileAccess::Read => AccessFs::from_read(abi) & !AccessFs::Execute,
        FileAccess::ReadWrite => (AccessFs::from_read(abi) | AccessFs::from_write(abi)) & !AccessFs::Execute,
        FileAccess::Execute => AccessFs::from_read(abi),
    };
    if is_dir {
        r
    } else {
        // Rules on a file may only hold rights that apply to files.
        r & AccessFs::from_file(abi)
    }
}

/// Restricts this process; returns the enforcement status as one phrase.
pub(crate) fn restrict(policy: &Policy, ctx: &Context) -> Result<String, SandboxError> {
    let abi = current_abi();
    if abi == ABI::Unsupported {
        let why = "not enforced: this kernel has no Landlock (or it is not in the lsm= list)".to_string();
        tracing::warn!(role = policy.role, "Landlock {why}; the role relies on its user, capabilities and seccomp");
        return Ok(why);
    }
    let abi = if (abi as i32) > (NEWEST as i32) { NEWEST } else { abi };
    // Roles that parse untrusted data refuse to run less confined than they can be.
    let level = if policy.untrusted.is_some() { CompatLevel::HardRequirement } else { CompatLevel::BestEffort };
    let mut ruleset = Ruleset::default().set_compatibility(level).handle_access(AccessFs::from_all(abi)).map_err(ll)?;
    let net_rules = abi as i32 >= ABI::V4 as i32;
    if net_rules {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi)).map_err(ll)?;
    }
    if policy.scoped && abi as i32 >= ABI::V6 as i32 {
        ruleset = ruleset.scope(Scope::AbstractUnixSocket | Scope::Signal).map_err(ll)?;
    }
    let mut created = ruleset.create().map_err(ll)?;
    for rule in policy.files {
        for path in resolve(rule.place, ctx) {
            let fd = PathFd::new(&path).map_err(|e| SandboxError::Landlock(format!("opening {}: {e}", path.display())))?;
            let is_dir = path.is_dir();
            created = created.add_rule(PathBeneath::new(fd, rights(rule.access, abi, is_dir))).map_err(ll)?;
        }
    }
    // With the network access handled and no rule, every TCP bind and connect is
    // refused (the remote role only uses the socket it is given); a ConnectPort role
    // (virustotal) may connect to its one port, a BindConfigured one (the web UI) bind
    // its own.
    if net_rules {
        if let (Network::ConnectPort { .. }, Some(port)) = (policy.network, ctx.connect_port) {
            created = created.add_rule(NetPort::new(port, AccessNet::ConnectTcp)).map_err(ll)?;
        }
        if let (Network::BindConfigured { .. }, Some(port)) = (policy.network, ctx.bind_port) {
            created = created.add_rule(NetPort::new(port, AccessNet::BindTcp)).map_err(ll)?;
        }
    }
    let status = created.restrict_self().map_err(ll)?;
    let phrase = match status.ruleset {
        RulesetStatus::FullyEnforced => format!("fully enforced (ABI {})", abi as i32),
        RulesetStatus::PartiallyEnforced => format!("partially enforced (ABI {})", abi as i32),
        RulesetStatus::NotEnforced => "not enforced".to_string(),
    };
    if let (Some(untrusted), RulesetStatus::NotEnforced) = (policy.untrusted, &status.ruleset) {
        return Err(SandboxError::LandlockRequired { role: policy.role, untrusted, status: phrase });
    }
    Ok(phrase)
}

/// The file the dynamic loader was mapped from: the mapping that holds AT_BASE.
fn interpreter() -> Option<PathBuf> {
    // SAFETY: getauxval only reads the process's auxiliary vector.
    let base = unsafe { libc::getauxval(libc::AT_BASE) };
    if base == 0 {
        return None; // a static binary
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        let range = parts.next()?;
        let (start, end) = range.split_once('-')?;
        let (start, end) = (u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?);
        let path = parts.nth(4)?;
        (start <= base && base < end && path.starts_with('/')).then(|| PathBuf::from(path))
    })
}

/// The kernel's Landlock ABI.
pub(crate) fn current_abi() -> ABI {
    // SAFETY: landlock_create_ruleset with a null attribute and the VERSION flag only
    // returns the ABI version (or an error); it creates nothing.
    let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32) };
    match v {
        v if v >= 6 => ABI::V6,
        5 => ABI::V5,
        4 => ABI::V4,
        3 => ABI::V3,
        2 => ABI::V2,
        1 => ABI::V1,
        _ => ABI::Unsupported,
    }
}
