//! The primary role: turns kernel flow events into rows attributed to executables,
//! sums them per write period, and hands them to the writer. It never waits on disk
//! or on another role: hashing and writing are requests it does not block on, and
//! every link it writes to has a window that fits the link's buffer.
mod domains;
mod feed;
mod identity;
mod outbox;
mod pack;
mod periods;
pub mod policy;
mod reverse_dns;
mod sightings;
mod user_hash;
mod via_proc;
mod virustotal;

use crate::role::{self, Command, Control};
use anyhow::Context;
use async_channel::{Receiver, Sender};
use async_io::Timer;
use domains::Domains;
use feed::{Feed, FeedFlow};
use identity::Identities;
use outbox::Outbox;
use periods::{EntryKey, FlowRow, Periods};
use picosnitch_ipc::notices::Notice;
use sightings::Sightings;
use picosnitch_config::Config;
use picosnitch_ipc::control::{FromRole, Role};
use picosnitch_ipc::events::{EventBatch, FlowOpen, KernelEvent};
use picosnitch_ipc::hashing::{HashReply, HashRequest, UserHashReply, UserHashRequest};
use picosnitch_ipc::rows::{RowAck, RowBatch};
use picosnitch_ipc::status::{PrimaryStatus, RoleStatus};
use picosnitch_ipc::{IpcError, Link, SeqPacket};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long, and how many, flows opened without a domain wait for an answer that the
/// kernel saw before them but the monitor drained after them (two rings, one drain
/// after the other).
const RECENT_UNNAMED_AGE: Duration = Duration::from_secs(2);
const RECENT_UNNAMED_MAX: usize = 4096;
/// SOCK_STREAM: the sockets whose ClientHello may name their flows.
const SOCK_STREAM: u16 = 1;
const STATUS_PERIOD: Duration = Duration::from_secs(2);
/// Rows wait this long for their executables' hashes before being written without.
const HASH_WAIT: Duration = Duration::from_secs(30);
/// A hasher that answers nothing for this long is given up on.
const HASHER_TIMEOUT: Duration = Duration::from_secs(60);
/// Hash requests in flight at once (well under the link's 10-message queue).
const HASH_WINDOW: usize = 4;
/// How long a stopping primary waits for hashes, then for the writer's acknowledgements.
const STOP_HASH_WAIT: Duration = Duration::from_secs(3);
const STOP_WRITER_WAIT: Duration = Duration::from_secs(15);
/// How often a stopping primary looks again at its hashes and the writer's answers.
const STOP_POLL: Duration = Duration::from_millis(50);

type MonitorLink = Link<(), EventBatch>;
type HasherLink = Link<HashRequest, HashReply>;
type WriterLink = Link<RowBatch, RowAck>;
type NotifyLink = Link<Notice, ()>;
type UserHasherLink = Link<UserHashRequest, UserHashReply>;
type OpenerLink = Link<picosnitch_ipc::opening::OpenRequest, picosnitch_ipc::opening::OpenReply>;
/// Requests to the opener in flight at once (under the link's 10-message queue).
const OPEN_WINDOW: usize = 4;

/// Notices waiting for the notify role; beyond this they are dropped and counted.
const MAX_NOTICES_QUEUED: usize = 256;
/// Executables whose hash is awaited to compare it with the known ones.
const MAX_AWAITING_SHA: usize = 4096;
/// How long one notice may wait for room on the notify link before the loop moves on.
const NOTICE_SEND_WAIT: Duration = Duration::from_millis(2);

/// What one read of a link produced.
type Received<T> = Result<Option<(T, Vec<OwnedFd>)>, IpcError>;

enum Input {
    Command(anyhow::Result<Command>),
    Events(u32, Received<EventBatch>),
    Hash(u32, Received<HashReply>),
    Ack(u32, Received<RowAck>),
    /// fanotify's reports on hashed executables, from the watch of this generation.
    ExeChanges(u32, Vec<crate::exe_watch::Change>),
    Verdict(u32, Received<picosnitch_ipc::virustotal::VtReply>),
    UserHash(u32, Received<UserHashReply>),
    Opened(u32, Received<picosnitch_ipc::opening::OpenReply>),
    Ptr(u32, Received<picosnitch_ipc::reverse_dns::PtrReplyMsg>),
}

pub fn run(control: SeqPacket, config: &Config) -> anyhow::Result<()> {
    let feed_listener = role::take_feed_listener();
    // What the history knows, read before confinement (the database is the writer's;
    // the primary reads it once, read-only, and never again).
    let sightings = crate::notify::enabled(config).then(|| Sightings::new(known_executables(config)));
    // INVARIANT: confined before any thread exists; its only descriptors (the control
    // link and the feed's listening socket) were inherited open.
    crate::confine::confine_role(&policy::POLICY, config)?;
    // The executor lives as long as the process, and the tasks it runs spawn readers
    // on it when links are replaced: leaking it gives it the 'static lifetime they need.
    let ex: &'static smol::LocalExecutor<'static> = Box::leak(Box::new(smol::LocalExecutor::new()));
    let config: &'static Config = Box::leak(Box::new(config.clone()));
    smol::block_on(ex.run(async {
        let (tx, rx) = async_channel::bounded(64);
        let control: Rc<Control> = Rc::new(Link::new(control)?);
        spawn_commands(ex, Rc::clone(&control), tx.clone());
        let hub = match feed_listener {
            Some(listener) => {
                let (server, hub) = picosnitch_feed::FeedServer::from_listener(listener, picosnitch_feed::FeedLimits::default())?;
                ex.spawn(async move {
                    if let Err(e) = server.run().await {
                        tracing::error!(error = %e, "the live feed stopped; the history is still recorded");
                    }
                })
                .detach();
                Some(hub)
            }
            None => None,
        };
        let mut p = Primary::new(config, ex, tx, Feed::new(hub));
        p.sightings = sightings;
        p.serve(&control, rx).await
    }))
}

