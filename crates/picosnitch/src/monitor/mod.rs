//! The monitor role: loads and attaches the kernel side, drains its ring buffer, reads
//! the per-flow counters the kernel keeps, and sends the primary what changed.
//!
//! Kernel records only tell the monitor that something changed; what it sends is
//! computed from its flow table (see [`flows`]), so a primary that restarts is brought
//! up to date by announcing the live flows again, with nothing replayed twice.
mod convert;
use crate::exe_watch;
mod flows;
mod names;
pub mod policy;
mod snapshot;

use crate::role::{self, Command, Control};
use anyhow::Context;
use async_io::{Async, Timer};
use flows::{FlowTable, TcpFinal};
use lru::LruCache;
use picosnitch_bpf::events::{self, CloseEvent, RawEvent};
use picosnitch_bpf::{CaptureOptions, HookSet, KernelCapture, LoadError, Requested};
use picosnitch_config::{Config, HookSetChoice};
use picosnitch_ipc::control::{FromRole, Role};
use picosnitch_ipc::events::{EventBatch, ExecInfo, KernelEvent};
use picosnitch_ipc::status::{MonitorStatus, RoleStatus};
use picosnitch_ipc::{link, Link, SeqPacket};
use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// How often the counters of live flows are read and forwarded.
const READ_PERIOD: Duration = Duration::from_secs(1);
/// How often the ring buffer is drained: the kernel side wakes the monitor only when
/// the ring is a quarter full, so this bounds the latency of everything else.
const DRAIN_PERIOD: Duration = Duration::from_millis(100);
/// Flows the table may hold while the primary is not reading: the ring goes on being
/// drained into the table meanwhile, up to this many (a few hundred bytes each); beyond
/// it the ring fills and the kernel counts what it cannot write.
const BACKLOG_FLOWS: usize = 1 << 18;
const STATUS_PERIOD: Duration = Duration::from_secs(2);
/// A flow whose process is gone ends after this long without traffic.
const REAP_QUIET: Duration = Duration::from_secs(2);
/// A connectionless flow (a UDP peer) ends after this long without traffic; more
/// traffic later starts a new flow.
const REAP_IDLE: Duration = Duration::from_secs(300);
/// Kernel flow entries nobody announced (their announcement was lost with a full ring)
/// are looked for this often, and removed when seen twice.
const ORPHAN_SWEEP_PERIOD: Duration = Duration::from_secs(60);
/// Recent executions, replayed to a new primary so it can name the processes behind
/// flows that are already live.
const RECENT_EXECS: usize = 4096;

type PrimaryLink = Link<EventBatch, ()>;
/// The ring buffer's fd on the reactor: readable when the kernel side asks for a drain.
type RingReady = Async<OwnedFd>;

pub fn capture_options(config: &Config) -> CaptureOptions {
    CaptureOptions {
        ring_buffer_bytes: config.monitoring.ring_buffer_bytes(),
        flow_map_entries: config.monitoring.flow_map_entries,
        cgroup: None,
        hook_set: match config.monitoring.hook_set {
            HookSetChoice::Auto => Requested::Auto,
            HookSetChoice::Tracepoint => Requested::Only(HookSet::Tracepoint),
            HookSetChoice::Fentry => Requested::Only(HookSet::Fentry),
        },
    }
}

pub fn run(control: SeqPacket, config: &Config) -> anyhow::Result<()> {
    let cap = KernelCapture::load(&capture_options(config)).map_err(|e| {
        // A kernel that lacks something is not a question of privileges.
        let step = match e {
            LoadError::Probe(_) => "checking the running kernel",
            _ => "loading the kernel side (needs root: CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN)",
        };
        anyhow::Error::new(e).context(step)
    })?;
    // Loading parsed the kernel's BTF (megabytes) into memory since freed; give it back
    // to the system instead of keeping it in the heap for the life of the process.
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    let names = names::Names::load(&cap.cgroup);
    // After attaching, so a process started meanwhile is in the snapshot or in an exec
    // event, or both.
    let running = snapshot::take();
    // fanotify_init needs CAP_SYS_ADMIN, which confinement takes away: the group is
    // made now and handed to each primary, which marks the executables it opens.
    let exe_watch = exe_watch::create();
    // INVARIANT: the programs are attached, the maps open and /proc read: the kernel
    // capabilities are no longer needed, and confinement drops them before any thread
    // exists.
    crate::confine::confine_role(&policy::POLICY, config)?;
    tracing::info!(processes = running.len(), "processes already running were read from /proc");
    tracing::info!(
        hook_set = %cap.choice.hook_set,
        reason = %cap.choice.reason,
        cgroup = %cap.cgroup.display(),
        "kernel hooks attached"
    );
    let mut monitor = Monitor::new(cap, names, running);
    monitor.exe_watch = exe_watch;
    smol::block_on(monitor.run(control))
}

