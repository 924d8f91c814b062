//! Starting a role process: this binary again, `picosnitch role NAME --config FILE`,
//! with its control link at fd 3, its death-note pipe at fd 4, the live feed's socket
//! at fd 5 for the primary, and nothing else inherited.
use anyhow::Context;
use picosnitch_ipc::control::Role;
use picosnitch_ipc::SeqPacket;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};

/// A started role: the process, and the read end of its death-note pipe (where its
/// seccomp handler writes the number of a forbidden call).
pub struct Started {
    pub child: Child,
    pub death_note: std::fs::File,
}

pub fn spawn(exe: &Path, config_path: Option<&Path>, role: Role, control: SeqPacket, feed: Option<BorrowedFd<'_>>) -> anyhow::Result<Started> {
    let control: OwnedFd = control.into_fd();
    let raw = control.as_raw_fd();
    let (note_read, note_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK)
        .context("creating a death-note pipe")?;
    let note_raw = note_write.as_raw_fd();
    let feed_raw = feed.map(|f| f.as_raw_fd());
    let mut cmd = Command::new(exe);
    cmd.arg("role").arg(role.name());
    if let Some(p) = config_path {
        cmd.arg("--config").arg(p);
    }
    // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2, close,
    // prctl, setpgid, getppid, kill) are made, on descriptors and ids that exist (the
    // feed socket is borrowed for the duration of this call).
    unsafe {
        cmd.pre_exec(move || {
            // Move every descriptor above the fixed numbers first, so no dup2 below
            // can clobber one that already sits at 3, 4 or 5.
            let high = libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 10);
            let note = libc::fcntl(note_raw, libc::F_DUPFD_CLOEXEC, 10);
            let feed = feed_raw.map(|f| libc::fcntl(f, libc::F_DUPFD_CLOEXEC, 10));
            if high < 0 || note < 0 || feed.is_some_and(|f| f < 0) {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 clears close-on-exec on the copy: these three are what the role inherits.
            if libc::dup2(high, crate::role::CONTROL_FD) < 0 || libc::dup2(note, picosnitch_sandbox::DEATH_NOTE_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(feed) = feed {
                if libc::dup2(feed, crate::role::FEED_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(feed);
            }
            libc::close(high);
            libc::close(note);
            // A role never outlives its supervisor; if the supervisor already died
            // between fork and here, leave at once.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if libc::getppid() == 1 {
                libc::kill(libc::getpid(), libc::SIGTERM);
            }
            // Terminal signals (Ctrl-C) reach the supervisor only; it stops roles in order.
            libc::setpgid(0, 0);
            Ok(())
        });
    }
    let child = cmd.spawn().with_context(|| format!("starting the {role} role from {}", exe.display()))?;
    drop(control);
    drop(note_write);
    Ok(Started { child, death_note: std::fs::File::from(note_read) })
}

/// The forbidden call a role's seccomp handler reported before it died, if any.
pub fn read_death_note(note: &mut std::fs::File) -> Option<String> {
    use std::io::Read;
    let mut buf = [0u8; 4];
    match note.read(&mut buf) {
        Ok(4) => Some(picosnitch_sandbox::syscall_name(i64::from(i32::from_le_bytes(buf)))),
        _ => None,
    }
}

/// How a role ended, for the log and `picosnitch status`.
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(sig) => {
            let name = match sig {
                libc::SIGKILL => "SIGKILL",
                libc::SIGTERM => "SIGTERM",
                libc::SIGSEGV => "SIGSEGV",
                libc::SIGABRT => "SIGABRT (a panic or abort)",
                libc::SIGSYS => "SIGSYS (a system call its seccomp policy forbids)",
                libc::SIGBUS => "SIGBUS",
                _ => "",
            };
            let core = if status.core_dumped() { ", core dumped" } else { "" };
            format!("killed by signal {sig} {name}{core}").replace("  ", " ")
        }
        None => "ended".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exits_are_described() {
        assert_eq!(describe_exit(ExitStatus::from_raw(3 << 8)), "exited with status 3");
        assert_eq!(describe_exit(ExitStatus::from_raw(libc::SIGKILL)), "killed by signal 9 SIGKILL");
        assert!(describe_exit(ExitStatus::from_raw(libc::SIGSYS)).contains("seccomp"));
    }
}