/// The executables the history already holds, so that they are not announced again.
fn known_executables(config: &Config) -> Vec<picosnitch_store::KnownExe> {
    if !config.database.path.exists() {
        return Vec::new();
    }
    match picosnitch_store::Store::open_read_only(&config.database.path).and_then(|s| s.known_executables(65_536)) {
        Ok(known) => {
            tracing::info!(executables = known.len(), "executables known from the history: not announced again");
            known
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the known executables from the history; every executable seen will be announced as new");
            Vec::new()
        }
    }
}

/// Reads the control link into the input channel.
fn spawn_commands(ex: &smol::LocalExecutor<'static>, control: Rc<Control>, tx: Sender<Input>) {
    ex.spawn(async move {
        loop {
            let cmd = role::next_command(&control).await;
            let end = !matches!(cmd, Ok(Command::Link(..) | Command::Probe(..) | Command::Notice(..)));
            if tx.send(Input::Command(cmd)).await.is_err() || end {
                return;
            }
        }
    })
    .detach();
}

/// Reads one link into the input channel until it closes; the generation tells the
/// main loop whether the message is from the current link.
fn spawn_reader<O, I>(
    ex: &smol::LocalExecutor<'static>,
    link: Rc<Link<O, I>>,
    generation: u32,
    tx: Sender<Input>,
    wrap: fn(u32, Received<I>) -> Input,
) where
    O: serde::Serialize + 'static,
    I: serde::de::DeserializeOwned + 'static,
{
    ex.spawn(async move {
        loop {
            let msg = link.recv_with_fds().await;
            let end = !matches!(msg, Ok(Some(_)));
            if tx.send(wrap(generation, msg)).await.is_err() || end {
                return;
            }
        }
    })
    .detach();
}

struct Primary<'a> {
    config: &'a Config,
    ex: &'a smol::LocalExecutor<'static>,
    tx: Sender<Input>,
    ids: Identities,
    domains: Domains,
    flows: HashMap<EntryKey, LiveFlow>,
    /// TCP flows without a domain yet, by socket cookie: named when their socket's
    /// ClientHello is parsed after they were announced.
    unnamed_by_cookie: HashMap<u64, Vec<EntryKey>>,
    /// Flows opened in the last moments without a domain: a DNS answer drained from the
    /// name ring just after them (the kernel saw it first) still names them.
    recent_unnamed: VecDeque<(Instant, u32, IpAddr, EntryKey)>,
    /// Flows closed in the last moments without a domain, by key, and in order of
    /// closing (with their socket cookie): a short connection may open and close in
    /// the batch before the one carrying its ClientHello or answer, which still names
    /// the row of this period.
    closed_unnamed: HashMap<EntryKey, Rc<FlowRow>>,
    closed_order: VecDeque<(Instant, EntryKey, u64)>,
    ignored_flows: HashSet<EntryKey>,
    periods: Periods,
    outbox: Outbox,
    status: PrimaryStatus,
    generation: u32,
    monitor_gen: u32,
    hasher: Option<(u32, Rc<HasherLink>)>,
    user_hasher: Option<(u32, Rc<UserHasherLink>)>,
    opener: Option<(u32, Rc<OpenerLink>)>,
    writer: Option<(u32, Rc<WriterLink>)>,
    last_hash_progress: Instant,
    next_exec_key: u64,
    feed: Feed,
    /// What the desktop user has been told about; None without a notify role.
    sightings: Option<Sightings>,
    notify: Option<Rc<NotifyLink>>,
    notices: VecDeque<Notice>,
    awaiting_sha: VecDeque<(identity::Exe, Rc<str>)>,
    /// Generation of the current fanotify watch; reports of an older one are ignored.
    watch_gen: u32,
    /// The reader of the current watch. Replacing it cancels the old reader, which
    /// closes the old group and its marks (a restarted monitor hands over a new one).
    watch_reader: Option<smol::Task<()>>,
    virustotal: virustotal::VirusTotalQueue,
    rdns: reverse_dns::ReverseDns,
}

/// A flow the kernel reported open and not yet closed.
struct LiveFlow {
    row: Rc<FlowRow>,
    feed: FeedFlow,
    cookie: u64,
}

fn unix_secs_from_ns(ns: i64) -> i64 {
    ns.div_euclid(1_000_000_000)
}

