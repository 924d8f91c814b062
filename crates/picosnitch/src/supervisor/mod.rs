//! The supervisor (`picosnitch daemon`): starts each role as its own process, wires
//! them together, restarts any that dies (its peers get fresh links to the
//! replacement), reports readiness to systemd, and writes the status file.
//!
//! Starting and restarting are the same code: a role is spawned with its control link
//! at fd 3, then linked to each of its peers that is running.
mod backoff;
pub mod policy;
mod spawn;

use crate::status::{PipelineStatus, RoleState, STATUS_FORMAT};
use anyhow::Context;
use async_io::{Async, Timer};
use backoff::Backoff;
use futures_lite::StreamExt;
use picosnitch_config::Config;
use picosnitch_ipc::control::{FromRole, Role, ToRole};
use picosnitch_ipc::notices::{Notice, NoticeKind};
use picosnitch_ipc::status::RoleStatus;
use picosnitch_ipc::{Link, SeqPacket};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// `role:probe[=arg],...`: probes the supervisor sends to each role's first process,
/// for the sandbox tests (see picosnitch_sandbox::probe).
pub const PROBE_ENV: &str = "PICOSNITCH_SANDBOX_PROBE";

fn probes_for(role: Role) -> Vec<(String, Option<String>)> {
    let Some(spec) = std::env::var_os(PROBE_ENV) else { return Vec::new() };
    let spec = spec.to_string_lossy().into_owned();
    spec.split(',')
        .filter_map(|item| {
            let (r, probe) = item.trim().split_once(':')?;
            (r == role.name()).then(|| match probe.split_once('=') {
                Some((p, a)) => (p.to_string(), Some(a.to_string())),
                None => (probe.to_string(), None),
            })
        })
        .collect()
}

/// The order roles start in: each finds the peers it needs already running. The
/// remote role (only with `[database.remote]`) needs no peer: it reads the spool; the
/// virustotal role (only with a `[virustotal]` API key), the notify and user-hasher
/// roles (only with a desktop user), the opener and the rdns role (only with
/// `[monitoring] reverse_dns`) must be up before the primary links to them.
const START_ORDER: [Role; 10] = [
    Role::Writer,
    Role::Hasher,
    Role::Opener,
    Role::VirusTotal,
    Role::Notify,
    Role::UserHasher,
    Role::ReverseDns,
    Role::Primary,
    Role::Monitor,
    Role::Remote,
];
/// The order they stop in: the monitor hands its last counts to the primary, the
/// primary its last rows to the writer, which spools them for the remote role.
const STOP_ORDER: [(Role, Duration); 10] = [
    (Role::Monitor, Duration::from_secs(5)),
    (Role::Primary, Duration::from_secs(25)),
    (Role::Writer, Duration::from_secs(10)),
    (Role::Hasher, Duration::from_secs(3)),
    (Role::Opener, Duration::from_secs(1)),
    (Role::Notify, Duration::from_secs(6)),
    // A hung read is abandoned, never waited for: it stops at once.
    (Role::UserHasher, Duration::from_secs(3)),
    (Role::Remote, Duration::from_secs(5)),
    (Role::VirusTotal, Duration::from_secs(3)),
    (Role::ReverseDns, Duration::from_secs(3)),
];
/// A loss is announced at most this often (its counters are in `picosnitch status`).
const LOSS_NOTICE_PERIOD: Duration = Duration::from_secs(60);

/// Connections the supervisor makes for the remote role: this long per address.
const REMOTE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type SupervisorLink = Link<ToRole, picosnitch_ipc::control::FromRole>;

struct Slot {
    control: Option<Rc<SupervisorLink>>,
    child: Option<Child>,
    death_note: Option<std::fs::File>,
    /// The current process has reported (see RoleState::ready).
    reported: bool,
    started: Instant,
    restarts: u32,
    last_exit: Option<String>,
    backoff: Backoff,
}

