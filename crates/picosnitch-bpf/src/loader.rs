//! Loads the BPF object, attaches the common hooks and the best byte-count hook set
//! this kernel accepts, and hands out the maps the monitor reads: the event ring
//! buffer, the per-flow counters and the loss counters.
use crate::events::{FlowKey, FlowValue, STAT_MAX, STAT_NAMES};
use crate::hooks::{self, HookSet, KernelFeatures, ProbeError, Requested};
use aya::maps::{Array, HashMap, MapData, MapError, RingBuf, SkStorage};
use aya::programs::{
    BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock, CgroupSockAddr, FExit,
};
use aya::{Btf, Ebpf, EbpfLoader};
use std::fs::File;
use crate::skipped_runs::skipped_runs;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct CaptureOptions {
    pub ring_buffer_bytes: u32,
    pub flow_map_entries: u32,
    /// cgroup v2 directory the socket hooks attach to; None finds the root.
    pub cgroup: Option<PathBuf>,
    pub hook_set: Requested,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self { ring_buffer_bytes: 4 << 20, flow_map_entries: 65536, cgroup: None, hook_set: Requested::Auto }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("reading the kernel BTF: {0}")]
    Btf(#[from] aya::BtfError),
    #[error("loading the BPF object: {0}")]
    Object(#[from] aya::EbpfError),
    #[error("the BPF object has no program or map named {0}")]
    Missing(&'static str),
    #[error("loading program {name}: {source}")]
    Program { name: &'static str, source: aya::programs::ProgramError },
    #[error("attaching program {name}: {source}")]
    Attach { name: &'static str, source: aya::programs::ProgramError },
    #[error("opening map {name}: {source}")]
    Map { name: &'static str, source: aya::maps::MapError },
    #[error("opening cgroup {path}: {source}")]
    Cgroup { path: PathBuf, source: std::io::Error },
    #[error("no byte-count hook set could be attached: {0}")]
    NoHookSet(String),
}

/// What was attached, and why, for the log and `picosnitch status`.
#[derive(Debug, Clone)]
pub struct HookChoice {
    pub hook_set: HookSet,
    pub reason: String,
    pub features: KernelFeatures,
}

/// The attached programs and their maps. Dropping it detaches everything.
pub struct KernelCapture {
    /// Owns the programs and their links; kept alive for as long as capture runs.
    ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    pub flows: HashMap<MapData, FlowKey, FlowValue>,
    pub stats: Array<MapData, u64>,
    pub choice: HookChoice,
    pub cgroup: PathBuf,
}

const SOCK_ADDR: [&str; 6] = ["connect4", "connect6", "sendmsg4", "sendmsg6", "recvmsg4", "recvmsg6"];

impl KernelCapture {
    pub fn load(opts: &CaptureOptions) -> Result<Self, LoadError> {
        let blob = hooks::read_vmlinux_btf()?;
        let features = hooks::features(&blob);
        let release = hooks::kernel_release();
        let minimum_warning = hooks::check_minimum(features, &release)?;
        if let Some(w) = &minimum_warning {
            tracing::warn!(release, "{w}");
        }
        let plan = hooks::plan(features, opts.hook_set)?;
        let btf = Btf::from_sys_fs()?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .map_max_entries("events", opts.ring_buffer_bytes)
            .map_max_entries("flows", opts.flow_map_entries)
            .load(crate::BPF_OBJECT)?;
        let storage = probe_socket_storage(&mut ebpf);
        if let Err(e) = &storage {
            tracing::warn!(
                error = %e,
                "socket-local storage cannot be created on this kernel: connection attempts are recorded only once they move a byte, unconnected UDP is counted without its peers, TCP totals may count FINs as bytes (each is counted under storage_* in `picosnitch status`)"
            );
        }

        let cgroup = match &opts.cgroup {
            Some(p) => p.clone(),
            None => crate::cgroup::find_cgroup2_root()
                .map_err(|source| LoadError::Cgroup { path: "/proc/self/mountinfo".into(), source })?,
        };
        let cgroup_fd = File::open(&cgroup).map_err(|source| LoadError::Cgroup { path: cgroup.clone(), source })?;

        // The exec hook first, so the processes behind the first flows are known.
        let exec = if features.bpf_loop { "sched_process_exec" } else { "sched_process_exec_unrolled" };
        attach_tracepoint(&mut ebpf, exec, "sched_process_exec", &btf)?;
        attach_tracepoint(&mut ebpf, "inet_sock_set_state", "inet_sock_set_state", &btf)?;
        attach_tracepoint(&mut ebpf, "tcp_destroy_sock", "tcp_destroy_sock", &btf)?;
        for name in SOCK_ADDR {
            let prog: &mut CgroupSockAddr = program(&mut ebpf, name)?;
            prog.load().map_err(|source| LoadError::Program { name, source })?;
            prog.attach(&cgroup_fd, CgroupAttachMode::Single).map_err(|source| LoadError::Attach { name, source })?;
        }
        {
            let name = "skb_egress";
            let prog: &mut CgroupSkb = program(&mut ebpf, name)?;
            prog.load().map_err(|source| LoadError::Program { name, source })?;
            prog.attach(&cgroup_fd, CgroupSkbAttachType::Egress, CgroupAttachMode::Single)
                .map_err(|source| LoadError::Attach { name, source })?;
        }
        {
            let name = "sock_release";
            let prog: &mut CgroupSock = program(&mut ebpf, name)?;
            prog.load().map_err(|source| LoadError::Program { name, source })?;
            prog.attach(&cgroup_fd, CgroupAttachMode::Single).map_err(|source| LoadError::Attach { name, source })?;
        }

        let mut failures = Vec::new();
        let mut chosen = None;
        for set in &plan.candidates {
            match attach_byte_hooks(&mut ebpf, *set, &btf) {
                Ok(()) => {
                    chosen = Some(*set);
                    break;
                }
                Err(e) => {
                    tracing::warn!(hook_set = %set, error = %e, "hook set failed to attach; trying the next");
                    failures.push(format!("{set}: {e}"));
                }
            }
        }
        let Some(hook_set) = chosen else {
            return Err(LoadError::NoHookSet(failures.join("; ")));
        };
        let mut reason = plan.reason;
        if !failures.is_empty() {
            reason.push_str(&format!("; fell back after: {}", failures.join("; ")));
        }
        if !features.bpf_loop {
            reason.push_str("; no bpf_loop (kernel < 5.17): exec paths deeper than 24 components are cut");
        }
        if let Some(w) = minimum_warning {
            reason.push_str(&format!("; {w}"));
        }
        if let Err(e) = storage {
            reason.push_str(&format!("; socket-local storage unavailable ({e}): see the storage_* counters"));
        }

        let ring = take_map(&mut ebpf, "events", RingBuf::try_from)?;
        let flows = take_map(&mut ebpf, "flows", HashMap::try_from)?;
        let stats = take_map(&mut ebpf, "stats", Array::try_from)?;
        Ok(Self { ebpf, ring, flows, stats, choice: HookChoice { hook_set, reason, features }, cgroup })
    }

    /// The kernel's loss and degradation counters, by name. An error means they could
    /// not be read: the caller must say so, never take it for "nothing lost".
    pub fn loss_counters(&self) -> Result<Vec<(&'static str, u64)>, MapError> {
        let mut out = Vec::with_capacity(STAT_NAMES.len() + 1);
        for (i, name) in STAT_NAMES.iter().enumerate() {
            let idx = i as u32;
            if idx < STAT_MAX {
                out.push((*name, self.stats.get(&idx, 0)?));
            }
        }
        out.push(("missed_runs", self.missed_runs().iter().map(|(_, n)| n).sum()));
        Ok(out)
    }

    /// The loaded tracing programs (tp_btf, fexit), by name: the kernel may skip their
    /// runs. cgroup programs are never skipped.
    pub fn tracing_program_fds(&self) -> Vec<(String, BorrowedFd<'_>)> {
        self.ebpf
            .programs()
            .filter(|(_, p)| matches!(p, aya::programs::Program::BtfTracePoint(_) | aya::programs::Program::FExit(_)))
            .filter_map(|(name, p)| Some((name.to_string(), p.fd().ok()?.as_fd())))
            .collect()
    }

    /// Runs of each loaded tracing program the kernel skipped, sorted by program. It runs
    /// such a program at most once at a time per CPU; a run that finds it busy there (the
    /// program was interrupted by work that reaches it again, or, where these programs are
    /// preemptible, a task was preempted inside it) is skipped and counted. A skipped run
    /// is an event nobody saw: bytes, a close, an exec.
    pub fn missed_runs(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .tracing_program_fds()
            .into_iter()
            .filter_map(|(name, fd)| match skipped_runs(fd) {
                Ok(n) => Some((name, n)),
                Err(e) => {
                    tracing::debug!(program = name, error = %e, "reading the program's skipped runs");
                    None
                }
            })
            .collect();
        out.sort();
        out
    }
}

/// Creates socket-local storage for a socket of our own, as the programs do for the
/// sockets they see, and says why it failed. The kernel cannot always allocate it: since
/// Linux 7.x it uses kmalloc_nolock(), which fails every time on a CPU without
/// cmpxchg16b (found on an emulated `-cpu max,-cx16`; every real x86-64 CPU of this
/// century and every arm64 one has it). The storage goes away with the socket.
fn probe_socket_storage(ebpf: &mut Ebpf) -> Result<(), String> {
    let map = ebpf.map_mut("fins").ok_or("the object has no map fins")?;
    let mut fins: SkStorage<&mut MapData, u32> = SkStorage::try_from(map).map_err(|e| format!("opening map fins: {e}"))?;
    let sock = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))
        .or_else(|_| std::net::UdpSocket::bind((std::net::Ipv6Addr::UNSPECIFIED, 0)))
        .map_err(|e| format!("no socket to try it on: {e}"))?;
    fins.insert(&sock, 0, 0).map_err(|e| match e {
        aya::maps::MapError::SyscallError(s) => format!("creating it for a socket: {}", s.io_error),
        e => format!("creating it for a socket: {e}"),
    })
}

fn attach_byte_hooks(ebpf: &mut Ebpf, set: HookSet, btf: &Btf) -> Result<(), LoadError> {
    match set {
        HookSet::Tracepoint => {
            attach_tracepoint(ebpf, "sock_send_length", "sock_send_length", btf)?;
            attach_tracepoint(ebpf, "sock_recv_length", "sock_recv_length", btf)
        }
        HookSet::Fentry => {
            for (name, function) in [("fexit_inet_sendmsg", "inet_sendmsg"), ("fexit_inet_recvmsg", "inet_recvmsg")] {
                attach_fexit(ebpf, name, function, btf)?;
            }
            // IPv6 and AF_PACKET may be modules, whose functions vmlinux's BTF lacks:
            // without them those families go uncounted, which the log says.
            for (name, function) in [
                ("fexit_inet6_sendmsg", "inet6_sendmsg"),
                ("fexit_inet6_recvmsg", "inet6_recvmsg"),
                ("fexit_packet_sendmsg", "packet_sendmsg"),
                ("fexit_packet_recvmsg", "packet_recvmsg"),
            ] {
                if let Err(e) = attach_fexit(ebpf, name, function, btf) {
                    tracing::warn!(function, error = %e, "optional hook not attached: its address family goes uncounted");
                }
            }
            Ok(())
        }
    }
}

fn attach_fexit(ebpf: &mut Ebpf, name: &'static str, function: &str, btf: &Btf) -> Result<(), LoadError> {
    let prog: &mut FExit = program(ebpf, name)?;
    prog.load(function, btf).map_err(|source| LoadError::Program { name, source })?;
    prog.attach().map_err(|source| LoadError::Attach { name, source })?;
    Ok(())
}

fn attach_tracepoint(ebpf: &mut Ebpf, name: &'static str, tracepoint: &str, btf: &Btf) -> Result<(), LoadError> {
    let prog: &mut BtfTracePoint = program(ebpf, name)?;
    prog.load(tracepoint, btf).map_err(|source| LoadError::Program { name, source })?;
    prog.attach().map_err(|source| LoadError::Attach { name, source })?;
    Ok(())
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, LoadError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf.program_mut(name).ok_or(LoadError::Missing(name))?;
    prog.try_into().map_err(|source| LoadError::Program { name, source })
}

fn take_map<T>(
    ebpf: &mut Ebpf,
    name: &'static str,
    convert: impl FnOnce(aya::maps::Map) -> Result<T, aya::maps::MapError>,
) -> Result<T, LoadError> {
    let map = ebpf.take_map(name).ok_or(LoadError::Missing(name))?;
    convert(map).map_err(|source| LoadError::Map { name, source })
}