impl<'a> Primary<'a> {
    fn new(config: &'a Config, ex: &'a smol::LocalExecutor<'static>, tx: Sender<Input>, feed: Feed) -> Self {
        let dev_mask = match config.monitoring.st_dev_mask {
            Some(m) => u64::from(m),
            None => {
                let m = picosnitch_identity::exe::detect_dev_mask();
                tracing::info!(mask = format_args!("{m:#x}"), "device mask detected (0: btrfs-like, inodes only)");
                m
            }
        };
        let source = format!("primary-{}-{}", picosnitch_store::unix_now(), std::process::id());
        Primary {
            config,
            ex,
            tx,
            ids: {
                let mut ids = Identities::new(dev_mask, config.log.commands);
                if crate::user_hasher::enabled(config) {
                    let timeout = Duration::from_secs(u64::from(config.desktop.hash_timeout_seconds));
                    ids.by_desktop_user = Some(user_hash::UserHashes::new(timeout));
                }
                ids
            },
            domains: Domains::new(config.monitoring.domain_cache_entries),
            flows: HashMap::default(),
            unnamed_by_cookie: HashMap::default(),
            recent_unnamed: VecDeque::new(),
            closed_unnamed: HashMap::default(),
            closed_order: VecDeque::new(),
            ignored_flows: HashSet::default(),
            periods: Periods::default(),
            outbox: Outbox::new(source, u64::from(config.database.queue_limit)),
            status: PrimaryStatus::default(),
            generation: 0,
            monitor_gen: 0,
            hasher: None,
            user_hasher: None,
            opener: None,
            writer: None,
            last_hash_progress: Instant::now(),
            next_exec_key: 0,
            feed,
            sightings: None,
            notify: None,
            notices: VecDeque::new(),
            awaiting_sha: VecDeque::new(),
            watch_gen: 0,
            watch_reader: None,
            virustotal: virustotal::VirusTotalQueue::new(&config.virustotal),
            rdns: reverse_dns::ReverseDns::new(&config.monitoring),
        }
    }

    fn next_generation(&mut self) -> u32 {
        self.generation += 1;
        self.generation
    }