struct Supervisor {
    exe: PathBuf,
    config_path: Option<PathBuf>,
    slots: RefCell<BTreeMap<Role, Slot>>,
    status: RefCell<PipelineStatus>,
    attached: Cell<bool>,
    writer_up: Cell<bool>,
    ready: Cell<bool>,
    stopping: Cell<bool>,
    fatal: async_channel::Sender<String>,
    /// `[database.remote]` host and port: the only place it connects the remote role to.
    remote: Option<(String, u16)>,
    /// A connection for the remote role is being made (one at a time).
    connecting: Cell<bool>,
    /// The live feed's listening socket, handed to every primary started.
    feed: Option<std::os::unix::net::UnixListener>,
    /// Roles this configuration runs (the notify role only for a desktop user).
    roles: Vec<Role>,
    /// Losses already announced to the desktop user, and when.
    losses_announced: Cell<(u64, Option<Instant>)>,
    /// Where the virustotal role's API key comes from (read again at each start).
    virustotal: picosnitch_config::VirusTotalConfig,
    /// For the rdns role's socket, connected to the resolver at each start.
    config: Config,
}

pub fn run(config_path: Option<&Path>, config: &Config) -> anyhow::Result<()> {
    let runtime_dir = &config.data.runtime_dir;
    let ctx = crate::confine::context(config)?;
    let gid = Some(ctx.service_gid);
    prepare_runtime_dir(runtime_dir, gid)?;
    prepare_state_dir(&config.database.path, ctx.service_uid, ctx.service_gid)?;
    if config.database.remote.is_some() {
        prepare_spool_dir(&ctx.spool_dir, ctx.service_uid, ctx.service_gid)?;
    }
    let roles: Vec<Role> = START_ORDER
        .into_iter()
        .filter(|r| *r != Role::Remote || config.database.remote.is_some())
        .filter(|r| *r != Role::VirusTotal || config.virustotal.enabled())
        .filter(|r| *r != Role::Notify || crate::notify::enabled(config))
        .filter(|r| *r != Role::UserHasher || crate::user_hasher::enabled(config))
        .filter(|r| *r != Role::ReverseDns || config.monitoring.reverse_dns)
        .collect();
    let _lock = lock_runtime_dir(runtime_dir)?;
    let feed_path = runtime_dir.join(picosnitch_feed::SOCKET_NAME);
    let feed = bind_feed(&feed_path, ctx.service_gid);
    // INVARIANT: the directories exist and the lock is held; what remains is starting
    // roles and writing status, so the supervisor confines itself before anything else.
    let unconfined = crate::unconfined::requested();
    if unconfined {
        crate::unconfined::warn(policy::POLICY.role);
    } else {
        let report = picosnitch_sandbox::confine(&policy::POLICY, &ctx).context("confining the supervisor")?;
        tracing::info!(capabilities = %report.capabilities.join(","), landlock = %report.landlock, "supervisor confined");
    }
    let exe = std::env::current_exe().context("finding this executable to start the roles")?;
    let (fatal_tx, fatal_rx) = async_channel::unbounded();
    let sup = Rc::new(Supervisor {
        exe,
        config_path: config_path.map(Path::to_path_buf),
        slots: RefCell::new(BTreeMap::new()),
        status: RefCell::new(PipelineStatus {
            format: STATUS_FORMAT,
            version: env!("CARGO_PKG_VERSION").into(),
            supervisor_pid: std::process::id(),
            started_unix: picosnitch_store::unix_now(),
            unconfined,
            ..Default::default()
        }),
        attached: Cell::new(false),
        writer_up: Cell::new(false),
        ready: Cell::new(false),
        stopping: Cell::new(false),
        fatal: fatal_tx,
        remote: config.database.remote.as_ref().map(|r| (r.host.clone(), r.port)),
        connecting: Cell::new(false),
        feed,
        roles: roles.clone(),
        losses_announced: Cell::new((0, None)),
        virustotal: config.virustotal.clone(),
        config: config.clone(),
    });
    let status_path = runtime_dir.join("status.json");
    // Lives as long as the process; restarts spawn tasks on it from other tasks, which
    // needs the 'static lifetime that leaking gives.
    let ex: &'static smol::LocalExecutor<'static> = Box::leak(Box::new(smol::LocalExecutor::new()));
    let result = smol::block_on(ex.run(async {
        let mut signals = async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
            .context("installing SIGTERM/SIGINT handlers")?;
        let mut started = Vec::new();
        for &role in &roles {
            match sup.start(ex, role).await {
                Ok(()) => started.push(role),
                // Optional: without it the history is recorded all the same.
                Err(e) if role == Role::VirusTotal => {
                    tracing::error!(error = %format!("{e:#}"), "VirusTotal lookups are off: the virustotal role cannot start");
                }
                Err(e) if role == Role::ReverseDns => {
                    tracing::error!(error = %format!("{e:#}"), "reverse DNS lookups are off: the rdns role cannot start");
                }
                Err(e) => return Err(e),
            }
        }
        for role in started {
            let sup = Rc::clone(&sup);
            ex.spawn(async move { sup.watch(ex, role).await }).detach();
        }
        let outcome: anyhow::Result<()> = loop {
            enum Wake {
                Signal,
                Fatal(String),
                Tick,
            }
            let wake = futures_lite::future::or(
                async {
                    signals.next().await;
                    Wake::Signal
                },
                futures_lite::future::or(
                    async { fatal_rx.recv().await.map(Wake::Fatal).unwrap_or(Wake::Tick) },
                    async {
                        Timer::after(Duration::from_secs(1)).await;
                        Wake::Tick
                    },
                ),
            )
            .await;
            sup.write_status(&status_path, gid);
            sup.announce_losses().await;
            match wake {
                Wake::Signal => {
                    tracing::info!("stopping on signal");
                    break Ok(());
                }
                Wake::Fatal(why) => break Err(anyhow::anyhow!(why)),
                Wake::Tick => {}
            }
        };
        crate::sd_notify::notify("STOPPING=1");
        sup.stop_all().await;
        outcome
    }));
    let _ = std::fs::remove_file(&status_path);
    if sup.feed.is_some() {
        let _ = std::fs::remove_file(&feed_path);
    }
    tracing::info!("stopped");
    result
}

