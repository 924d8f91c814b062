//! `/proc/<pid>` readers: cmdline, stat (ppid), status (uids), exe link, and the pid list.
//!
//! Every error names the pid and the file. A process that exited between the event and
//! the read is common and harmless: [`ProcError::is_vanished`] tells it apart so the
//! caller can count it instead of warning.
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Most bytes of `/proc/<pid>/cmdline` read.
pub const MAX_CMDLINE: usize = 64 * 1024;
/// Most bytes of `/proc/<pid>/stat` and `/proc/<pid>/status` read.
const MAX_SMALL_FILE: usize = 64 * 1024;

const DELETED_SUFFIX: &[u8] = b" (deleted)";

/// Reading `/proc/<pid>/<file>` failed.
#[derive(Debug, thiserror::Error)]
#[error("/proc/{pid}/{file}: {source}")]
pub struct ProcError {
    pub pid: u32,
    pub file: &'static str,
    #[source]
    pub source: io::Error,
}

impl ProcError {
    fn new(pid: u32, file: &'static str, source: io::Error) -> Self {
        Self { pid, file, source }
    }

    /// The process no longer exists (NotFound or ESRCH).
    pub fn is_vanished(&self) -> bool {
        is_vanished_io(&self.source)
    }
}

/// NotFound (the `/proc/<pid>` directory is gone) or ESRCH (it went while we read).
pub fn is_vanished_io(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error())
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads at most `limit` bytes of `/proc/<pid>/<file>`.
fn read_bounded(pid: u32, file: &'static str, limit: usize) -> Result<Vec<u8>, ProcError> {
    let path = format!("/proc/{pid}/{file}");
    let mut buf = Vec::new();
    File::open(&path)
        .and_then(|f| f.take(limit as u64).read_to_end(&mut buf))
        .map_err(|e| ProcError::new(pid, file, e))?;
    Ok(buf)
}

/// The command line, arguments joined by single spaces (see [`parse_cmdline`]). Empty
/// for kernel threads and zombies.
pub fn read_cmdline(pid: u32) -> Result<String, ProcError> {
    Ok(parse_cmdline(&read_bounded(pid, "cmdline", MAX_CMDLINE)?))
}

/// NUL-separated arguments to one string joined by spaces: one trailing NUL is dropped,
/// empty arguments are kept (so `a\0\0b\0` is `"a  b"`), invalid UTF-8 is replaced.
/// A process that rewrote its argv may have no NULs at all; that is taken as is.
pub fn parse_cmdline(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    raw.split(|&b| b == 0)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The fields of `/proc/<pid>/stat` that picosnitch uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// The task name (at most 15 bytes, any characters but NUL).
    pub comm: String,
    /// R, S, D, Z, T, ...
    pub state: char,
    pub ppid: u32,
}

/// Reads and parses `/proc/<pid>/stat`.
pub fn read_stat(pid: u32) -> Result<ProcStat, ProcError> {
    let raw = read_bounded(pid, "stat", MAX_SMALL_FILE)?;
    parse_stat(&String::from_utf8_lossy(&raw)).map_err(|e| ProcError::new(pid, "stat", e))
}

/// Parses `pid (comm) state ppid ...`. `comm` may hold spaces and parentheses, so it runs
/// from the first `(` to the LAST `)`.
pub fn parse_stat(text: &str) -> io::Result<ProcStat> {
    let open = text.find('(').ok_or_else(|| invalid("stat: no '('"))?;
    let close = text.rfind(')').ok_or_else(|| invalid("stat: no ')'"))?;
    let comm = text
        .get(open + 1..close)
        .ok_or_else(|| invalid("stat: ')' before '('"))?;
    let rest = text.get(close + 1..).unwrap_or_default();
    let mut fields = rest.split_whitespace();
    let state = fields
        .next()
        .and_then(|s| s.chars().next())
        .ok_or_else(|| invalid("stat: no state field"))?;
    let ppid_text = fields
        .next()
        .ok_or_else(|| invalid("stat: no ppid field"))?;
    let ppid = ppid_text
        .parse::<u32>()
        .map_err(|_| invalid(format!("stat: ppid {ppid_text:?} is not a number")))?;
    Ok(ProcStat {
        comm: comm.to_owned(),
        state,
        ppid,
    })
}

/// The four user ids of a process (`Uid:` line of `/proc/<pid>/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
    pub filesystem: u32,
}

/// Reads the uids from `/proc/<pid>/status`.
pub fn read_uids(pid: u32) -> Result<Uids, ProcError> {
    let raw = read_bounded(pid, "status", MAX_SMALL_FILE)?;
    parse_status_uids(&String::from_utf8_lossy(&raw)).map_err(|e| ProcError::new(pid, "status", e))
}

/// Parses the `Uid:\treal\teffective\tsaved\tfs` line of a status file.
pub fn parse_status_uids(text: &str) -> io::Result<Uids> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .ok_or_else(|| invalid("status: no Uid line"))?;
    let mut ids = line.split_whitespace().map(|s| {
        s.parse::<u32>()
            .map_err(|_| invalid(format!("status: uid {s:?} is not a number")))
    });
    let mut next = || {
        ids.next()
            .unwrap_or_else(|| Err(invalid("status: Uid line has fewer than 4 ids")))
    };
    Ok(Uids {
        real: next()?,
        effective: next()?,
        saved: next()?,
        filesystem: next()?,
    })
}

