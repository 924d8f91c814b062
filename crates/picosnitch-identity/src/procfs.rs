//! The few /proc files picosnitch reads about a process. Every error names the pid and
//! file; a process that is gone gives `ProcError::Gone`, which callers count.
use std::io::Read;
use std::path::PathBuf;

const CMDLINE_LIMIT: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("process {pid} is gone")]
    Gone { pid: u32 },
    #[error("reading /proc/{pid}/{file}: {source}")]
    Io { pid: u32, file: &'static str, source: std::io::Error },
    #[error("parsing /proc/{pid}/{file}: {what}")]
    Parse { pid: u32, file: &'static str, what: &'static str },
}

fn io_err(pid: u32, file: &'static str, e: std::io::Error) -> ProcError {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => ProcError::Gone { pid },
        _ => ProcError::Io { pid, file, source: e },
    }
}

/// argv of a process (empty for kernel threads), at most 64 KiB of it.
pub fn read_cmdline(pid: u32) -> Result<Vec<String>, ProcError> {
    let mut raw = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/cmdline"))
        .and_then(|f| f.take(CMDLINE_LIMIT).read_to_end(&mut raw))
        .map_err(|e| io_err(pid, "cmdline", e))?;
    Ok(parse_cmdline(&raw))
}

pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

pub fn read_comm(pid: u32) -> Result<String, ProcError> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/comm")).map_err(|e| io_err(pid, "comm", e))?;
    Ok(s.trim_end_matches('\n').to_string())
}

/// The parent pid from /proc/PID/stat.
pub fn read_ppid(pid: u32) -> Result<u32, ProcError> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| io_err(pid, "stat", e))?;
    parse_stat_ppid(&s).ok_or(ProcError::Parse { pid, file: "stat", what: "no ppid field" })
}

/// comm is in parentheses and may itself contain spaces and ')': the fields after the
/// last ')' are "state ppid ...".
pub fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub struct ExeLink {
    pub path: PathBuf,
    /// The file was unlinked after exec (readlink ends in " (deleted)").
    pub deleted: bool,
}

pub fn read_exe_link(pid: u32) -> Result<ExeLink, ProcError> {
    let p = std::fs::read_link(format!("/proc/{pid}/exe")).map_err(|e| io_err(pid, "exe", e))?;
    let s = p.to_string_lossy();
    Ok(match s.strip_suffix(" (deleted)") {
        Some(base) => ExeLink { path: PathBuf::from(base), deleted: true },
        None => ExeLink { path: p, deleted: false },
    })
}

/// Every pid in /proc right now.
pub fn list_pids() -> std::io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        if let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_hostile_comm() {
        assert_eq!(parse_stat_ppid("12 (a) b (c) S 34 12 12 0"), Some(34));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn cmdline_shapes() {
        assert_eq!(parse_cmdline(b"ls\0-l\0\0x\0"), vec!["ls", "-l", "", "x"]);
        assert_eq!(parse_cmdline(b"no-trailing-nul"), vec!["no-trailing-nul"]);
        assert!(parse_cmdline(b"").is_empty());
    }

    #[test]
    fn own_process_and_a_gone_one() {
        let me = std::process::id();
        assert!(!read_cmdline(me).expect("cmdline").is_empty());
        assert_eq!(read_ppid(me).expect("ppid"), std::os::unix::process::parent_id());
        assert!(read_exe_link(me).expect("exe").path.is_absolute());
        assert!(list_pids().expect("pids").contains(&me));
        assert!(matches!(read_comm(u32::MAX - 1), Err(ProcError::Gone { .. })));
    }
}