/// The history's directory belongs to the service user (the writer runs as it), and so
/// do the database files already in it. Links are never followed: a link planted in
/// the directory's place is refused, one in a file's place is changed itself.
fn prepare_state_dir(db: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    let Some(dir) = db.parent() else { return Ok(()) };
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the history's directory {}", dir.display()))?;
    }
    let md = std::fs::symlink_metadata(dir).with_context(|| format!("checking {}", dir.display()))?;
    if !md.is_dir() {
        anyhow::bail!("{} is not a directory (a link?): refusing to use it for the history", dir.display());
    }
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).with_context(|| format!("giving {} to the service user", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).with_context(|| format!("setting the mode of {}", dir.display()))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if std::fs::symlink_metadata(&f).is_ok() {
            std::os::unix::fs::lchown(&f, Some(uid), Some(gid)).with_context(|| format!("giving {} to the service user", f.display()))?;
        }
    }
    Ok(())
}

/// The remote spool belongs to the service user too: the writer fills it and the
/// remote role empties it. Never through a link.
fn prepare_spool_dir(dir: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => anyhow::bail!("{} is not a directory (a link?): refusing to use it for the remote spool", dir.display()),
        Err(_) => std::fs::create_dir(dir).with_context(|| format!("creating the remote spool {}", dir.display()))?,
    }
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).with_context(|| format!("giving {} to the service user", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).with_context(|| format!("setting the mode of {}", dir.display()))?;
    Ok(())
}