    async fn serve(&mut self, control: &Control, rx: Receiver<Input>) -> anyhow::Result<()> {
        let period = Duration::from_secs(u64::from(self.config.database.write_limit_seconds));
        let mut next_flush = Instant::now() + period;
        let mut next_status = Instant::now();
        let mut stopping: Option<Instant> = None;
        loop {
            // While stopping, periods are no longer flushed on time, so next_flush stays
            // in the past: waiting for it would never wait, and a loop that never waits
            // starves the link readers on this executor (the writer's acknowledgements
            // never arrived, and stopping took its whole 18 s allowance).
            let flush_at = if stopping.is_some() { Instant::now() + STOP_POLL } else { next_flush };
            let deadline = flush_at.min(next_status).min(Instant::now() + Duration::from_millis(500));
            let input = futures_lite::future::or(async { rx.recv().await.ok() }, async {
                Timer::at(deadline).await;
                None
            })
            .await;
            if let Some(input) = input {
                match input {
                    Input::Command(cmd) => match cmd? {
                        Command::Link(peer, sock) => self.link(peer, sock)?,
                        Command::Probe(p, a) => role::answer_probe(control, &p, a.as_deref()).await?,
                        Command::Notice(_) => {}
                        Command::Stop | Command::Closed => {
                            if stopping.is_none() {
                                tracing::info!("stopping: waiting for pending hashes, then handing every row to the writer");
                                stopping = Some(Instant::now());
                            }
                        }
                    },
                    Input::Events(g, msg) if g == self.monitor_gen => match msg {
                        Ok(Some((batch, fds))) => {
                            if matches!(batch.first(), Some(KernelEvent::ExeWatch)) {
                                self.watch(fds);
                            }
                            for ev in batch {
                                self.on_event(ev);
                            }
                        }
                        Ok(None) => tracing::warn!("monitor link closed; waiting for its restart"),
                        Err(e) => tracing::warn!(error = %e, "monitor link failed; waiting for its restart"),
                    },
                    Input::Hash(g, msg) if self.hasher.as_ref().is_some_and(|(hg, _)| *hg == g) => match msg {
                        Ok(Some((reply, _))) => {
                            self.last_hash_progress = Instant::now();
                            if let Some(new) = self.ids.hash_done(reply.id, reply.result, &mut self.status) {
                                self.virustotal.hashed(new);
                            }
                        }
                        Ok(None) | Err(_) => {
                            tracing::warn!("hasher link closed; requests will be repeated to its replacement");
                            self.hasher = None;
                        }
                    },
                    Input::Ack(g, msg) if self.writer.as_ref().is_some_and(|(wg, _)| *wg == g) => match msg {
                        Ok(Some((ack, _))) => {
                            self.virustotal.already_checked(ack.have_verdicts);
                            self.outbox.ack(ack.seq);
                        }
                        Ok(None) | Err(_) => {
                            tracing::warn!(queued = self.outbox.rows_queued(), "writer link closed; rows wait for its restart");
                            self.writer = None;
                        }
                    },
                    Input::ExeChanges(g, changes) if g == self.watch_gen => {
                        for c in &changes {
                            self.ids.exe_changed(c, &mut self.status);
                        }
                    }
                    Input::Verdict(g, msg) if self.virustotal.link.as_ref().is_some_and(|(vg, _)| *vg == g) => match msg {
                        Ok(Some((reply, _))) => {
                            if let Some(flagged) = self.virustotal.answered(reply) {
                                virustotal::on_flagged(&flagged);
                                if self.sightings.is_some() {
                                    self.raise(Notice::new(
                                        picosnitch_ipc::notices::NoticeKind::VirusTotalFlagged,
                                        format!("VirusTotal flags {}", flagged.exe),
                                        format!("{}\nsha256 {}", flagged.summary, flagged.sha256),
                                    ));
                                }
                            }
                        }
                        Ok(None) | Err(_) => {
                            tracing::warn!("virustotal link closed; its requests are repeated to its replacement");
                            self.virustotal.link = None;
                            self.virustotal.relinked();
                        }
                    },
                    Input::UserHash(g, msg) if self.user_hasher.as_ref().is_some_and(|(ug, _)| *ug == g) => match msg {
                        Ok(Some((reply, _))) => {
                            if let Some(new) = self.ids.by_desktop_user.as_mut().and_then(|u| u.done(reply, &mut self.status)) {
                                self.virustotal.hashed(new);
                            }
                        }
                        Ok(None) | Err(_) => {
                            tracing::warn!("user-hasher link closed; requests will be repeated to its replacement");
                            self.user_hasher = None;
                        }
                    },
                    Input::Opened(g, msg) if self.opener.as_ref().is_some_and(|(og, _)| *og == g) => match msg {
                        Ok(Some((reply, fds))) => {
                            let dev_mask = self.ids.dev_mask();
                            if let Some(opened) = self.ids.via_proc.answered(reply, fds, dev_mask, &mut self.status) {
                                self.ids.opened_via_proc(opened, &mut self.status);
                            }
                        }
                        Ok(None) | Err(_) => {
                            tracing::warn!("opener link closed; its requests are repeated to its replacement");
                            self.opener = None;
                            self.ids.via_proc.unlinked();
                        }
                    },
                    Input::Ptr(g, msg) if self.rdns.link.as_ref().is_some_and(|(rg, _)| *rg == g) => match msg {
                        Ok(Some((reply, _))) => {
                            let ids = &mut self.ids;
                            if let Some((name, flows)) = self.rdns.answered(reply, |n| ids.intern(n)) {
                                for key in flows {
                                    if self.name_flow(key, &name) || self.periods.name_unnamed(key, &name) {
                                        self.status.domains_from_rdns += 1;
                                    }
                                }
                            }
                        }
                        Ok(None) | Err(_) => {
                            tracing::warn!("rdns link closed; its lookups are repeated to its replacement");
                            self.rdns.link = None;
                            self.rdns.relinked();
                        }
                    },
                    // From a replaced link.
                    Input::Events(..)
                    | Input::Hash(..)
                    | Input::Ack(..)
                    | Input::ExeChanges(..)
                    | Input::Verdict(..)
                    | Input::UserHash(..)
                    | Input::Opened(..)
                    | Input::Ptr(..) => {}
                }
            }
            self.send_open_requests().await;
            self.ids.via_proc.expire(&mut self.status);
            self.send_hash_jobs().await;
            self.send_user_hash_jobs().await;
            if let Some(u) = &mut self.ids.by_desktop_user {
                u.give_up_if_silent(&mut self.status);
            }
            self.virustotal.send().await;
            {
                // A flow named (by a ClientHello or a late DNS answer) during the grace
                // period needs no lookup.
                let (flows, closed) = (&self.flows, &self.closed_unnamed);
                let unnamed = |k: &periods::EntryKey| match flows.get(k) {
                    Some(live) => live.row.domain.is_empty(),
                    None => closed.get(k).is_some_and(|row| row.domain.is_empty()),
                };
                self.rdns.send(unnamed).await;
            }
            if self.config.database.enabled {
                self.outbox.push_verdicts(std::mem::take(&mut self.virustotal.verdicts));
            } else {
                self.virustotal.verdicts.clear();
            }
            self.check_awaited_hashes();
            self.send_notices().await;
            if self.ids.outstanding() > 0 && self.last_hash_progress.elapsed() > HASHER_TIMEOUT {
                tracing::error!(pending = self.ids.pending(), "the hasher has not answered for a minute; recording those executables unhashed");
                self.ids.fail_all(&mut self.status);
                self.last_hash_progress = Instant::now();
            }
            let now = Instant::now();
            let mut flushed = false;
            if let Some(since) = stopping {
                let hashes_done = self.ids.pending() == 0 || now.duration_since(since) > STOP_HASH_WAIT;
                if hashes_done {
                    self.flush(Duration::ZERO);
                    self.send_rows().await;
                    if self.outbox.is_empty() || now.duration_since(since) > STOP_HASH_WAIT + STOP_WRITER_WAIT {
                        if !self.outbox.is_empty() {
                            tracing::error!(rows = self.outbox.rows_queued(), "stopping with rows the writer never acknowledged");
                        }
                        return Ok(());
                    }
                }
            } else if now >= next_flush {
                self.flush(HASH_WAIT);
                next_flush = now + period;
                flushed = true;
            }
            self.send_rows().await;
            if flushed {
                // A period's rows briefly take memory the heap would otherwise keep.
                // SAFETY: malloc_trim only releases free heap memory.
                unsafe { libc::malloc_trim(0) };
            }
            if now >= next_status {
                self.status.rows_queued = self.outbox.rows_queued();
                self.status.rows_dropped_queue_full = self.outbox.rows_dropped;
                self.status.events_dropped_queue_full = self.outbox.events_dropped;
                self.status.bytes_dropped_queue_full = self.outbox.bytes_dropped;
                self.status.rows_acknowledged = self.outbox.rows_acknowledged;
                self.status.flows_active = self.flows.len() as u64;
                self.status.hashes_pending = (self.ids.pending() + self.ids.by_desktop_user.as_ref().map_or(0, |u| u.pending())) as u64;
                self.status.virustotal_not_checked = self.virustotal.not_checked;
                self.domains.report(&mut self.status);
                self.rdns.report(&mut self.status);
                let feed = self.feed.stats();
                self.status.feed_subscribers = feed.subscribers as u64;
                self.status.feed_updates_published = feed.published;
                self.status.feed_subscribers_dropped_slow = feed.dropped_slow;
                self.status.feed_subscribers_refused = feed.refused;
                control.send(&FromRole::Status(RoleStatus::Primary(self.status.clone()))).await.context("reporting status")?;
                next_status = now + STATUS_PERIOD;
            }
        }
    }

