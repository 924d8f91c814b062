//! Reading connections with their side-table values (executables, addresses, domain)
//! joined back in: one SELECT and one row mapping, shared by every reader of whole rows.
use crate::record::{ConnectionRecord, ExeRecord};

/// `SELECT ... FROM connections c JOIN ...`, ready for a `WHERE`; its columns are what
/// [`connection`] reads.
pub(crate) const SELECT_JOINED: &str = "SELECT c.contime, c.send, c.recv, c.events,
        e.exe, e.name, e.cmdline, e.sha256, p.exe, p.name, p.cmdline, p.sha256,
        g.exe, g.name, g.cmdline, g.sha256,
        c.uid, c.family, c.protocol, c.lport, c.rport, la.addr, ra.addr, d.domain, c.netns
     FROM connections c
     JOIN executables e ON e.id = c.exe_id JOIN executables p ON p.id = c.pexe_id
     JOIN executables g ON g.id = c.gpexe_id JOIN addresses la ON la.id = c.laddr_id
     JOIN addresses ra ON ra.id = c.raddr_id JOIN domains d ON d.id = c.domain_id";

/// One row of [`SELECT_JOINED`].
pub(crate) fn connection(r: &rusqlite::Row) -> rusqlite::Result<ConnectionRecord> {
    let exe = |i: usize| -> rusqlite::Result<ExeRecord> {
        Ok(ExeRecord { exe: r.get(i)?, name: r.get(i + 1)?, cmdline: r.get(i + 2)?, sha256: r.get(i + 3)? })
    };
    Ok(ConnectionRecord {
        contime: r.get(0)?,
        send: r.get(1)?,
        recv: r.get(2)?,
        events: r.get(3)?,
        exe: exe(4)?,
        pexe: exe(8)?,
        gpexe: exe(12)?,
        uid: r.get(16)?,
        family: r.get(17)?,
        protocol: r.get(18)?,
        lport: r.get(19)?,
        rport: r.get(20)?,
        laddr: r.get(21)?,
        raddr: r.get(22)?,
        domain: r.get(23)?,
        netns: r.get(24)?,
    })
}
