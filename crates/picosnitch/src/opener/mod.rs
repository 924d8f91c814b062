//! The opener role: opens `/proc/PID/exe` for the primary when the path the kernel
//! reported no longer leads to the binary a process runs (deleted or replaced since it
//! started, or only present in another mount namespace), checks that the opened file is
//! the one the kernel reported, and hands the descriptor back.
//!
//! Why a role of its own: `/proc/PID/exe` needs ptrace-mode read access to PID, which
//! Landlock refuses across domains, so the (Landlocked) primary cannot open it for any
//! process outside its own domain. The opener has no Landlock for that reason, and is
//! kept small instead: it parses only fixed-size requests, runs no event loop and no
//! thread, and its seccomp list has no call that reads a file's contents (no read,
//! pread, mmap of a file, sendfile, splice), no open but read-only with fixed flags, no
//! socket, no execve, no ptrace. See `policy.rs`.
use anyhow::Context;
use picosnitch_identity::exe::ExeIdentity;
use picosnitch_ipc::control::{FromRole, Role, ToRole};
use picosnitch_ipc::opening::{OpenReply, OpenRequest, Outcome};
use picosnitch_ipc::status::{OpenerStatus, RoleStatus};
use picosnitch_ipc::SeqPacket;
use rustix::fs::{Mode, OFlags};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

pub mod policy;

const STATUS_PERIOD: Duration = Duration::from_secs(2);

/// The only flags the opener opens with; its seccomp policy allows openat with exactly
/// these (read-only; non-blocking so a FIFO cannot hang it; no controlling terminal).
pub const OPEN_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::CLOEXEC).union(OFlags::NOCTTY).union(OFlags::NONBLOCK);

pub fn run(control: SeqPacket, config: &picosnitch_config::Config) -> anyhow::Result<()> {
    // INVARIANT: confined before any request arrives; the process never starts a thread.
    crate::confine::confine_role(&policy::POLICY, config)?;
    let mut status = OpenerStatus::default();
    let mut primary: Option<SeqPacket> = None;
    report(&control, &status)?;
    let mut next_status = Instant::now() + STATUS_PERIOD;
    loop {
        let wait = next_status.saturating_duration_since(Instant::now());
        let (control_ready, primary_ready) = wait_readable(&control, primary.as_ref(), wait)?;
        if control_ready {
            let Some(m) = control.recv().context("reading the control link")? else { return Ok(()) };
            match picosnitch_ipc::link::decode::<ToRole>(&m.bytes).context("decoding a message from the supervisor")? {
                ToRole::Stop => return Ok(()),
                ToRole::Link { peer: Role::Primary } => {
                    let mut fds = m.fds;
                    let fd = fds.pop().context("the link to the primary arrived without its descriptor")?;
                    primary = Some(SeqPacket::from_fd(fd)?);
                }
                ToRole::Link { peer } => tracing::warn!(%peer, "ignoring a link the opener does not use"),
                ToRole::Probe { probe, arg } => {
                    let outcome = picosnitch_sandbox::probe::attempt(&probe, arg.as_deref());
                    tracing::warn!(probe, %outcome, "sandbox probe");
                    send(&control, &FromRole::ProbeResult { probe, outcome })?;
                }
                ToRole::Notice(_) | ToRole::Connected { .. } | ToRole::ConnectFailed { .. } => {}
            }
        }
        if primary_ready {
            if let Some(p) = &primary {
                match p.recv() {
                    Ok(Some(m)) => {
                        // Descriptors are never expected from the primary: dropping the
                        // vector closes any that came.
                        match OpenRequest::parse(&m.bytes) {
                            Ok(req) => {
                                let (reply, fd) = open(req, &mut status);
                                let fds: Vec<_> = fd.iter().map(AsFd::as_fd).collect();
                                if let Err(e) = p.send(&reply.to_bytes(), &fds) {
                                    tracing::warn!(error = %e, "primary link lost");
                                    primary = None;
                                }
                            }
                            Err(e) => {
                                status.malformed += 1;
                                tracing::warn!(error = %e, "dropping a malformed request from the primary");
                            }
                        }
                    }
                    Ok(None) => {
                        tracing::info!("primary closed its link; waiting for a new one");
                        primary = None;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "primary link failed; waiting for a new one");
                        primary = None;
                    }
                }
            }
        }
        if Instant::now() >= next_status {
            report(&control, &status)?;
            next_status = Instant::now() + STATUS_PERIOD;
        }
    }
}