fn prepare_runtime_dir(dir: &Path, gid: Option<u32>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating the runtime directory {}", dir.display()))?;
    // Group members may read the status and, later, the live feed; nobody else.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
        .with_context(|| format!("setting the mode of {}", dir.display()))?;
    if gid.is_some() {
        std::os::unix::fs::chown(dir, None, gid).with_context(|| format!("setting the group of {}", dir.display()))?;
    }
    Ok(())
}

/// The live feed's socket: group members may read it, nobody else. Bound here, once,
/// so its path stays the same while primaries come and go. Without it the daemon still
/// records everything; only live readers go without, so it is an error, not a stop.
fn bind_feed(path: &Path, gid: u32) -> Option<std::os::unix::net::UnixListener> {
    let access = picosnitch_feed::SocketAccess { mode: 0o660, gid: Some(gid) };
    match picosnitch_feed::bind_listener(path, access) {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::error!(error = %e, "no live feed: picosnitch top and the tui's live tab will say the daemon is not running");
            None
        }
    }
}

/// One daemon per runtime directory: a second one would fight the first over the
/// kernel hooks and the database.
fn lock_runtime_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("daemon.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => anyhow::bail!(
            "another picosnitch daemon is running with the runtime directory {} (see `picosnitch status`); stop it first",
            dir.display()
        ),
        Err(e) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

impl Supervisor {
    /// Starts `role` and links it to its running peers.
    async fn start(self: &Rc<Self>, ex: &'static smol::LocalExecutor<'static>, role: Role) -> anyhow::Result<()> {
        let (ours, theirs) = SeqPacket::pair()?;
        // fd 5: the live feed's socket for the primary, the API key's pipe for virustotal,
        // the UDP socket connected to the resolver for rdns (the role may create none).
        let secrets = match role {
            Role::VirusTotal => Some(crate::virustotal::secrets::pipe_for_role(&self.virustotal)?),
            _ => None,
        };
        let resolver = match role {
            Role::ReverseDns => Some(crate::rdns::connect_resolver(&self.config)?),
            _ => None,
        };
        let extra = match role {
            Role::Primary => self.feed.as_ref().map(AsFd::as_fd),
            Role::VirusTotal => secrets.as_ref().map(AsFd::as_fd),
            Role::ReverseDns => resolver.as_ref().map(AsFd::as_fd),
            _ => None,
        };
        let started = spawn::spawn(&self.exe, self.config_path.as_deref(), role, theirs, extra)?;
        drop(secrets);
        drop(resolver);
        let child = started.child;
        let pid = child.id();
        let control = Rc::new(Link::new(ours)?);
        {
            let mut slots = self.slots.borrow_mut();
            let slot = slots.entry(role).or_insert_with(|| Slot {
                control: None,
                child: None,
                death_note: None,
                reported: false,
                started: Instant::now(),
                restarts: 0,
                last_exit: None,
                backoff: Backoff::default(),
            });
            slot.control = Some(Rc::clone(&control));
            slot.child = Some(child);
            slot.death_note = Some(started.death_note);
            slot.reported = false;
            slot.started = Instant::now();
        }
        tracing::debug!(%role, pid, "role started");
        let sup = Rc::clone(self);
        ex.spawn(async move { sup.read_reports(ex, role, control).await }).detach();
        // A failed link is not an error of this start: the process at the other end died
        // (several roles can die at once), and its own restart links the two again.
        for &peer in role.peers() {
            let peer_control = self.slots.borrow().get(&peer).and_then(|s| s.control.clone());
            let (Some(peer_control), Some(own)) = (peer_control, self.control_of(role)) else { continue };
            let (a, b) = SeqPacket::pair()?;
            if let Err(e) = own.send_with_fds(&ToRole::Link { peer }, &[a.as_fd()]).await {
                tracing::warn!(%role, error = %e, "the new role is gone before it could be linked; its restart will link it");
                break;
            }
            if let Err(e) = peer_control.send_with_fds(&ToRole::Link { peer: role }, &[b.as_fd()]).await {
                tracing::warn!(%role, %peer, error = %e, "not linked: the peer is gone; its restart will link it");
            }
        }
        Ok(())
    }

