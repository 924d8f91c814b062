//! Loads the BPF object, attaches the chosen hook set, and hands out the maps the
//! monitor reads: the event ring buffer, the per-flow counters and the loss counters.
use crate::events::{FlowKey, FlowValue, STAT_MAX, STAT_NAMES};
use crate::hooks::{self, HookChoice, ProbeError};
use aya::maps::{HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{
    BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock, CgroupSockAddr,
};
use aya::{Btf, Ebpf, EbpfLoader};
use std::fs::File;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct CaptureOptions {
    pub ring_buffer_bytes: u32,
    pub flow_map_entries: u32,
    /// cgroup v2 directory the socket hooks attach to; None finds the root.
    pub cgroup: Option<PathBuf>,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self { ring_buffer_bytes: 4 << 20, flow_map_entries: 65536, cgroup: None }
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
}

/// The attached programs and their maps. Dropping it detaches everything.
pub struct KernelCapture {
    /// Owns the programs and their links; kept alive for as long as capture runs.
    _ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    pub flows: HashMap<MapData, FlowKey, FlowValue>,
    pub stats: PerCpuArray<MapData, u64>,
    pub choice: HookChoice,
    pub cgroup: PathBuf,
}

const TRACEPOINTS: [(&str, &str); 4] = [
    ("sock_send_length", "sock_send_length"),
    ("sock_recv_length", "sock_recv_length"),
    ("inet_sock_set_state", "inet_sock_set_state"),
    ("sched_process_exec", "sched_process_exec"),
];
const SOCK_ADDR: [&str; 6] = ["connect4", "connect6", "sendmsg4", "sendmsg6", "recvmsg4", "recvmsg6"];

impl KernelCapture {
    pub fn load(opts: &CaptureOptions) -> Result<Self, LoadError> {
        let choice = hooks::probe()?;
        let btf = Btf::from_sys_fs()?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .map_max_entries("events", opts.ring_buffer_bytes)
            .map_max_entries("flows", opts.flow_map_entries)
            .load(crate::BPF_OBJECT)?;

        let cgroup = match &opts.cgroup {
            Some(p) => p.clone(),
            None => crate::cgroup::find_cgroup2_root()
                .map_err(|source| LoadError::Cgroup { path: "/proc/self/mountinfo".into(), source })?,
        };
        let cgroup_fd = File::open(&cgroup).map_err(|source| LoadError::Cgroup { path: cgroup.clone(), source })?;

        for (name, tracepoint) in TRACEPOINTS {
            let prog: &mut BtfTracePoint = program(&mut ebpf, name)?;
            prog.load(tracepoint, &btf).map_err(|source| LoadError::Program { name, source })?;
            prog.attach().map_err(|source| LoadError::Attach { name, source })?;
        }
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

        let ring = take_map(&mut ebpf, "events", RingBuf::try_from)?;
        let flows = take_map(&mut ebpf, "flows", HashMap::try_from)?;
        let stats = take_map(&mut ebpf, "stats", PerCpuArray::try_from)?;
        Ok(Self { _ebpf: ebpf, ring, flows, stats, choice, cgroup })
    }

    /// The kernel's loss and degradation counters, summed over CPUs, by name.
    pub fn loss_counters(&self) -> Vec<(&'static str, u64)> {
        let mut out = Vec::with_capacity(STAT_NAMES.len());
        for (i, name) in STAT_NAMES.iter().enumerate() {
            let idx = i as u32;
            let total = if idx < STAT_MAX {
                self.stats.get(&idx, 0).map(|v| v.iter().sum::<u64>()).unwrap_or(0)
            } else {
                0
            };
            out.push((*name, total));
        }
        out
    }
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