/// Opens `/proc/<pid>/exe` and keeps it only if it is the kernel's (device, inode).
fn open(req: OpenRequest, status: &mut OpenerStatus) -> (OpenReply, Option<OwnedFd>) {
    status.requests += 1;
    let reply = |outcome, errno| OpenReply { id: req.id, outcome, errno };
    if req.pid == 0 {
        status.failed += 1;
        return (reply(Outcome::Failed, libc::EINVAL), None);
    }
    let path = format!("/proc/{}/exe", req.pid);
    let opened = loop {
        match rustix::fs::open(path.as_str(), OPEN_FLAGS, Mode::empty()) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other,
        }
    };
    let fd = match opened {
        Ok(fd) => fd,
        // ENOENT: no such process (or a kernel thread); ESRCH: it exited meanwhile.
        Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::SRCH => {
            status.gone += 1;
            return (reply(Outcome::Gone, e.raw_os_error()), None);
        }
        Err(e) => {
            status.failed += 1;
            tracing::debug!(pid = req.pid, error = %e, "cannot open /proc/PID/exe");
            return (reply(Outcome::Failed, e.raw_os_error()), None);
        }
    };
    let file = std::fs::File::from(fd);
    let md = match file.metadata() {
        Ok(md) => md,
        Err(e) => {
            status.failed += 1;
            return (reply(Outcome::Failed, e.raw_os_error().unwrap_or(libc::EIO)), None);
        }
    };
    let found = ExeIdentity::from_user_dev(md.dev(), md.ino());
    let expected = ExeIdentity { dev: u64::from(req.dev), ino: req.ino };
    if !found.matches(&expected, u64::from(req.dev_mask)) {
        status.mismatched += 1;
        return (reply(Outcome::Mismatch, 0), None);
    }
    status.opened += 1;
    (reply(Outcome::Opened, 0), Some(OwnedFd::from(file)))
}

fn send(control: &SeqPacket, msg: &FromRole) -> anyhow::Result<()> {
    let bytes = picosnitch_ipc::link::encode(msg)?;
    control.send(&bytes, &[]).context("writing to the control link")
}

fn report(control: &SeqPacket, status: &OpenerStatus) -> anyhow::Result<()> {
    send(control, &FromRole::Status(RoleStatus::Opener(status.clone())))
}

/// Waits up to `wait` for either link to have a message (or to be closed).
fn wait_readable(control: &SeqPacket, primary: Option<&SeqPacket>, wait: Duration) -> anyhow::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd { fd: control.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: primary.map_or(-1, AsRawFd::as_raw_fd), events: libc::POLLIN, revents: 0 },
    ];
    let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: poll(2) on an array of two pollfd that lives for the call; a negative fd
    // is ignored by the kernel.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok((false, false));
        }
        return Err(e).context("waiting on the links");
    }
    let ready = |p: &libc::pollfd| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
    Ok((ready(&fds[0]), primary.is_some() && ready(&fds[1])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> (u32, u64) {
        let md = std::fs::metadata("/proc/self/exe").expect("own exe");
        (picosnitch_identity::exe::kernel_dev_from_user(md.dev()) as u32, md.ino())
    }

    #[test]
    fn only_the_kernels_file_is_handed_out() {
        let mut st = OpenerStatus::default();
        let (dev, ino) = own();
        let pid = std::process::id();
        let (reply, fd) = open(OpenRequest { id: 1, pid, dev, ino, dev_mask: u32::MAX }, &mut st);
        assert_eq!((reply.id, reply.outcome), (1, Outcome::Opened));
        let fd = fd.expect("a descriptor");
        let md = std::fs::File::from(fd).metadata().expect("stat");
        assert_eq!(md.ino(), ino);

        // The pid runs another file than the one asked for: nothing is handed out.
        let (reply, fd) = open(OpenRequest { id: 2, pid, dev, ino: ino + 1, dev_mask: u32::MAX }, &mut st);
        assert_eq!((reply.outcome, fd.is_none()), (Outcome::Mismatch, true));
        // btrfs-like: the device is not compared under mask 0, the inode still is.
        let (reply, _) = open(OpenRequest { id: 3, pid, dev: dev ^ 1, ino, dev_mask: 0 }, &mut st);
        assert_eq!(reply.outcome, Outcome::Opened);

        // No such process (pid_max is at most 2^22).
        let (reply, fd) = open(OpenRequest { id: 4, pid: u32::MAX - 1, dev, ino, dev_mask: u32::MAX }, &mut st);
        assert_eq!((reply.outcome, fd.is_none()), (Outcome::Gone, true));
        let (reply, _) = open(OpenRequest { id: 5, pid: 0, dev, ino, dev_mask: u32::MAX }, &mut st);
        assert_eq!(reply.outcome, Outcome::Failed);
        assert_eq!((st.requests, st.opened, st.mismatched, st.gone, st.failed), (5, 2, 1, 1, 1));
    }
}