    fn link(&mut self, peer: Role, sock: SeqPacket) -> anyhow::Result<()> {
        let g = self.next_generation();
        match peer {
            Role::Monitor => {
                // A new monitor numbers its flows afresh and announces the live ones
                // again; the old generation's flows will never close otherwise.
                self.flows.clear();
                self.unnamed_by_cookie.clear();
                self.recent_unnamed.clear();
                self.closed_unnamed.clear();
                self.closed_order.clear();
                self.ignored_flows.clear();
                self.monitor_gen = g;
                let link: Rc<MonitorLink> = Rc::new(Link::new(sock)?);
                spawn_reader(self.ex, link, g, self.tx.clone(), Input::Events);
            }
            Role::Hasher => {
                let link: Rc<HasherLink> = Rc::new(Link::new(sock)?);
                spawn_reader(self.ex, Rc::clone(&link), g, self.tx.clone(), Input::Hash);
                self.hasher = Some((g, link));
                self.ids.resend_all();
                self.last_hash_progress = Instant::now();
            }
            Role::Opener => {
                let link: Rc<OpenerLink> = Rc::new(Link::new(sock)?);
                spawn_reader(self.ex, Rc::clone(&link), g, self.tx.clone(), Input::Opened);
                self.opener = Some((g, link));
                self.ids.via_proc.linked();
            }
            Role::Writer => {
                let link: Rc<WriterLink> = Rc::new(Link::new(sock)?);
                spawn_reader(self.ex, Rc::clone(&link), g, self.tx.clone(), Input::Ack);
                self.writer = Some((g, link));
                self.outbox.rewind();
            }
            Role::Notify => self.notify = Some(Rc::new(Link::new(sock)?)),
            Role::VirusTotal => {
                let link: Rc<virustotal::VtLink> = Rc::new(Link::new(sock)?);
                spawn_reader(self.ex, Rc::clone(&link), g, self.tx.clone(), Input::Verdict);
                self.virustotal.link = Some((g, link));
                self.virustotal.relinked();
            }
            Role::UserHasher => {
                let link: Rc<UserHasherLink> = Rc::new(Link::new(sock)?);
                spawn_reader(self.ex, Rc::clone(&link), g, self.tx.clone(), Input::UserHash);
                self.user_hasher = Some((g, link));
                if let Some(u) = &mut self.ids.by_desktop_user {
                    u.relinked();
                }
            }
            Role::ReverseDns => {
                let link: Rc<reverse_dns::RdnsLink> = Rc::new(Link::new(sock)?);
                spawn_reader(self.ex, Rc::clone(&link), g, self.tx.clone(), Input::Ptr);
                self.rdns.link = Some((g, link));
                self.rdns.relinked();
            }
            Role::Primary => tracing::warn!("ignoring a link to itself"),
            Role::Remote => tracing::warn!("ignoring a link to the remote role, which the primary does not use"),
        }
        Ok(())
    }

    fn on_event(&mut self, ev: KernelEvent) {
        let g = self.monitor_gen;
        match ev {
            KernelEvent::Exec(info) => {
                self.status.execs_seen += 1;
                let task = info.task.clone();
                self.ids.saw_exec(*info);
                if self.config.monitoring.every_exe {
                    self.next_exec_key += 1;
                    let exes = self.ids.resolve_task(&task, &mut self.status);
                    let names = [
                        self.ids.intern(&task.comm),
                        self.ids.name_of(task.ppid, task.pexe),
                        self.ids.name_of(task.gppid, task.gpexe),
                    ];
                    let row = Rc::new(FlowRow {
                        exes,
                        names,
                        uid: task.uid,
                        family: 0,
                        protocol: 0,
                        lport: 0,
                        rport: 0,
                        laddr: None,
                        raddr: None,
                        domain: self.ids.intern(""),
                        netns: task.netns,
                    });
                    // Executions use generation 0, which no monitor link ever has.
                    self.periods.add((0, self.next_exec_key), &row, picosnitch_store::unix_now(), 0, 0, 1);
                    self.feed.exec(&row, &task);
                }
            }
            KernelEvent::FlowOpen(open) => {
                self.status.flows_seen += 1;
                let key = (g, open.flow);
                if self.ignored(&open) {
                    self.status.rows_ignored += 1;
                    self.ignored_flows.insert(key);
                    return;
                }
                let row = self.flow_row(&open);
                if self.config.log.ignores_domain(&row.domain) {
                    self.status.rows_ignored += 1;
                    self.ignored_flows.insert(key);
                    return;
                }
                if row.domain.is_empty() && open.sock_type == SOCK_STREAM {
                    self.unnamed_by_cookie.entry(open.cookie).or_default().push(key);
                }
                if let (true, Some(raddr)) = (row.domain.is_empty(), open.raddr) {
                    self.remember_unnamed(open.task.netns, raddr, key);
                    self.rdns.want(raddr, key);
                }
                self.periods.add(key, &row, unix_secs_from_ns(open.unix_ns), 0, 0, 1);
                let feed = self.feed.open(&row, &open.task, open.direction, open.unix_ns);
                self.flows.insert(key, LiveFlow { row, feed, cookie: open.cookie });
            }
            KernelEvent::FlowBytes { flow, send, recv, .. } => {
                let key = (g, flow);
                match self.flows.get_mut(&key) {
                    Some(live) => {
                        self.periods.add(key, &live.row, picosnitch_store::unix_now(), send, recv, 0);
                        self.feed.bytes(&live.row, &mut live.feed, send, recv);
                    }
                    None if self.ignored_flows.contains(&key) => {}
                    None => self.status.bytes_unattributed += send + recv,
                }
            }
            KernelEvent::ExeWatch => {}
            KernelEvent::FlowClose { flow } => {
                let key = (g, flow);
                if let Some(live) = self.flows.remove(&key) {
                    self.feed.close(&live.row, &live.feed);
                    if live.row.domain.is_empty() {
                        self.remember_closed_unnamed(key, live.cookie, live.row);
                    } else {
                        self.forget_unnamed_of_socket(live.cookie, key);
                    }
                }
                self.ignored_flows.remove(&key);
            }
            KernelEvent::NamePacket(p) => {
                if let Some((cookie, name)) = self.domains.learn(&p, &mut self.ids, &mut self.status) {
                    self.name_flows_of_socket(cookie, &name);
                }
                for (netns, addr, name) in self.domains.take_learnt() {
                    self.name_recent_flows(netns, addr, &name);
                    self.rdns.cancel(addr);
                }
            }
        }
    }