struct Monitor {
    cap: KernelCapture,
    /// DNS answers and TLS ClientHellos; None when it could not be attached.
    names: Option<names::Names>,
    table: FlowTable,
    recent_execs: LruCache<u32, ExecInfo>,
    pending: Vec<KernelEvent>,
    /// Shared with a flush in progress, which drains the ring while a send waits.
    primary: Option<Rc<PrimaryLink>>,
    /// What was running at start, sent to every primary before anything else.
    running: Vec<ExecInfo>,
    status: MonitorStatus,
    orphan_suspects: HashSet<events::FlowKey>,
    /// The fanotify group for executables, handed to every primary.
    exe_watch: Option<OwnedFd>,
}

enum Wake {
    Ring(std::io::Result<()>),
    Command(anyhow::Result<Command>),
    Tick,
}

impl Monitor {
    fn new(cap: KernelCapture, names: Option<names::Names>, running: Vec<ExecInfo>) -> Self {
        let status = MonitorStatus {
            hook_set: cap.choice.hook_set.to_string(),
            hook_reason: cap.choice.reason.clone(),
            cgroup: cap.cgroup.display().to_string(),
            ..Default::default()
        };
        Monitor {
            cap,
            names,
            table: FlowTable::default(),
            recent_execs: LruCache::new(NonZeroUsize::new(RECENT_EXECS).unwrap_or(NonZeroUsize::MIN)),
            pending: Vec::new(),
            primary: None,
            running,
            status,
            orphan_suspects: HashSet::new(),
            exe_watch: None,
        }
    }

    async fn run(mut self, control: SeqPacket) -> anyhow::Result<()> {
        let control: Control = Link::new(control)?;
        control
            .send(&FromRole::Attached { hook_set: self.status.hook_set.clone(), reason: self.status.hook_reason.clone() })
            .await
            .context("telling the supervisor the hooks are attached")?;
        // The ring buffer's fd becomes readable when records are waiting; a duplicate
        // of it goes on the reactor so the map itself stays usable for reading.
        let ring_fd: OwnedFd = self.cap.ring.as_fd().try_clone_to_owned().context("duplicating the ring buffer fd")?;
        let ring_ready = Async::new(ring_fd).context("registering the ring buffer with the reactor")?;
        let mut next_read = Instant::now() + READ_PERIOD;
        let mut next_status = Instant::now();
        let mut next_sweep = Instant::now() + ORPHAN_SWEEP_PERIOD;
        loop {
            let deadline = next_read.min(next_status).min(next_sweep).min(Instant::now() + DRAIN_PERIOD);
            let wake = futures_lite::future::or(
                async { Wake::Ring(ring_ready.readable().await) },
                futures_lite::future::or(async { Wake::Command(role::next_command(&control).await) }, async {
                    Timer::at(deadline).await;
                    Wake::Tick
                }),
            )
            .await;
            match wake {
                Wake::Ring(r) => r.context("waiting on the ring buffer")?,
                Wake::Tick => {}
                Wake::Command(cmd) => match cmd? {
                    Command::Link(Role::Primary, sock) => {
                        tracing::info!(flows = self.table.len(), "primary link up; announcing live flows");
                        let link: PrimaryLink = Link::new(sock)?;
                        if let Some(fd) = &self.exe_watch {
                            if let Err(e) = link.send_with_fds(&vec![KernelEvent::ExeWatch], &[fd.as_fd()]).await {
                                tracing::warn!(error = %e, "could not hand the executable watch to the primary");
                            }
                        }
                        self.primary = Some(Rc::new(link));
                        self.table.reannounce_all();
                        self.pending.clear();
                        self.pending.extend(self.running.iter().map(|e| KernelEvent::Exec(Box::new(e.clone()))));
                        let mut replay: Vec<ExecInfo> = self.recent_execs.iter().map(|(_, e)| e.clone()).collect();
                        replay.reverse(); // oldest first, as they happened
                        self.pending.extend(replay.into_iter().map(|e| KernelEvent::Exec(Box::new(e))));
                    }
                    Command::Link(other, _) => tracing::warn!(peer = %other, "ignoring a link the monitor does not use"),
                    Command::Probe(p, a) => role::answer_probe(&control, &p, a.as_deref()).await?,
                    Command::Notice(_) => {}
                    Command::Stop | Command::Closed => {
                        self.drain_ring();
                        self.read_counters();
                        self.flush(&ring_ready).await;
                        tracing::info!("monitor stopping; kernel hooks detach");
                        return Ok(());
                    }
                },
            }
            self.drain_ring();
            let now = Instant::now();
            if now >= next_read {
                self.read_counters();
                self.reap(now);
                next_read = now + READ_PERIOD;
            }
            if now >= next_sweep {
                self.sweep_orphans();
                next_sweep = now + ORPHAN_SWEEP_PERIOD;
            }
            if now >= next_status {
                self.report(&control).await?;
                next_status = now + STATUS_PERIOD;
            }
            self.flush(&ring_ready).await;
        }
    }

