//! What every role process shares: its control link to the supervisor (always at fd 3)
//! and the links to its peers, which arrive over that control link.
use anyhow::Context;
use picosnitch_ipc::control::{FromRole, Role, ToRole};
use picosnitch_ipc::{Link, SeqPacket};
use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Where the supervisor puts a role's control link.
pub const CONTROL_FD: RawFd = 3;

/// Where the supervisor puts the live feed's listening socket, for the primary only.
pub const FEED_FD: RawFd = 5;

pub type Control = Link<FromRole, ToRole>;

/// Takes the control link the supervisor placed at fd 3.
pub fn take_control() -> anyhow::Result<SeqPacket> {
    // SAFETY: fcntl(F_GETFD) on any integer is safe; it only tells whether it is open.
    if unsafe { libc::fcntl(CONTROL_FD, libc::F_GETFD) } < 0 {
        anyhow::bail!("fd {CONTROL_FD} is not open: roles are started by `picosnitch daemon`, not by hand");
    }
    // SAFETY: the fd is open and the supervisor placed it there for this process alone;
    // from here on it is owned by the returned socket and closed exactly once.
    let fd = unsafe { OwnedFd::from_raw_fd(CONTROL_FD) };
    SeqPacket::from_fd(fd).context("fd 3 is not the supervisor's control link: roles are started by `picosnitch daemon`")
}

/// Takes the live feed's listening socket if the supervisor placed one at fd 5. Anything
/// else there is logged and closed: the history matters more than the live view.
pub fn take_feed_listener() -> Option<std::os::unix::net::UnixListener> {
    // SAFETY: fcntl(F_GETFD) on any integer is safe; it only tells whether it is open.
    if unsafe { libc::fcntl(FEED_FD, libc::F_GETFD) } < 0 {
        tracing::warn!("started without the live feed's socket: nothing is published live");
        return None;
    }
    // SAFETY: the fd is open and was placed there by the supervisor for this process;
    // from here on it is owned once.
    let fd = unsafe { OwnedFd::from_raw_fd(FEED_FD) };
    match rustix::net::sockopt::socket_acceptconn(&fd) {
        Ok(true) => Some(std::os::unix::net::UnixListener::from(fd)),
        Ok(false) => {
            tracing::error!("fd {FEED_FD} is a socket but not listening: no live feed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "fd {FEED_FD} is not the live feed's socket: no live feed");
            None
        }
    }
}

/// A message from the supervisor, with its link already adopted.
pub enum Command {
    Link(Role, SeqPacket),
    Stop,
    Probe(String, Option<String>),
    /// Something to tell the desktop user (only the notify role gets these).
    Notice(picosnitch_ipc::notices::Notice),
    /// The supervisor is gone: stop too.
    Closed,
}

/// The next command on the control link.
pub async fn next_command(control: &Control) -> anyhow::Result<Command> {
    match control.recv_with_fds().await.context("reading the control link")? {
        None => Ok(Command::Closed),
        Some((ToRole::Stop, _)) => Ok(Command::Stop),
        Some((ToRole::Probe { probe, arg }, _)) => Ok(Command::Probe(probe, arg)),
        Some((ToRole::Notice(n), _)) => Ok(Command::Notice(n)),
        // Only the remote role asks for connections, and it reads its control link itself.
        Some((ToRole::Connected { .. } | ToRole::ConnectFailed { .. }, _)) => {
            anyhow::bail!("an answer to a connection request this role never made")
        }
        Some((ToRole::Link { peer }, mut fds)) => {
            let fd = fds.pop().with_context(|| format!("the link to {peer} arrived without its descriptor"))?;
            Ok(Command::Link(peer, SeqPacket::from_fd(fd)?))
        }
    }
}

/// What a command asks of a role whose only peer is the primary.
pub enum Duty {
    /// A (new) link to the primary.
    Primary(SeqPacket),
    /// Something to tell the desktop user (the notify role's job).
    Notice(picosnitch_ipc::notices::Notice),
    Stop,
    /// Nothing left to do: a probe was answered, or a link to another peer refused.
    Done,
}

/// Handles what every role serving the primary handles alike, and says what is left.
pub async fn duty(control: &Control, cmd: Command, me: Role) -> anyhow::Result<Duty> {
    Ok(match cmd {
        Command::Link(Role::Primary, sock) => Duty::Primary(sock),
        Command::Link(other, _) => {
            tracing::warn!(peer = %other, role = %me, "ignoring a link this role does not use");
            Duty::Done
        }
        Command::Probe(p, a) => {
            answer_probe(control, &p, a.as_deref()).await?;
            Duty::Done
        }
        Command::Notice(n) => Duty::Notice(n),
        Command::Stop | Command::Closed => Duty::Stop,
    })
}

/// Runs a probe from inside the confined role and reports the outcome.
pub async fn answer_probe(control: &Control, probe: &str, arg: Option<&str>) -> anyhow::Result<()> {
    let outcome = picosnitch_sandbox::probe::attempt(probe, arg);
    tracing::warn!(probe, %outcome, "sandbox probe");
    control
        .send(&picosnitch_ipc::control::FromRole::ProbeResult { probe: probe.to_string(), outcome })
        .await
        .context("reporting a probe")
}

/// Waits until a link to each of `needed` has arrived; `None` if told to stop first.
pub async fn initial_links(control: &Control, needed: &[Role]) -> anyhow::Result<Option<HashMap<Role, SeqPacket>>> {
    let mut links = HashMap::new();
    while needed.iter().any(|r| !links.contains_key(r)) {
        match next_command(control).await? {
            Command::Link(peer, sock) => {
                links.insert(peer, sock);
            }
            Command::Stop | Command::Closed => return Ok(None),
            Command::Probe(..) | Command::Notice(..) => {}
        }
    }
    Ok(Some(links))
}
