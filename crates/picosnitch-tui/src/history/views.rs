//! The views of the sidebar, in the order Left/Right steps through them.
use picosnitch_store::{Dimension, ExeField, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    /// Rows grouped by a dimension; Time's bucket width comes from the window.
    Group(Group),
    /// The connections behind the filters, newest first.
    Connections,
    /// The live feed, as `picosnitch top` shows it.
    Live,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Exe(Role, ExeField),
    User,
    LocalPort,
    RemotePort,
    LocalAddress,
    RemoteAddress,
    Domain,
    Time,
}

impl Group {
    /// The store dimension; Time needs the window's bucket width.
    pub fn dimension(self, time_width: i64) -> Dimension {
        match self {
            Group::Exe(r, f) => Dimension::Exe(r, f),
            Group::User => Dimension::User,
            Group::LocalPort => Dimension::LocalPort,
            Group::RemotePort => Dimension::RemotePort,
            Group::LocalAddress => Dimension::LocalAddress,
            Group::RemoteAddress => Dimension::RemoteAddress,
            Group::Domain => Dimension::Domain,
            Group::Time => Dimension::Time { width: time_width },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewDef {
    pub section: &'static str,
    pub name: &'static str,
    /// The table's first column and the filter's name: "parent name", "remote port".
    pub column: &'static str,
    pub kind: ViewKind,
}

const fn v(section: &'static str, name: &'static str, column: &'static str, kind: ViewKind) -> ViewDef {
    ViewDef { section, name, column, kind }
}

const fn exe(section: &'static str, name: &'static str, column: &'static str, role: Role, field: ExeField) -> ViewDef {
    v(section, name, column, ViewKind::Group(Group::Exe(role, field)))
}

pub const VIEWS: [ViewDef; 21] = [
    exe("Process", "Executable", "executable", Role::Process, ExeField::Executable),
    exe("Process", "Name", "name", Role::Process, ExeField::Name),
    exe("Process", "Command", "command", Role::Process, ExeField::Command),
    exe("Process", "SHA256", "sha256", Role::Process, ExeField::Sha256),
    exe("Parent", "Executable", "parent executable", Role::Parent, ExeField::Executable),
    exe("Parent", "Name", "parent name", Role::Parent, ExeField::Name),
    exe("Parent", "Command", "parent command", Role::Parent, ExeField::Command),
    exe("Parent", "SHA256", "parent sha256", Role::Parent, ExeField::Sha256),
    exe("Grandparent", "Executable", "grandparent executable", Role::Grandparent, ExeField::Executable),
    exe("Grandparent", "Name", "grandparent name", Role::Grandparent, ExeField::Name),
    exe("Grandparent", "Command", "grandparent command", Role::Grandparent, ExeField::Command),
    exe("Grandparent", "SHA256", "grandparent sha256", Role::Grandparent, ExeField::Sha256),
    v("Network", "User", "user", ViewKind::Group(Group::User)),
    v("Network", "Local port", "local port", ViewKind::Group(Group::LocalPort)),
    v("Network", "Remote port", "remote port", ViewKind::Group(Group::RemotePort)),
    v("Network", "Local address", "local address", ViewKind::Group(Group::LocalAddress)),
    v("Network", "Remote address", "remote address", ViewKind::Group(Group::RemoteAddress)),
    v("Network", "Domain", "domain", ViewKind::Group(Group::Domain)),
    v("Time", "Time", "time", ViewKind::Group(Group::Time)),
    v("Details", "Connections", "connection", ViewKind::Connections),
    v("Live", "Live feed", "live", ViewKind::Live),
];

pub const CONNECTIONS: usize = 19;
pub const LIVE: usize = 20;
