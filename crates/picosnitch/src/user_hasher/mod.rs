//! The user-hasher role: hashes, as the desktop user (`[desktop] user`, never root),
//! executables the service cannot open. A FUSE mount without `allow_other` (sshfs,
//! rclone, an AppImage's squashfuse) refuses every user but the one who mounted it,
//! root with CAP_DAC_READ_SEARCH included. The primary sends such files by path with
//! the kernel's (device, inode); this role opens the path with the desktop user's
//! rights, hashes the file only if it is the one the kernel ran, and answers within
//! `[desktop] hash_timeout_seconds` (see `reads` for a FUSE server that never answers).
mod reads;
pub mod policy;

use crate::role::{self, Command, Control, Duty};
use anyhow::Context;
use async_io::Timer;
use picosnitch_config::Config;
use picosnitch_ipc::control::{FromRole, Role};
use picosnitch_ipc::hashing::{UserHashOutcome, UserHashReply, UserHashRequest};
use picosnitch_ipc::status::{RoleStatus, UserHasherStatus};
use picosnitch_ipc::{Link, SeqPacket};
use reads::{Done, Job, Reader, Start};
use std::time::{Duration, Instant};

const STATUS_PERIOD: Duration = Duration::from_secs(2);

type PrimaryLink = Link<UserHashReply, UserHashRequest>;

/// Whether the daemon runs this role: whenever a desktop user is configured.
pub fn enabled(config: &Config) -> bool {
    !config.desktop.user.trim().is_empty()
}

enum Wake {
    Command(anyhow::Result<Command>),
    Request(Result<Option<UserHashRequest>, picosnitch_ipc::IpcError>),
    Finished(Done),
    Tick,
}

pub fn run(control: SeqPacket, config: &Config) -> anyhow::Result<()> {
    // Refuses root by name or uid before anything else.
    crate::notify::desktop_account(config)?.context("the user-hasher role runs only with [desktop] user set")?;
    // INVARIANT: confined before any thread exists; it opens nothing before, and every
    // file after, as the desktop user within the policy.
    crate::confine::confine_role(&policy::POLICY, config)?;
    let timeout = Duration::from_secs(u64::from(config.desktop.hash_timeout_seconds));
    let reader = Reader::new(timeout);
    smol::block_on(async {
        let control: Control = Link::new(control)?;
        let mut primary: Option<PrimaryLink> = None;
        let mut status = UserHasherStatus::default();
        control.send(&FromRole::Status(RoleStatus::UserHasher(status.clone()))).await.context("reporting status")?;
        let mut next_status = Instant::now() + STATUS_PERIOD;
        // One file at a time: the primary keeps a few requests queued on the link.
        let mut current: Option<Job> = None;
        loop {
            let wake = futures_lite::future::or(
                async { Wake::Command(role::next_command(&control).await) },
                futures_lite::future::or(
                    async {
                        match (&current, &primary) {
                            (Some(job), _) => Wake::Finished(reader.finish(job).await),
                            (None, Some(p)) => Wake::Request(p.recv().await),
                            (None, None) => futures_lite::future::pending().await,
                        }
                    },
                    async {
                        Timer::at(next_status).await;
                        Wake::Tick
                    },
                ),
            )
            .await;
            let mut answer: Option<UserHashReply> = None;
            match wake {
                Wake::Command(cmd) => match role::duty(&control, cmd?, Role::UserHasher).await? {
                    // A file being hashed is answered on the new link (the primary asks
                    // again too, and ignores the second answer).
                    Duty::Primary(sock) => primary = Some(Link::new(sock)?),
                    Duty::Stop => return Ok(()),
                    Duty::Notice(_) | Duty::Done => {}
                },
                Wake::Request(Ok(Some(req))) => {
                    let id = req.id;
                    let path = req.path.clone();
                    match reader.start(req) {
                        Start::Running(job) => current = Some(job),
                        Start::Refused(outcome) => {
                            tracing::warn!(path, "not hashed: an earlier read on its filesystem still hangs (a FUSE server that does not answer)");
                            answer = Some(count(&mut status, id, Done { outcome, bytes: 0, cached: false }));
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
                Wake::Finished(done) => {
                    if let Some(job) = current.take() {
                        if done.outcome == UserHashOutcome::TimedOut {
                            tracing::warn!(
                                timeout_s = timeout.as_secs(),
                                "an executable was not hashed in [desktop] hash_timeout_seconds (a FUSE server that does not answer?); its read is abandoned"
                            );
                        }
                        answer = Some(count(&mut status, job.id, done));
                    }
                }
                Wake::Tick => {}
            }
            if let (Some(a), Some(p)) = (answer, &primary) {
                if let Err(e) = p.send(&a).await {
                    tracing::warn!(error = %e, "primary link lost");
                    primary = None;
                }
            }
            if Instant::now() >= next_status {
                status.reads_hung = reader.hung() as u64;
                control.send(&FromRole::Status(RoleStatus::UserHasher(status.clone()))).await.context("reporting status")?;
                next_status = Instant::now() + STATUS_PERIOD;
            }
        }
    })
}

fn count(status: &mut UserHasherStatus, id: u64, done: Done) -> UserHashReply {
    match &done.outcome {
        UserHashOutcome::Hashed(_) if done.cached => status.cache_hits += 1,
        UserHashOutcome::Hashed(_) => {
            status.files_hashed += 1;
            status.bytes_hashed += done.bytes;
        }
        UserHashOutcome::Replaced => status.replaced += 1,
        UserHashOutcome::TimedOut => status.timeouts += 1,
        UserHashOutcome::Failed(why) => {
            status.failures += 1;
            tracing::warn!(error = %why, "the desktop user cannot hash an executable either");
        }
    }
    UserHashReply { id, outcome: done.outcome }
}