    /// A ClientHello named the server after the socket's flows were announced: their
    /// rows of this period (and the live feed from now on) carry the name.
    fn name_flows_of_socket(&mut self, cookie: u64, name: &Rc<str>) {
        let Some(keys) = self.unnamed_by_cookie.remove(&cookie) else { return };
        for key in keys {
            if self.name_flow(key, name) {
                self.status.domains_from_tls += 1;
            }
        }
    }

    fn remember_unnamed(&mut self, netns: u32, raddr: IpAddr, key: EntryKey) {
        let now = Instant::now();
        while self.recent_unnamed.front().is_some_and(|(t, ..)| now.duration_since(*t) > RECENT_UNNAMED_AGE)
            || self.recent_unnamed.len() >= RECENT_UNNAMED_MAX
        {
            self.recent_unnamed.pop_front();
        }
        self.recent_unnamed.push_back((now, netns, raddr, key));
    }

    /// Keeps a closed flow without a domain nameable for a moment (its socket stays in
    /// `unnamed_by_cookie` as long), and lets go of those closed too long ago.
    fn remember_closed_unnamed(&mut self, key: EntryKey, cookie: u64, row: Rc<FlowRow>) {
        let now = Instant::now();
        while let Some(&(t, old, old_cookie)) = self.closed_order.front() {
            if now.duration_since(t) <= RECENT_UNNAMED_AGE && self.closed_order.len() < RECENT_UNNAMED_MAX {
                break;
            }
            self.closed_order.pop_front();
            self.closed_unnamed.remove(&old);
            self.forget_unnamed_of_socket(old_cookie, old);
        }
        self.closed_unnamed.insert(key, row);
        self.closed_order.push_back((now, key, cookie));
    }