    fn drain_ring(&mut self) {
        let clock = convert::Clock::now();
        let now = Instant::now();
        loop {
            let decoded = {
                let Some(item) = self.cap.ring.next() else { break };
                RawEvent::decode(&item)
            };
            self.status.records_read += 1;
            match decoded {
                Ok(RawEvent::Flow(f)) => {
                    let open = convert::flow_open(&f, &clock);
                    if f.kind == events::EV_FLOW_UNTRACKED {
                        self.table.untracked(open, f.counters, now);
                    } else {
                        self.table.open(f.key, open, (f.tcp_sent_base, f.tcp_recv_base), now);
                    }
                }
                Ok(RawEvent::Close(c)) => self.close(&c, now),
                Ok(RawEvent::Exec(e)) => {
                    let info = convert::exec(&e);
                    self.recent_execs.put(info.task.tgid, info.clone());
                    if self.primary.is_some() {
                        self.pending.push(KernelEvent::Exec(Box::new(info)));
                    }
                }
                Err(e) => {
                    self.status.records_undecodable += 1;
                    tracing::warn!(error = %e, "dropping an undecodable ring buffer record");
                }
            }
        }
        // Names after flows: a name record the kernel wrote before a flow record read
        // above is in the name ring by now, so it is read in this same drain, and goes
        // out ahead of that flow's events (flows go out from the table at the flush).
        // Draining names first left a gap between the two drains: a short connection
        // whose ClientHello fell in it opened and closed before its name was read.
        if let Some(names) = &mut self.names {
            if self.primary.is_some() {
                names.drain(&mut self.pending);
            } else {
                names.drain(&mut Vec::new());
            }
        }
    }

    /// A socket ended: its flows get their final counters and end.
    fn close(&mut self, c: &CloseEvent, now: Instant) {
        for (id, key) in self.table.flows_of_cookie(c.cookie) {
            match self.cap.flows.get(&key, 0) {
                Ok(v) => self.table.update(id, v.counters, now),
                Err(_) => self.status.counter_read_failures += 1,
            }
            // Already gone if the kernel removed it; nothing else to do then.
            let _ = self.cap.flows.remove(&key);
        }
        let tcp = (c.is_tcp != 0).then_some(TcpFinal { sent: c.tcp_sent, received: c.tcp_recv });
        self.table.close_cookie(c.cookie, tcp);
    }

    fn read_counters(&mut self) {
        let now = Instant::now();
        for (id, key) in self.table.live() {
            match self.cap.flows.get(&key, 0) {
                Ok(v) => self.table.update(id, v.counters, now),
                Err(e) => {
                    // The entry vanished without a close record: end the flow with
                    // what it had, and count it.
                    self.status.counter_read_failures += 1;
                    tracing::debug!(error = %e, flow = id, "flow counters gone");
                    self.table.close(id);
                }
            }
        }
    }

