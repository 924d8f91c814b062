//! The notify role: desktop notifications for the desktop user (`[desktop] user`),
//! never root, on that user's session bus. Notices come from the primary (new
//! executables and names, changed sha256) and the supervisor (events lost, a role
//! failed); duplicates are dropped and bursts rate-limited here (see `limiter`).
mod bus;
mod limiter;
pub mod policy;

use crate::role::{self, Command, Control, Duty};
use anyhow::Context;
use async_io::Timer;
use limiter::{Decision, Limiter};
use picosnitch_config::Config;
use picosnitch_ipc::control::{FromRole, Role};
use picosnitch_ipc::notices::Notice;
use picosnitch_ipc::status::{NotifyStatus, RoleStatus};
use picosnitch_ipc::{Link, SeqPacket};
use std::time::{Duration, Instant};

const STATUS_PERIOD: Duration = Duration::from_secs(2);
const TICK: Duration = Duration::from_secs(1);

type PrimaryLink = Link<(), Notice>;

enum Wake {
    Command(anyhow::Result<Command>),
    Notice(Result<Option<Notice>, picosnitch_ipc::IpcError>),
    Tick,
}

/// The desktop user's uid and gid from `[desktop] user`; `None` when unset. Root (by
/// any name) is refused: notifications never run with root's session or rights.
pub fn desktop_account(config: &Config) -> anyhow::Result<Option<(u32, u32)>> {
    let user = config.desktop.user.trim();
    if user.is_empty() {
        return Ok(None);
    }
    let uid = crate::accounts::uid_of(user)
        .with_context(|| format!("the desktop user {user:?} ([desktop] user) does not exist: name an existing user or a uid, or leave it empty"))?;
    if uid == 0 {
        anyhow::bail!("[desktop] user {user:?} is root: notifications are never sent as root; name the desktop user who should see them");
    }
    let gid = crate::accounts::primary_gid_of(uid).unwrap_or(uid);
    Ok(Some((uid, gid)))
}

/// Whether the daemon runs a notify role with this configuration.
pub fn enabled(config: &Config) -> bool {
    config.desktop.notifications && !config.desktop.user.trim().is_empty()
}

pub fn run(control: SeqPacket, config: &Config) -> anyhow::Result<()> {
    let (uid, _) = desktop_account(config)?.context("the notify role runs only with [desktop] user set")?;
    let address = bus::session_bus_address(uid);
    // zbus finds the session bus here; set while this process has one thread.
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);
    // INVARIANT: confined before any thread exists; it opens nothing before, and each
    // notification's bus connection is made after, within the policy.
    crate::confine::confine_role(&policy::POLICY, config)?;
    let d = &config.desktop;
    let mut limiter = Limiter::new(
        d.notification_burst,
        Duration::from_secs(u64::from(d.notification_interval_seconds)),
        Duration::from_secs(u64::from(d.notification_dedup_seconds)),
    );
    smol::block_on(async {
        let control: Control = Link::new(control)?;
        let mut primary: Option<PrimaryLink> = None;
        let mut status = NotifyStatus { bus: address.clone(), ..Default::default() };
        control.send(&FromRole::Status(RoleStatus::Notify(status.clone()))).await.context("reporting status")?;
        let mut next_status = Instant::now() + STATUS_PERIOD;
        tracing::info!(bus = %address, "sending desktop notifications");
        loop {
            let wake = futures_lite::future::or(
                async { Wake::Command(role::next_command(&control).await) },
                futures_lite::future::or(
                    async {
                        match &primary {
                            Some(p) => Wake::Notice(p.recv().await),
                            None => futures_lite::future::pending().await,
                        }
                    },
                    async {
                        Timer::after(TICK).await;
                        Wake::Tick
                    },
                ),
            )
            .await;
            let mut offered: Option<Notice> = None;
            match wake {
                Wake::Command(cmd) => match role::duty(&control, cmd?, Role::Notify).await? {
                    Duty::Primary(sock) => primary = Some(Link::new(sock)?),
                    Duty::Notice(n) => offered = Some(n),
                    Duty::Stop => return Ok(()),
                    Duty::Done => {}
                },
                Wake::Notice(Ok(Some(n))) => offered = Some(n),
                Wake::Notice(Ok(None)) => {
                    tracing::info!("primary closed its link; waiting for a new one");
                    primary = None;
                }
                Wake::Notice(Err(e)) => {
                    tracing::warn!(error = %e, "bad notice from the primary; dropping the link");
                    primary = None;
                }
                Wake::Tick => {}
            }
            let now = Instant::now();
            let mut to_show = Vec::new();
            if let Some(n) = offered {
                match limiter.offer(n, now) {
                    Decision::Show(n) => to_show.push(n),
                    Decision::Duplicate => status.duplicates += 1,
                    Decision::Held => status.rate_limited += 1,
                }
            }
            to_show.extend(limiter.due(now));
            for n in to_show {
                match bus::show(&n).await {
                    Ok(()) => {
                        status.sent += 1;
                        tracing::debug!(kind = n.kind.name(), text = %n.text, "notification sent");
                    }
                    Err(e) => {
                        status.failed += 1;
                        tracing::warn!(bus = %address, error = %e, text = %n.text, "desktop notification not delivered (is the user logged in, with a notification server?)");
                        status.last_error = Some(e);
                    }
                }
            }
            if Instant::now() >= next_status {
                control.send(&FromRole::Status(RoleStatus::Notify(status.clone()))).await.context("reporting status")?;
                next_status = Instant::now() + STATUS_PERIOD;
            }
        }
    })
}