    fn forget_unnamed_of_socket(&mut self, cookie: u64, key: EntryKey) {
        if let Some(keys) = self.unnamed_by_cookie.get_mut(&cookie) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                self.unnamed_by_cookie.remove(&cookie);
            }
        }
    }

    /// A DNS answer reached the primary just after flows toward its address opened.
    fn name_recent_flows(&mut self, netns: u32, addr: IpAddr, name: &Rc<str>) {
        let now = Instant::now();
        let keys: Vec<EntryKey> = self
            .recent_unnamed
            .iter()
            .filter(|(t, n, a, _)| {
                *a == addr && (*n == netns || netns == picosnitch_domains::cache::NETNS_UNKNOWN)
                    && now.duration_since(*t) <= RECENT_UNNAMED_AGE
            })
            .map(|(.., k)| *k)
            .collect();
        for key in keys {
            if self.name_flow(key, name) {
                self.status.domains_from_dns += 1;
            }
        }
    }

    /// Gives a live or just closed flow without a domain the name `name`; false if it
    /// had one already, or is gone.
    fn name_flow(&mut self, key: EntryKey, name: &Rc<str>) -> bool {
        let slot = match self.flows.get_mut(&key) {
            Some(live) => &mut live.row,
            None => match self.closed_unnamed.get_mut(&key) {
                Some(row) => row,
                None => return false,
            },
        };
        if !slot.domain.is_empty() {
            return false;
        }
        let mut row = (**slot).clone();
        row.domain = Rc::clone(name);
        let row = Rc::new(row);
        self.periods.set_row(key, &row);
        *slot = row;
        true
    }

    /// `[log]` ignore rules that can be decided when the flow opens.
    fn ignored(&self, open: &FlowOpen) -> bool {
        let log = &self.config.log;
        log.ignores_port(open.lport) || log.ignores_port(open.rport) || open.raddr.is_some_and(|a: IpAddr| log.ignores_addr(a))
    }

    fn flow_row(&mut self, open: &FlowOpen) -> Rc<FlowRow> {
        let t = &open.task;
        let exes = self.ids.resolve_task(t, &mut self.status);
        let names = [self.ids.intern(&t.comm), self.ids.name_of(t.ppid, t.pexe), self.ids.name_of(t.gppid, t.gpexe)];
        self.sighted(&exes[0], &names[0]);
        let domain = match self.domains.of_flow(t.netns, open.raddr, open.cookie) {
            Some((name, source)) => {
                match source {
                    domains::Source::Dns => self.status.domains_from_dns += 1,
                    domains::Source::Tls => self.status.domains_from_tls += 1,
                }
                name
            }
            None => match open.raddr.and_then(|a| self.rdns.name_of(a)) {
                Some(name) => {
                    self.status.domains_from_rdns += 1;
                    name
                }
                None => self.ids.intern(""),
            },
        };
        let log = &self.config.log;
        let addr = |a: Option<IpAddr>| if log.addresses { a } else { None };
        Rc::new(FlowRow {
            exes,
            names,
            uid: t.uid,
            family: open.family,
            protocol: open.protocol,
            lport: if log.ports { open.lport } else { 0 },
            rport: if log.ports { open.rport } else { 0 },
            laddr: addr(open.laddr),
            raddr: addr(open.raddr),
            domain,
            netns: t.netns,
        })
    }

    /// The monitor handed over a fanotify group: mark hashed executables in it, and
    /// read what it reports.
    fn watch(&mut self, fds: Vec<OwnedFd>) {
        let Some(fd) = fds.into_iter().next() else {
            tracing::warn!("the executable watch arrived without its descriptor");
            return;
        };
        let group = Rc::new(fd);
        let reader = match group.try_clone().map_err(anyhow::Error::from).and_then(|fd| Ok(async_io::Async::new(fd)?)) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot wait on the executable watch; rewritten binaries are noticed by size and mtime only");
                return;
            }
        };
        self.ids.set_watch(Rc::clone(&group));
        let g = self.next_generation();
        self.watch_gen = g;
        let tx = self.tx.clone();
        let task = self.ex.spawn(async move {
            loop {
                if reader.readable().await.is_err() {
                    return;
                }
                let changes = crate::exe_watch::read_changes(reader.as_fd());
                if changes.is_empty() {
                    continue;
                }
                // A closed channel (stopping) ends this reader; a newer watch cancels it.
                if tx.send(Input::ExeChanges(g, changes)).await.is_err() {
                    return;
                }
            }
        });
        self.watch_reader = Some(task);
        tracing::info!("watching hashed executables for changes (fanotify)");
    }

    /// A process made a connection: news for the desktop user?
    fn sighted(&mut self, exe: &identity::Exe, name: &Rc<str>) {
        let Some(s) = &mut self.sightings else { return };
        let info = exe.borrow();
        let mut raised = Vec::new();
        raised.extend(s.saw_name(&info.exe, name));
        match &info.sha256 {
            identity::Sha::Known(h) => raised.extend(s.saw_sha256(&info.exe, name, h)),
            identity::Sha::Pending => {
                if self.awaiting_sha.len() >= MAX_AWAITING_SHA {
                    self.awaiting_sha.pop_front();
                    self.status.notices_dropped += 1;
                }
                self.awaiting_sha.push_back((Rc::clone(exe), Rc::clone(name)));
            }
        }
        drop(info);
        for n in raised {
            self.raise(n);
        }
    }

    /// Executables whose hash arrived since: compared with the known ones.
    fn check_awaited_hashes(&mut self) {
        let Some(s) = &mut self.sightings else { return };
        let mut raised = Vec::new();
        self.awaiting_sha.retain(|(exe, name)| {
            let info = exe.borrow();
            match &info.sha256 {
                identity::Sha::Known(h) => {
                    raised.extend(s.saw_sha256(&info.exe, name, h));
                    false
                }
                identity::Sha::Pending => true,
            }
        });
        for n in raised {
            self.raise(n);
        }
    }

    fn raise(&mut self, notice: Notice) {
        self.status.notices_raised += 1;
        tracing::info!(kind = notice.kind.name(), text = %notice.text, "notice for the desktop user");
        if self.notices.len() >= MAX_NOTICES_QUEUED {
            self.status.notices_dropped += 1;
            return;
        }
        self.notices.push_back(notice);
    }

    /// Hands queued notices to the notify role without ever waiting on it.
    async fn send_notices(&mut self) {
        while let Some(n) = self.notices.front() {
            let Some(link) = &self.notify else { return };
            let sent = futures_lite::future::or(async { Some(link.send(n).await) }, async {
                Timer::after(NOTICE_SEND_WAIT).await;
                None
            })
            .await;
            match sent {
                Some(Ok(())) => {
                    self.notices.pop_front();
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "notify link failed; notices wait for its restart");
                    self.notify = None;
                    return;
                }
                None => return, // the notify role is busy: try again on the next wake
            }
        }
    }

    fn flush(&mut self, max_wait: Duration) {
        // Rows of flows whose reverse DNS lookup is out wait for it like rows wait for
        // hashes (never while stopping, when max_wait is zero).
        let name_wait = if max_wait.is_zero() { Duration::ZERO } else { self.rdns.name_wait().min(max_wait) };
        let rdns = &self.rdns;
        let f = self.periods.flush_holding(max_wait, &self.config.log, |k, age| age < name_wait && rdns.is_waiting(k));
        self.status.rows_ignored += f.ignored;
        if f.hash_timeouts > 0 {
            tracing::warn!(rows = f.hash_timeouts, "rows written before their executables could be hashed");
        }
        if !f.rows.is_empty() && self.config.database.enabled {
            let dropped = self.outbox.push(&f.rows);
            if dropped > 0 {
                tracing::error!(
                    dropped,
                    total = self.outbox.rows_dropped,
                    "writer queue full ([database] queue_limit): rows dropped"
                );
            }
        }
    }

    async fn send_hash_jobs(&mut self) {
        while self.ids.outstanding() < HASH_WINDOW {
            let Some((_, hasher)) = &self.hasher else { return };
            let Some(job) = self.ids.next_job() else { return };
            if self.ids.outstanding() == 1 {
                self.last_hash_progress = Instant::now();
            }
            if let Err(e) = hasher.send_with_fds(&HashRequest { id: job.id }, &[job.fd.as_fd()]).await {
                tracing::warn!(error = %e, "hasher link failed; the request will be repeated to its replacement");
                self.hasher = None;
                self.ids.resend_all();
                return;
            }
        }
    }

    /// Requests for the desktop user's hasher, a few at a time (it hashes one by one).
    async fn send_user_hash_jobs(&mut self) {
        let Some(u) = &mut self.ids.by_desktop_user else { return };
        while u.outstanding() < HASH_WINDOW {
            let Some((_, link)) = &self.user_hasher else { return };
            let Some(req) = u.next_job() else { return };
            if let Err(e) = link.send(&req).await {
                tracing::warn!(error = %e, "user-hasher link failed; the request will be repeated to its replacement");
                self.user_hasher = None;
                u.relinked();
                return;
            }
        }
    }

    async fn send_open_requests(&mut self) {
        while self.ids.via_proc.outstanding() < OPEN_WINDOW {
            let Some((_, opener)) = &self.opener else { return };
            let Some(request) = self.ids.via_proc.next_request() else { return };
            if let Err(e) = opener.send(&request).await {
                tracing::warn!(error = %e, "opener link failed; the request will be repeated to its replacement");
                self.opener = None;
                self.ids.via_proc.unlinked();
                return;
            }
        }
    }

    async fn send_rows(&mut self) {
        while let Some(batch) = self.outbox.next_to_send().cloned() {
            let Some((_, writer)) = &self.writer else { return };
            if let Err(e) = writer.send(&batch).await {
                tracing::warn!(error = %e, "writer link failed; rows wait for its restart");
                self.writer = None;
                self.outbox.rewind();
                return;
            }
            self.outbox.mark_sent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picosnitch_domains::dns::build::{response, Rr};
    use picosnitch_ipc::events::{Direction, NamePacket, NamePacketKind, TaskInfo};

    fn primary() -> (Primary<'static>, &'static Config) {
        let mut config = Config::default();
        config.monitoring.st_dev_mask = Some(0);
        let config: &'static Config = Box::leak(Box::new(config));
        let ex: &'static smol::LocalExecutor<'static> = Box::leak(Box::new(smol::LocalExecutor::new()));
        let (tx, _rx) = async_channel::bounded(1);
        (Primary::new(config, ex, tx, Feed::new(None)), config)
    }

    fn open(flow: u64, raddr: [u8; 4], cookie: u64) -> KernelEvent {
        KernelEvent::FlowOpen(Box::new(FlowOpen {
            flow,
            unix_ns: 1_700_000_000_000_000_000,
            task: TaskInfo { tgid: std::process::id(), pid: std::process::id(), comm: "client".into(), netns: 9, ..Default::default() },
            family: 2,
            protocol: 6,
            sock_type: SOCK_STREAM,
            laddr: Some(IpAddr::from([127, 0, 0, 1])),
            lport: 40000 + flow as u16,
            raddr: Some(IpAddr::from(raddr)),
            rport: 443,
            direction: Direction::Out,
            cookie,
        }))
    }

    fn name(kind: NamePacketKind, cookie: u64, data: Vec<u8>) -> KernelEvent {
        KernelEvent::NamePacket(Box::new(NamePacket { kind, netns: 9, cookie, wire_len: data.len() as u32, data }))
    }

    /// The order seen under load: a short connection opened, sent, received and closed
    /// in one batch, and its ClientHello (or the answer naming its address) came in the
    /// next. Its row of the period still carries the name.
    #[test]
    fn a_name_after_the_close_still_names_the_period_row() {
        let (mut p, config) = primary();
        let hello = picosnitch_domains::tls::build::client_hello(Some("after-close.example"), 0);
        let answer = response(1, "dns-after-close.example", false, &[Rr::Addr("dns-after-close.example", IpAddr::from([203, 0, 113, 8]), 60)]);
        for ev in [
            open(1, [203, 0, 113, 7], 77),
            KernelEvent::FlowBytes { flow: 1, send: 517, recv: 5, send_packets: 1, recv_packets: 1 },
            KernelEvent::FlowClose { flow: 1 },
            open(2, [203, 0, 113, 8], 78),
            KernelEvent::FlowClose { flow: 2 },
            open(3, [203, 0, 113, 9], 79),
            KernelEvent::FlowClose { flow: 3 },
            name(NamePacketKind::TlsHello, 77, hello),
            name(NamePacketKind::DnsUdp, 0, answer),
        ] {
            p.on_event(ev);
        }
        let f = p.periods.flush(Duration::ZERO, &config.log);
        let mut rows: Vec<(u16, String, u64, u64)> =
            f.rows.iter().map(|s| (s.row.lport, s.row.domain.to_string(), s.send, s.recv)).collect();
        rows.sort();
        assert_eq!(
            rows,
            [
                (40001, "after-close.example".into(), 517, 5),
                (40002, "dns-after-close.example".into(), 0, 0),
                (40003, String::new(), 0, 0),
            ]
        );
        assert_eq!((p.status.domains_from_tls, p.status.domains_from_dns), (1, 1));
        assert!(p.flows.is_empty());
    }

    /// Closed flows wait for their name only a moment: then they are let go of, with
    /// their sockets' entries.
    #[test]
    fn closed_flows_are_let_go_of() {
        let (mut p, _) = primary();
        p.on_event(open(1, [203, 0, 113, 7], 77));
        p.on_event(KernelEvent::FlowClose { flow: 1 });
        assert_eq!((p.closed_unnamed.len(), p.unnamed_by_cookie.len()), (1, 1));
        p.closed_order[0].0 -= RECENT_UNNAMED_AGE + Duration::from_millis(1);
        p.on_event(open(2, [203, 0, 113, 8], 78));
        p.on_event(KernelEvent::FlowClose { flow: 2 });
        assert_eq!(p.closed_unnamed.keys().collect::<Vec<_>>(), [&(0, 2)]);
        assert_eq!(p.unnamed_by_cookie.keys().collect::<Vec<_>>(), [&78]);
    }
}
