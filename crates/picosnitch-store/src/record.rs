use serde::{Deserialize, Serialize};

/// An executable as stored: path, process name, command line, sha256.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExeRecord {
    pub exe: String,
    pub name: String,
    pub cmdline: String,
    pub sha256: String,
}

/// One row of `connections`, with its side-table values spelled out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// Unix time in seconds of the first event summed into this row.
    pub contime: i64,
    pub send: i64,
    pub recv: i64,
    /// Connections (flows) started in this period for this row.
    pub events: i64,
    pub exe: ExeRecord,
    pub pexe: ExeRecord,
    pub gpexe: ExeRecord,
    pub uid: i64,
    pub family: i64,
    pub protocol: i64,
    pub lport: i64,
    pub rport: i64,
    pub laddr: String,
    pub raddr: String,
    pub domain: String,
    pub netns: i64,
}
