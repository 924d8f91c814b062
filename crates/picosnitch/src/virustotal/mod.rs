//! The virustotal role (optional: started only with a `[virustotal]` API key): asks
//! VirusTotal about the sha256 of each new executable the primary sends, one request
//! every `request_limit_seconds`, uploads files VirusTotal does not know when
//! `file_upload` is on, and answers the primary with the verdict. It holds the API key
//! (handed over by the supervisor through a pipe) and the executables it may upload
//! (handed over by the primary as descriptors); it opens no file itself, and may
//! connect over TCP only to the API's port.
mod job;
pub mod policy;
pub mod secrets;

use crate::role::{self, Command, Control, Duty};
use anyhow::Context;
use async_io::Timer;
use job::{Job, Stage, Step};
use picosnitch_config::Config;
use picosnitch_ipc::control::{FromRole, Role};
use picosnitch_ipc::status::{RoleStatus, VirusTotalStatus};
use picosnitch_ipc::virustotal::{VtReply, VtRequest};
use picosnitch_ipc::{IpcError, Link, SeqPacket};
use picosnitch_virustotal::{Client, ClientConfig, Pacing, VtError};
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

const STATUS_PERIOD: Duration = Duration::from_secs(2);
/// One request, connect to last byte (an upload of 32 MiB on a slow link included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Transient failures (network, quota) of one executable before it is given up.
const MAX_ATTEMPTS: u32 = 5;
/// Jobs held at once. The primary sends at most its window (see primary::virustotal);
/// this bounds what a misbehaving primary could make the role hold.
const MAX_QUEUED: usize = 64;

type PrimaryLink = Link<VtReply, VtRequest>;

/// A job's step running on a blocking thread; it hands the job back with the outcome.
type Running = blocking::Task<(Box<Job>, Result<Step, VtError>)>;

enum Wake {
    Command(anyhow::Result<Command>),
    Request(Result<Option<(VtRequest, Vec<OwnedFd>)>, IpcError>),
    Stepped(Box<Job>, Result<Step, VtError>),
    Tick,
}