/// Where `/proc/<pid>/exe` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExeLink {
    /// The path, without the kernel's " (deleted)" suffix.
    pub path: PathBuf,
    /// The kernel marked the binary deleted (unlinked or replaced since exec). A file
    /// whose real name ends in " (deleted)" is indistinguishable and reads as deleted.
    pub deleted: bool,
}

/// Reads the `/proc/<pid>/exe` link. Kernel threads have none (NotFound, which
/// [`ProcError::is_vanished`] cannot tell from an exited process).
pub fn read_exe_link(pid: u32) -> Result<ExeLink, ProcError> {
    let target = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_err(|e| ProcError::new(pid, "exe", e))?;
    Ok(parse_exe_link(target.as_os_str()))
}

/// Splits the " (deleted)" marker off a readlink result.
pub fn parse_exe_link(target: &OsStr) -> ExeLink {
    let bytes = target.as_bytes();
    match bytes.strip_suffix(DELETED_SUFFIX) {
        Some(path) => ExeLink {
            path: PathBuf::from(OsStr::from_bytes(path)),
            deleted: true,
        },
        None => ExeLink {
            path: PathBuf::from(target),
            deleted: false,
        },
    }
}

/// All pids (thread-group ids) currently in `/proc`, ascending.
pub fn list_pids() -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        if let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vanished_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        pid
    }

    #[test]
    fn stat_with_hostile_comm() {
        let s = parse_stat("1234 (a) b (c) S 77 1234 1234 0 -1 4194560 100 0").expect("parse");
        assert_eq!(
            s,
            ProcStat {
                comm: "a) b (c".into(),
                state: 'S',
                ppid: 77
            }
        );
        let s = parse_stat("5 () R 0 0").expect("empty comm");
        assert_eq!((s.comm.as_str(), s.ppid), ("", 0));
        assert!(parse_stat("5 (x) R").is_err());
        assert!(parse_stat("5 (x) R notanumber").is_err());
        assert!(parse_stat("garbage").is_err());
        assert!(parse_stat("5 )x( R 1").is_err());
    }

    #[test]
    fn cmdline_forms() {
        assert_eq!(parse_cmdline(b"/bin/ls\0-l\0/tmp\0"), "/bin/ls -l /tmp");
        assert_eq!(parse_cmdline(b"a\0\0b\0"), "a  b");
        assert_eq!(parse_cmdline(b"a\0\0\0"), "a  ");
        assert_eq!(parse_cmdline(b"no trailing\0nul"), "no trailing nul");
        assert_eq!(
            parse_cmdline(b"rewritten title: worker"),
            "rewritten title: worker"
        );
        assert_eq!(parse_cmdline(b""), "");
        assert_eq!(parse_cmdline(b"\0"), "");
        assert_eq!(parse_cmdline(b"bad\xff\0x\0"), "bad\u{fffd} x");
    }

    #[test]
    fn uids_parse() {
        let text = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1001\t1002\t1003\nGid:\t100\t100\t100\t100\n";
        assert_eq!(
            parse_status_uids(text).expect("parse"),
            Uids {
                real: 1000,
                effective: 1001,
                saved: 1002,
                filesystem: 1003
            }
        );
        assert!(parse_status_uids("Name:\tx\n").is_err());
        assert!(parse_status_uids("Uid:\t1\t2\n").is_err());
    }

    #[test]
    fn exe_link_deleted_marker() {
        let l = parse_exe_link(OsStr::new("/usr/bin/foo (deleted)"));
        assert_eq!(
            l,
            ExeLink {
                path: "/usr/bin/foo".into(),
                deleted: true
            }
        );
        let l = parse_exe_link(OsStr::new("/usr/bin/foo"));
        assert!(!l.deleted);
    }

    #[test]
    fn own_process() {
        let pid = std::process::id();
        let stat = read_stat(pid).expect("stat");
        assert_eq!(stat.ppid, std::os::unix::process::parent_id());
        let uids = read_uids(pid).expect("uids");
        // /proc/<pid> is owned by the process's effective uid.
        let owner = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata(format!("/proc/{pid}")).expect("stat /proc/pid"),
        );
        assert_eq!(uids.effective, owner);
        let cmd = read_cmdline(pid).expect("cmdline");
        let first = std::env::args().next().expect("argv0");
        assert!(cmd.starts_with(&first), "{cmd:?} vs {first:?}");
        let exe = read_exe_link(pid).expect("exe");
        assert_eq!(exe.path, std::env::current_exe().expect("current_exe"));
        assert!(!exe.deleted);
        let pids = list_pids().expect("list");
        assert!(pids.contains(&pid));
        assert!(pids.contains(&1));
        assert!(pids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn vanished_pid_is_distinct() {
        let pid = vanished_pid();
        for err in [
            read_cmdline(pid).expect_err("cmdline"),
            read_stat(pid).map(|_| ()).expect_err("stat"),
            read_uids(pid).map(|_| ()).expect_err("uids"),
            read_exe_link(pid).map(|_| ()).expect_err("exe"),
        ] {
            assert!(err.is_vanished(), "{err}");
            assert_eq!(err.pid, pid);
            assert!(
                err.to_string().starts_with(&format!("/proc/{pid}/")),
                "{err}"
            );
        }
        let malformed = ProcError::new(1, "stat", invalid("x"));
        assert!(!malformed.is_vanished());
    }
}