    fn mark_reported(&self, role: Role) {
        if let Some(s) = self.slots.borrow_mut().get_mut(&role) {
            s.reported = true;
        }
    }

    fn control_of(&self, role: Role) -> Option<Rc<SupervisorLink>> {
        self.slots.borrow().get(&role).and_then(|s| s.control.clone())
    }

    /// Waits for the role's process to end, then restarts it (unless stopping).
    async fn watch(self: Rc<Self>, ex: &'static smol::LocalExecutor<'static>, role: Role) {
        loop {
            let exit = self.wait_exit(role).await;
            if self.stopping.get() {
                return;
            }
            let (lived, wait) = {
                let mut slots = self.slots.borrow_mut();
                let Some(slot) = slots.get_mut(&role) else { return };
                let lived = slot.started.elapsed();
                slot.last_exit = Some(exit.clone());
                slot.restarts += 1;
                slot.control = None;
                (lived, slot.backoff.after_death(lived))
            };
            // The remote role may fail at start (an unreadable password file); the
            // local history must not wait for it, so it is restarted like later deaths.
            if !self.ready.get() && role != Role::Remote {
                let _ = self.fatal.try_send(format!(
                    "the {role} role {exit} while the daemon was starting; see its error above"
                ));
                return;
            }
            tracing::error!(%role, reason = %exit, lived_s = lived.as_secs(), restart_in_ms = wait.as_millis() as u64, "role died; restarting it");
            if role != Role::Notify {
                self.notice(Notice::new(NoticeKind::Error, format!("picosnitch: the {role} role {exit}; restarting it"), "See `journalctl -u picosnitch` and `picosnitch status`."))
                    .await;
            }
            Timer::after(wait).await;
            if self.stopping.get() {
                return;
            }
            if let Err(e) = self.start(ex, role).await {
                if role == Role::VirusTotal {
                    tracing::error!(error = %format!("{e:#}"), "VirusTotal lookups are off: the virustotal role cannot be restarted");
                    return;
                }
                if role == Role::ReverseDns {
                    tracing::error!(error = %format!("{e:#}"), "reverse DNS lookups are off: the rdns role cannot be restarted");
                    return;
                }
                let _ = self.fatal.try_send(format!("restarting the {role} role: {e:#}"));
                return;
            }
        }
    }