    fn reap(&mut self, now: Instant) {
        // pidfd_open, not kill(pid, 0): Landlock's signal scoping refuses the latter for
        // processes outside the monitor's domain, which is every process.
        let alive = |tgid: u32| {
            rustix::process::Pid::from_raw(tgid as i32).is_none_or(|pid| {
                !matches!(
                    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()),
                    Err(rustix::io::Errno::SRCH)
                )
            })
        };
        for id in self.table.to_reap(now, REAP_QUIET, REAP_IDLE, alive) {
            if let Some(key) = self.table.get(id).and_then(|f| f.key) {
                if let Ok(v) = self.cap.flows.get(&key, 0) {
                    self.table.update(id, v.counters, now);
                }
                let _ = self.cap.flows.remove(&key);
            }
            self.table.close(id);
            self.status.flows_reaped += 1;
        }
    }

    /// Removes kernel flow entries whose announcement never arrived, so they cannot fill
    /// the map, and counts them (a lost announcement is not always a full ring).
    fn sweep_orphans(&mut self) {
        let known: HashSet<events::FlowKey> = self.table.live().into_iter().map(|(_, k)| k).collect();
        let mut orphans = HashSet::new();
        for key in self.cap.flows.keys().flatten() {
            if !known.contains(&key) {
                orphans.insert(key);
            }
        }
        let mut removed = 0u64;
        let mut tgids = Vec::new();
        for key in orphans.intersection(&self.orphan_suspects) {
            // A connect() whose announcement waits for its first byte or for the socket's
            // end (a connection still being made, an idle connected UDP socket) is not
            // lost: it is announced then.
            if self.cap.flows.get(key, 0).is_ok_and(|v| v.flags & events::FLOW_PENDING_OPEN != 0) {
                continue;
            }
            let _ = self.cap.flows.remove(key);
            removed += 1;
            if tgids.len() < 8 {
                tgids.push(key.tgid);
            }
        }
        if removed > 0 {
            // Counted as a loss of its own: under overload far more entries end here than
            // any ring-full counter shows (measured by the benchmark at 10,000/s).
            self.status.orphan_flows_removed += removed;
            tracing::warn!(removed, total = self.status.orphan_flows_removed, ?tgids, "removed kernel flow entries whose announcement never arrived; their traffic is not recorded");
        }
        self.orphan_suspects = orphans;
    }

    async fn report(&mut self, control: &Control) -> anyhow::Result<()> {
        // Counters that cannot be read keep their last values, and the failure is counted
        // and shown with the losses: unread counters are not "nothing lost".
        let mut kernel = self.status.kernel.clone();
        match self.cap.loss_counters() {
            Ok(counters) => kernel.extend(counters.into_iter().map(|(n, v)| (n.to_string(), v))),
            Err(e) => {
                self.status.counter_read_failures += 1;
                tracing::error!(error = %e, "cannot read the kernel's loss counters: losses may go unseen");
            }
        }
        if let Some(names) = &self.names {
            if let Err(e) = names.counters(&mut kernel) {
                self.status.counter_read_failures += 1;
                tracing::error!(error = %e, "cannot read the name capture's loss counters: losses may go unseen");
            }
            self.status.name_records_read = names.records_read;
            self.status.name_records_undecodable = names.records_undecodable;
        }
        for (name, value) in &kernel {
            let before = self.status.kernel.get(name).copied().unwrap_or(0);
            if *value > before {
                if matches!(name.as_str(), "path_truncated" | "names_truncated" | "names_netns_unknown") {
                    tracing::info!(counter = %name, total = value, new = value - before, "exec paths cut short");
                } else if name == "missed_runs" {
                    let programs: Vec<String> =
                        self.cap.missed_runs().into_iter().filter(|(_, n)| *n > 0).map(|(p, n)| format!("{p} {n}")).collect();
                    tracing::warn!(
                        total = value,
                        new = value - before,
                        skipped = %programs.join(", "),
                        "the kernel skipped runs of these programs (busy on that CPU: interrupted or, on a preemptible kernel, preempted inside): their events are lost"
                    );
                } else {
                    tracing::warn!(counter = %name, total = value, new = value - before, "kernel events lost");
                }
            }
        }
        self.status.kernel = kernel;
        self.status.flows_tracked = self.table.len() as u64;
        control.send(&FromRole::Status(RoleStatus::Monitor(self.status.clone()))).await.context("reporting status")
    }

    /// Sends what changed to the primary, if there is one. While a send waits for a
    /// primary that is not reading (busy closing a write period, say), the ring goes on
    /// being drained into the flow table: a monitor that waited instead let the ring
    /// overflow (measured: 9,838 flow announcements lost in 200 ms at 15,000 conn/s,
    /// the monitor parked in a send).
    async fn flush(&mut self, ring_ready: &RingReady) {
        let Some(primary) = self.primary.clone() else { return };
        self.table.drain_changes(&mut self.pending);
        if self.pending.is_empty() {
            return;
        }
        let batches = match link::chunks_that_fit(std::mem::take(&mut self.pending), 16) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "an event does not fit a message; dropped");
                return;
            }
        };
        for batch in batches {
            loop {
                // A send dropped before it completes sent nothing: a datagram goes whole.
                // With the table full, it just waits: the ring fills, and the kernel
                // counts what it cannot write.
                let sent = if self.table.len() < BACKLOG_FLOWS {
                    futures_lite::future::or(async { Some(primary.send(&batch).await) }, async {
                        futures_lite::future::or(
                            async {
                                let _ = ring_ready.readable().await;
                            },
                            async {
                                Timer::after(DRAIN_PERIOD).await;
                            },
                        )
                        .await;
                        None
                    })
                    .await
                } else {
                    Some(primary.send(&batch).await)
                };
                match sent {
                    Some(Ok(())) => break,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "primary link lost; waiting for the supervisor to restart it");
                        self.primary = None;
                        return;
                    }
                    None => self.drain_ring(),
                }
            }
        }
    }
}
