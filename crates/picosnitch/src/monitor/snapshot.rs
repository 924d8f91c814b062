//! The processes that were already running when the monitor started, read from /proc
//! while it is still unconfined. Once confined, no role can read /proc/PID/exe of a
//! process outside its Landlock domain (Landlock refuses ptrace-mode access), so this
//! is how processes that exec'd before the daemon get their executable's path: kernel
//! exec events cover every later one.
use picosnitch_identity::exe::kernel_dev_from_user;
use picosnitch_identity::procfs;
use picosnitch_ipc::events::{ExecInfo, FileId, TaskInfo};
use std::os::unix::fs::MetadataExt;

/// One record per readable process; processes that exit meanwhile are skipped.
pub fn take() -> Vec<ExecInfo> {
    let Ok(pids) = procfs::list_pids() else { return Vec::new() };
    let mut out = Vec::with_capacity(pids.len());
    for pid in pids {
        // Kernel threads have no executable.
        let Ok(link) = procfs::read_exe_link(pid) else { continue };
        let Ok(md) = std::fs::metadata(format!("/proc/{pid}/exe")) else { continue };
        let Ok(stat) = procfs::read_stat(pid) else { continue };
        let argv = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| {
                let raw = raw.strip_suffix(b"\0").unwrap_or(&raw).to_vec();
                raw.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
            })
            .unwrap_or_default();
        let exe = FileId { dev: kernel_dev_from_user(md.dev()) as u32, ino: md.ino() };
        out.push(ExecInfo {
            task: TaskInfo { tgid: pid, pid, ppid: stat.ppid, exe, comm: stat.comm, ..Default::default() },
            path: link.path.to_string_lossy().into_owned(),
            argv,
            path_truncated: false,
            argv_truncated: false,
        });
    }
    out
}
