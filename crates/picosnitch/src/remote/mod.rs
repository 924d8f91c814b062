//! The remote role: delivers the spool the writer fills to the remote database.
//!
//! It reads the password and CA files while still root, then confines itself to the
//! spool directory with no way to make a network connection of its own: it asks the
//! supervisor, which connects to the configured host and port (and nothing else) and
//! hands the socket over. TLS, the login and every query happen here, so the code that
//! parses the server's answers runs with no privilege at all.
pub mod policy;

use crate::role::Control;
use anyhow::Context;
use async_io::Timer;
use picosnitch_config::Config;
use picosnitch_ipc::control::{FromRole, ToRole};
use picosnitch_ipc::status::{RemoteStatus, RoleStatus};
use picosnitch_ipc::{Link, SeqPacket};
use picosnitch_remote::drain::{Connector, Drain};
use std::cell::RefCell;
use std::net::TcpStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// The spool's directory, beside the history.
pub const SPOOL_DIR_NAME: &str = "remote-spool";

const STATUS_PERIOD: Duration = Duration::from_secs(2);
/// How long a role that could not read its files waits before it exits, to be
/// started (and read them) again.
const REREAD_AFTER: Duration = Duration::from_secs(60);

pub fn spool_dir(config: &Config) -> PathBuf {
    config.database.path.parent().map(|d| d.join(SPOOL_DIR_NAME)).unwrap_or_else(|| PathBuf::from("/").join(SPOOL_DIR_NAME))
}

pub fn run(control: SeqPacket, config: &Config) -> anyhow::Result<()> {
    let remote = config.database.remote.as_ref().context("the remote role runs only with [database.remote] configured")?;
    // INVARIANT: the password and CA files are read before confinement, as root; the
    // confined role can open nothing but its spool.
    let settings = picosnitch_remote::Settings::load(remote);
    crate::confine::confine_role(&policy::POLICY, config)?;
    let control: Rc<Control> = Rc::new(Link::new(control)?);
    let status = Rc::new(RefCell::new(RemoteStatus::default()));
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
        let settings = match settings {
            Ok(s) => s,
            Err(e) => {
                let text = e.to_string();
                tracing::error!(error = %text, "the remote role cannot start delivering; rows wait in the spool");
                status.borrow_mut().last_error = Some(text.clone());
                // Reported for a while, then the supervisor starts the role again,
                // which reads the files again.
                let stop = futures_lite::future::or(serve_control(&control, &status, None), async {
                    Timer::after(REREAD_AFTER).await;
                    Ok(false)
                })
                .await?;
                if stop {
                    return Ok(());
                }
                anyhow::bail!("{text}");
            }
        };
        let (answers_tx, answers_rx) = async_channel::bounded(1);
        let connector = SupervisorConnector { control: Rc::clone(&control), answers: answers_rx };
        let mut drain = Drain::new(settings, connector, &spool_dir(config), Rc::clone(&status));
        futures_lite::future::or(async { serve_control(&control, &status, Some(answers_tx)).await.map(|_| ()) }, async {
            drain.run().await;
            Ok(())
        })
        .await
    }))
}

type Answer = Result<(TcpStream, String), String>;

/// Asks the supervisor for each connection.
struct SupervisorConnector {
    control: Rc<Control>,
    answers: async_channel::Receiver<Answer>,
}

impl Connector for SupervisorConnector {
    async fn connect(&mut self) -> Answer {
        // An answer to an earlier request that timed out is not this one's.
        while self.answers.try_recv().is_ok() {}
        self.control.send(&FromRole::Connect).await.map_err(|e| format!("asking the supervisor for a connection: {e}"))?;
        self.answers.recv().await.map_err(|_| "the supervisor link closed".to_string())?
    }
}

/// Answers the supervisor (stop, probes, connections) and reports status; returns
/// `true` when told to stop.
async fn serve_control(
    control: &Control,
    status: &RefCell<RemoteStatus>,
    answers: Option<async_channel::Sender<Answer>>,
) -> anyhow::Result<bool> {
    enum Wake {
        Message(Result<Option<(ToRole, Vec<std::os::fd::OwnedFd>)>, picosnitch_ipc::IpcError>),
        Tick,
    }
    loop {
        let wake = futures_lite::future::or(async { Wake::Message(control.recv_with_fds().await) }, async {
            Timer::after(STATUS_PERIOD).await;
            Wake::Tick
        })
        .await;
        match wake {
            Wake::Tick => {
                let st = status.borrow().clone();
                control.send(&FromRole::Status(RoleStatus::Remote(st))).await.context("reporting status")?;
            }
            Wake::Message(m) => match m.context("reading the control link")? {
                None | Some((ToRole::Stop, _)) => return Ok(true),
                Some((ToRole::Probe { probe, arg }, _)) => crate::role::answer_probe(control, &probe, arg.as_deref()).await?,
                Some((ToRole::Connected { peer }, mut fds)) => {
                    let answer = match fds.pop() {
                        Some(fd) => Ok((TcpStream::from(fd), peer)),
                        None => Err("the supervisor's connection arrived without its socket".to_string()),
                    };
                    if let Some(tx) = &answers {
                        let _ = tx.try_send(answer);
                    }
                }
                Some((ToRole::ConnectFailed { error }, _)) => {
                    if let Some(tx) = &answers {
                        let _ = tx.try_send(Err(error));
                    }
                }
                Some((ToRole::Link { peer }, _)) => tracing::warn!(%peer, "ignoring a link the remote role does not use"),
                Some((ToRole::Notice(_), _)) => {}
            },
        }
    }
}