pub fn run(control: SeqPacket, config: &Config) -> anyhow::Result<()> {
    let vt = &config.virustotal;
    let secrets = secrets::take()?;
    let client = Client::new(ClientConfig {
        api_url: vt.api_url.clone(),
        api_key: secrets.api_key,
        ca_pem: secrets.ca_pem.map(String::into_bytes),
        timeout: REQUEST_TIMEOUT,
    })
    .context("setting up the VirusTotal client ([virustotal] ca_file)")?;
    // INVARIANT: confined before any thread exists, with the key read and the client
    // built; from here on its only ways out are its links and TCP to the API's port.
    crate::confine::confine_role_connecting(&policy::POLICY, config, Some(vt.api_port()))?;
    let client = Arc::new(client);
    let upload = vt.file_upload;
    let upload_max = u64::from(vt.upload_max_mib) * 1024 * 1024;
    let mut pacing = Pacing::new(Duration::from_secs(u64::from(vt.request_limit_seconds)));
    smol::block_on(async {
        let control: Control = Link::new(control)?;
        let mut primary: Option<PrimaryLink> = None;
        let mut status = VirusTotalStatus::default();
        let mut queue: VecDeque<Job> = VecDeque::new();
        let mut running: Option<Running> = None;
        control.send(&FromRole::Status(RoleStatus::VirusTotal(status.clone()))).await.context("reporting status")?;
        let mut next_status = Instant::now() + STATUS_PERIOD;
        tracing::info!(api = %vt.api_url, upload, interval_s = vt.request_limit_seconds, "VirusTotal lookups on");
        loop {
            // Start the next step when its turn has come.
            if running.is_none() && Instant::now() >= pacing.next_allowed() {
                if let Some(job) = queue.pop_front() {
                    pacing.started(Instant::now());
                    let client = Arc::clone(&client);
                    let mut job = Box::new(job);
                    running = Some(blocking::unblock(move || {
                        let r = job::step(&client, &mut job, upload_max);
                        (job, r)
                    }));
                }
            }
            let wake_at = if running.is_none() && !queue.is_empty() { pacing.next_allowed().min(next_status) } else { next_status };
            let wake = futures_lite::future::or(
                async { Wake::Command(role::next_command(&control).await) },
                futures_lite::future::or(
                    async {
                        match &primary {
                            Some(p) => Wake::Request(p.recv_with_fds().await),
                            None => futures_lite::future::pending().await,
                        }
                    },
                    futures_lite::future::or(
                        async {
                            match &mut running {
                                Some(t) => {
                                    let (job, r) = t.await;
                                    Wake::Stepped(job, r)
                                }
                                None => futures_lite::future::pending().await,
                            }
                        },
                        async {
                            Timer::at(wake_at).await;
                            Wake::Tick
                        },
                    ),
                ),
            )
            .await;
            match wake {
                Wake::Command(cmd) => match role::duty(&control, cmd?, Role::VirusTotal).await? {
                    Duty::Primary(sock) => {
                        // A new primary sends again whatever it has not had answered.
                        queue.clear();
                        primary = Some(Link::new(sock)?);
                    }
                    Duty::Stop => return Ok(()),
                    Duty::Notice(_) | Duty::Done => {}
                },
                Wake::Request(Ok(Some((req, mut fds)))) => {
                    if queue.len() >= MAX_QUEUED {
                        status.dropped_queue_full += 1;
                        reply(&mut primary, VtReply { sha256: req.sha256.clone(), exe: req.exe, result: Err("the virustotal role's queue is full".into()) }).await;
                    } else {
                        let fd = if upload { fds.pop() } else { None };
                        queue.push_back(Job { req, fd, stage: Stage::Lookup, attempts: 0 });
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
                Wake::Stepped(mut job, result) => {
                    running = None;
                    match result {
                        Ok(Step::Again) => {
                            pacing.answered(Instant::now());
                            queue.push_front(*job);
                        }
                        Ok(Step::Done(v) | Step::Uploaded(v)) => {
                            pacing.answered(Instant::now());
                            if matches!(job.stage, Stage::Poll { .. }) {
                                status.files_uploaded += 1;
                            }
                            status.lookups += 1;
                            if v.flagged() {
                                status.flagged += 1;
                                tracing::warn!(exe = %job.req.exe, sha256 = %v.sha256, verdict = %v.summary(), "VirusTotal flags this executable");
                            } else {
                                tracing::info!(exe = %job.req.exe, sha256 = %v.sha256, verdict = %v.summary(), "VirusTotal verdict");
                            }
                            reply(&mut primary, VtReply { sha256: job.req.sha256.clone(), exe: job.req.exe.clone(), result: Ok(v) }).await;
                        }
                        Err(e) => {
                            let text = e.to_string();
                            if matches!(e, VtError::Quota { .. }) {
                                status.quota_errors += 1;
                            } else {
                                status.errors += 1;
                            }
                            if status.last_error.as_deref() != Some(text.as_str()) {
                                tracing::error!(error = %text, exe = %job.req.exe, "VirusTotal request failed");
                            }
                            status.last_error = Some(text.clone());
                            job.attempts += 1;
                            if e.is_transient() && job.attempts < MAX_ATTEMPTS {
                                let wait = pacing.back_off(Instant::now());
                                tracing::info!(wait_s = wait.as_secs(), attempt = job.attempts, "asking VirusTotal again later");
                                queue.push_front(*job);
                            } else {
                                reply(&mut primary, VtReply { sha256: job.req.sha256.clone(), exe: job.req.exe.clone(), result: Err(text) }).await;
                            }
                        }
                    }
                }
                Wake::Tick => {}
            }
            if Instant::now() >= next_status {
                status.queued = queue.len() as u64;
                control.send(&FromRole::Status(RoleStatus::VirusTotal(status.clone()))).await.context("reporting status")?;
                next_status = Instant::now() + STATUS_PERIOD;
            }
        }
    })
}

async fn reply(primary: &mut Option<PrimaryLink>, r: VtReply) {
    if let Some(p) = primary {
        if let Err(e) = p.send(&r).await {
            tracing::warn!(error = %e, "primary link lost; it asks again after its restart");
            *primary = None;
        }
    }
}
