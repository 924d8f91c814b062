//! The hasher role: computes the sha256 of executables it receives as open
//! descriptors. It opens no path at all, so it can run with no filesystem access.
use crate::role::{self, Command, Control, Duty};
use anyhow::Context;
use async_io::Timer;
use picosnitch_identity::hash::sha256_fd;
use picosnitch_ipc::control::{FromRole, Role};
use picosnitch_ipc::hashing::{HashReply, HashRequest};
use picosnitch_ipc::status::{HasherStatus, RoleStatus};
use picosnitch_ipc::{Link, SeqPacket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

pub mod policy;

const STATUS_PERIOD: Duration = Duration::from_secs(2);

type PrimaryLink = Link<HashReply, HashRequest>;

enum Wake {
    Command(anyhow::Result<Command>),
    Request(Result<Option<(HashRequest, Vec<std::os::fd::OwnedFd>)>, picosnitch_ipc::IpcError>),
    Tick,
}

pub fn run(control: SeqPacket, config: &picosnitch_config::Config) -> anyhow::Result<()> {
    // INVARIANT: confined before any thread exists and before any descriptor arrives.
    crate::confine::confine_role(&policy::POLICY, config)?;
    smol::block_on(async {
        let control: Control = Link::new(control)?;
        let mut primary: Option<PrimaryLink> = None;
        let mut status = HasherStatus::default();
        // Reported at once: the supervisor counts the role as up from its first report.
        control.send(&FromRole::Status(RoleStatus::Hasher(status.clone()))).await.context("reporting status")?;
        let mut next_status = Instant::now() + STATUS_PERIOD;
        loop {
            let wake = futures_lite::future::or(
                async { Wake::Command(role::next_command(&control).await) },
                futures_lite::future::or(
                    async {
                        match &primary {
                            Some(p) => Wake::Request(p.recv_with_fds().await),
                            None => futures_lite::future::pending().await,
                        }
                    },
                    async {
                        Timer::at(next_status).await;
                        Wake::Tick
                    },
                ),
            )
            .await;
            match wake {
                Wake::Command(cmd) => match role::duty(&control, cmd?, Role::Hasher).await? {
                    Duty::Primary(sock) => primary = Some(Link::new(sock)?),
                    Duty::Stop => return Ok(()),
                    Duty::Notice(_) | Duty::Done => {}
                },
                Wake::Request(Ok(Some((req, fds)))) => {
                    let result = match <[std::os::fd::OwnedFd; 1]>::try_from(fds) {
                        Ok([fd]) => {
                            let hashed = blocking::unblock(move || {
                                let size = std::fs::File::from(fd.try_clone()?).metadata().map(|m| m.len()).unwrap_or(0);
                                sha256_fd(fd.as_fd()).map(|h| (h, size))
                            })
                            .await;
                            match hashed {
                                Ok((h, size)) => {
                                    status.files_hashed += 1;
                                    status.bytes_hashed += size;
                                    Ok(h)
                                }
                                Err(e) => {
                                    status.failures += 1;
                                    Err(format!("reading the executable: {e}"))
                                }
                            }
                        }
                        Err(fds) => {
                            status.failures += 1;
                            Err(format!("expected one descriptor with the request, got {}", fds.len()))
                        }
                    };
                    if let Some(p) = &primary {
                        if let Err(e) = p.send(&HashReply { id: req.id, result }).await {
                            tracing::warn!(error = %e, "primary link lost");
                            primary = None;
                        }
                    }
                }
                Wake::Request(Ok(None)) => {
                    tracing::info!("primary closed its link; waiting for a new one");
                    primary = None;
                }
                Wake::Request(Err(e)) => {
                    tracing::warn!(error = %e, "bad request from the primary; dropping the link");
                    primary = None;
                }
                Wake::Tick => {}
            }
            // Checked after every wake, not only on the timer's: with requests always
            // waiting the timer never wins the race, and a hasher that never reports is
            // never counted as up.
            if Instant::now() >= next_status {
                control.send(&FromRole::Status(RoleStatus::Hasher(status.clone()))).await.context("reporting status")?;
                next_status = Instant::now() + STATUS_PERIOD;
            }
        }
    })
}