    /// Waits until the role's current process has ended and describes how.
    async fn wait_exit(&self, role: Role) -> String {
        let pid = self.slots.borrow().get(&role).and_then(|s| s.child.as_ref().map(Child::id));
        let Some(pid) = pid else { return "was not running".into() };
        // A pidfd becomes readable when the process ends: no SIGCHLD handling needed.
        let pidfd = rustix::process::Pid::from_raw(pid as i32)
            .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
            .and_then(|fd| Async::new(fd).ok());
        loop {
            let done = {
                let mut slots = self.slots.borrow_mut();
                match slots.get_mut(&role).and_then(|s| s.child.as_mut()) {
                    Some(child) => child.try_wait().ok().flatten(),
                    None => return "was not running".into(),
                }
            };
            if let Some(status) = done {
                let mut reason = spawn::describe_exit(status);
                if let Some(s) = self.slots.borrow_mut().get_mut(&role) {
                    s.child = None;
                    if let Some(call) = s.death_note.as_mut().and_then(spawn::read_death_note) {
                        tracing::error!(%role, syscall = %call, "the role made a system call its seccomp policy forbids; it was stopped before the call ran");
                        reason = format!("stopped by its seccomp policy at the forbidden system call {call}");
                    }
                    s.death_note = None;
                }
                return reason;
            }
            match &pidfd {
                Some(fd) => {
                    let _ = futures_lite::future::or(async { fd.readable().await.map(|_| ()) }, async {
                        Timer::after(Duration::from_secs(1)).await;
                        Ok(())
                    })
                    .await;
                }
                None => {
                    Timer::after(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn read_reports(self: Rc<Self>, ex: &'static smol::LocalExecutor<'static>, role: Role, control: Rc<SupervisorLink>) {
        loop {
            match control.recv().await {
                Ok(Some(FromRole::Attached { hook_set, reason })) => {
                    tracing::info!(%hook_set, %reason, "kernel hooks attached");
                    self.mark_reported(role);
                    self.attached.set(true);
                    self.check_ready(ex);
                }
                Ok(Some(FromRole::ProbeResult { probe, outcome })) => {
                    tracing::warn!(%role, probe = %probe, outcome = %outcome, "sandbox probe result");
                }
                Ok(Some(FromRole::Connect)) => self.connect_for(ex, role, &control),
                Ok(Some(FromRole::Status(s))) => {
                    if role != Role::Monitor {
                        self.mark_reported(role);
                    }
                    let mut st = self.status.borrow_mut();
                    match s {
                        RoleStatus::Monitor(m) => st.monitor = Some(m),
                        RoleStatus::Primary(p) => st.primary = Some(p),
                        RoleStatus::Hasher(h) => st.hasher = Some(h),
                        RoleStatus::Opener(o) => st.opener = Some(o),
                        RoleStatus::Notify(n) => st.notify = Some(n),
                        RoleStatus::UserHasher(u) => st.user_hasher = Some(u),
                        RoleStatus::Remote(r) => st.remote = Some(r),
                        RoleStatus::VirusTotal(v) => st.virustotal = Some(v),
                        RoleStatus::ReverseDns(r) => st.reverse_dns = Some(r),
                        RoleStatus::Writer(w) => {
                            st.writer = Some(w);
                            drop(st);
                            self.writer_up.set(true);
                            self.check_ready(ex);
                        }
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(%role, error = %e, "bad report from a role");
                    return;
                }
            }
        }
    }

    /// Connects to the configured remote database for the remote role and hands it the
    /// socket. Only for that role, only to that host and port: the role itself may not
    /// connect anywhere. Name resolution happens here, with the system's resolver.
    fn connect_for(self: &Rc<Self>, ex: &'static smol::LocalExecutor<'static>, role: Role, control: &Rc<SupervisorLink>) {
        let Some((host, port)) = self.remote.clone().filter(|_| role == Role::Remote) else {
            tracing::warn!(%role, "a role other than the remote one asked for a network connection; refused");
            return;
        };
        if self.connecting.replace(true) {
            return;
        }
        let sup = Rc::clone(self);
        let control = Rc::clone(control);
        ex.spawn(async move {
            let answer = picosnitch_remote::drain::connect_tcp(&host, port, REMOTE_CONNECT_TIMEOUT).await;
            let sent = match answer {
                Ok((stream, peer)) => {
                    tracing::debug!(%host, port, %peer, "connected for the remote role");
                    control.send_with_fds(&ToRole::Connected { peer }, &[stream.as_fd()]).await
                }
                Err(error) => control.send(&ToRole::ConnectFailed { error }).await,
            };
            if let Err(e) = sent {
                tracing::debug!(error = %e, "the remote role went away before its connection arrived");
            }
            sup.connecting.set(false);
        })
        .detach();
    }

    fn check_ready(self: &Rc<Self>, ex: &'static smol::LocalExecutor<'static>) {
        if !self.ready.get() && self.attached.get() && self.writer_up.get() {
            self.ready.set(true);
            tracing::info!("ready: every role is up and the kernel hooks are attached");
            crate::sd_notify::notify("READY=1");
            let sup = Rc::clone(self);
            ex.spawn(async move { sup.send_probes().await }).detach();
        }
    }

    /// Hands a notice to the notify role, if one runs; a notice that cannot be handed
    /// over is only logged (the event itself is in the log and the status already).
    async fn notice(&self, notice: Notice) {
        let Some(control) = self.control_of(Role::Notify) else { return };
        let sent = futures_lite::future::or(async { Some(control.send(&ToRole::Notice(notice)).await) }, async {
            Timer::after(Duration::from_millis(100)).await;
            None
        })
        .await;
        if !matches!(sent, Some(Ok(()))) {
            tracing::debug!("the notify role did not take a notice");
        }
    }

    /// Tells the desktop user when a loss counter went up, at most once a minute.
    async fn announce_losses(&self) {
        if !self.roles.contains(&Role::Notify) {
            return;
        }
        let (total, losses) = {
            let st = self.status.borrow();
            let losses = st.losses();
            (st.loss_total(), losses)
        };
        let (announced, at) = self.losses_announced.get();
        if total <= announced || at.is_some_and(|t| t.elapsed() < LOSS_NOTICE_PERIOD) {
            return;
        }
        self.losses_announced.set((total, Some(Instant::now())));
        self.notice(Notice::new(
            NoticeKind::EventsLost,
            format!("picosnitch lost {} events or rows", total - announced),
            format!("{}\nSee `picosnitch status`.", losses.join("; ")),
        ))
        .await;
    }

    /// The sandbox tests' probes, once ready, to each role's first process only (a
    /// probe its seccomp policy forbids stops the role; its replacement gets none).
    async fn send_probes(&self) {
        for role in self.roles.clone() {
            let Some(control) = self.control_of(role) else { continue };
            for (probe, arg) in probes_for(role) {
                tracing::warn!(%role, probe = %probe, "sending a sandbox probe ({PROBE_ENV})");
                if control.send(&ToRole::Probe { probe, arg }).await.is_err() {
                    break;
                }
            }
        }
    }

    fn write_status(&self, path: &Path, gid: Option<u32>) {
        let roles: Vec<RoleState> = self
            .slots
            .borrow()
            .iter()
            .map(|(role, s)| RoleState {
                role: role.name().into(),
                pid: s.child.as_ref().map(Child::id),
                restarts: s.restarts,
                ready: s.child.is_some() && s.reported,
                last_exit: s.last_exit.clone(),
                up_seconds: if s.child.is_some() { s.started.elapsed().as_secs() } else { 0 },
            })
            .collect();
        let mut st = self.status.borrow_mut();
        st.roles = roles;
        st.ready = self.ready.get();
        st.updated_unix = picosnitch_store::unix_now();
        if let Err(e) = st.write_atomically(path, gid) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the status file");
        }
    }

    /// Stops the roles in order, each given time to finish, then killed.
    async fn stop_all(&self) {
        self.stopping.set(true);
        for (role, grace) in STOP_ORDER {
            let Some(control) = self.control_of(role) else { continue };
            let _ = control.send(&ToRole::Stop).await;
            let deadline = Instant::now() + grace;
            loop {
                let gone = {
                    let mut slots = self.slots.borrow_mut();
                    match slots.get_mut(&role).and_then(|s| s.child.as_mut()) {
                        Some(child) => matches!(child.try_wait(), Ok(Some(_))),
                        None => true,
                    }
                };
                if gone {
                    break;
                }
                if Instant::now() >= deadline {
                    tracing::warn!(%role, "role did not stop in time; killing it");
                    if let Some(child) = self.slots.borrow_mut().get_mut(&role).and_then(|s| s.child.as_mut()) {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    break;
                }
                Timer::after(Duration::from_millis(20)).await;
            }
            if let Some(s) = self.slots.borrow_mut().get_mut(&role) {
                s.child = None;
                s.control = None;
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Never leave a role behind, whatever path led here.
        for slot in self.slots.get_mut().values_mut() {
            if let Some(child) = slot.child.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

