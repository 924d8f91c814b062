//! The dimensions the API groups and filters by: the TUI's, by short names that match
//! the live feed's keys (`exe`, `pname`, `rport`, ...), plus network namespaces.
use picosnitch_store::{Dimension, ExeField, Role};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DimDef {
    /// The name in `group=`, `by=` and filters (`f=rport:443`).
    pub id: &'static str,
    /// The column heading.
    pub label: &'static str,
    /// Process, Parent, Grandparent, Network or Time.
    pub section: &'static str,
    /// Whether its values are numbers (users, ports, namespaces, times).
    pub numeric: bool,
}

const fn d(id: &'static str, label: &'static str, section: &'static str, numeric: bool) -> DimDef {
    DimDef { id, label, section, numeric }
}

pub const DIMS: [DimDef; 20] = [
    d("exe", "Executable", "Process", false),
    d("name", "Name", "Process", false),
    d("cmdline", "Command", "Process", false),
    d("sha256", "SHA256", "Process", false),
    d("pexe", "Parent executable", "Parent", false),
    d("pname", "Parent name", "Parent", false),
    d("pcmdline", "Parent command", "Parent", false),
    d("psha256", "Parent SHA256", "Parent", false),
    d("gpexe", "Grandparent executable", "Grandparent", false),
    d("gpname", "Grandparent name", "Grandparent", false),
    d("gpcmdline", "Grandparent command", "Grandparent", false),
    d("gpsha256", "Grandparent SHA256", "Grandparent", false),
    d("user", "User", "Network", true),
    d("lport", "Local port", "Network", true),
    d("rport", "Remote port", "Network", true),
    d("laddr", "Local address", "Network", false),
    d("raddr", "Remote address", "Network", false),
    d("domain", "Domain", "Network", false),
    d("netns", "Network namespace", "Network", true),
    d("time", "Time", "Time", true),
];

pub fn find(id: &str) -> Option<&'static DimDef> {
    DIMS.iter().find(|d| d.id == id)
}

fn exe(i: usize) -> Dimension {
    let role = [Role::Process, Role::Parent, Role::Grandparent][i / 4];
    let field = [ExeField::Executable, ExeField::Name, ExeField::Command, ExeField::Sha256][i % 4];
    Dimension::Exe(role, field)
}

/// The store's dimension; `time_width` is the bucket width of `time`.
pub fn dimension(def: &DimDef, time_width: i64) -> Dimension {
    let i = DIMS.iter().position(|x| x.id == def.id).unwrap_or(0);
    match def.id {
        "user" => Dimension::User,
        "lport" => Dimension::LocalPort,
        "rport" => Dimension::RemotePort,
        "laddr" => Dimension::LocalAddress,
        "raddr" => Dimension::RemoteAddress,
        "domain" => Dimension::Domain,
        "netns" => Dimension::Netns,
        "time" => Dimension::Time { width: time_width },
        _ => exe(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_the_store_dimensions() {
        let get = |id| dimension(find(id).expect(id), 60);
        assert_eq!(get("exe"), Dimension::Exe(Role::Process, ExeField::Executable));
        assert_eq!(get("psha256"), Dimension::Exe(Role::Parent, ExeField::Sha256));
        assert_eq!(get("gpcmdline"), Dimension::Exe(Role::Grandparent, ExeField::Command));
        assert_eq!(get("raddr"), Dimension::RemoteAddress);
        assert_eq!(get("time"), Dimension::Time { width: 60 });
        assert!(find("bogus").is_none());
    }
}
