//! Rust mirror of `bpf/picosnitch.h`: the records the kernel side writes into the ring
//! buffer and the flows map. `tests/btf_mirror.rs` checks every size and field offset
//! against the BTF of the compiled object, so the two cannot drift apart.

pub const COMM_LEN: usize = 16;
pub const PATH_LEN: usize = 4096;
pub const ARGS_LEN: usize = 1024;

pub const EV_FLOW_NEW: u32 = 1;
pub const EV_FLOW_UNTRACKED: u32 = 2;
pub const EV_SOCK_CLOSE: u32 = 3;
pub const EV_EXEC: u32 = 4;

pub const DIR_OUT: u16 = 0;
pub const DIR_IN: u16 = 1;

/// Set in [`FlowValue::flags`] while a connect()'s announcement waits in socket storage.
pub const FLOW_PENDING_OPEN: u32 = 1;

/// Names of the kernel's loss and degradation counters, by index.
pub const STAT_NAMES: [&str; 9] = [
    "ringbuf_full_flow",
    "ringbuf_full_close",
    "ringbuf_full_exec",
    "flow_map_full",
    "path_truncated",
    "bytes_lost",
    "storage_open",
    "storage_peer",
    "storage_fin",
];
pub const STAT_MAX: u32 = 12;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FileId {
    pub ino: u64,
    /// The kernel's encoding: major << 20 | minor.
    pub dev: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Task {
    pub tgid: u32,
    pub pid: u32,
    pub ppid: u32,
    pub gppid: u32,
    pub uid: u32,
    pub netns: u32,
    pub exe: FileId,
    pub pexe: FileId,
    pub gpexe: FileId,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub cookie: u64,
    pub tgid: u32,
    pub rport: u16,
    pub family: u16,
    pub raddr: [u8; 16],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub send_bytes: u64,
    pub recv_bytes: u64,
    pub send_packets: u64,
    pub recv_packets: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowValue {
    pub counters: Counters,
    pub flags: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowEvent {
    pub kind: u32,
    pub protocol: u16,
    pub sock_type: u16,
    pub ktime_ns: u64,
    pub key: FlowKey,
    pub laddr: [u8; 16],
    pub lport: u16,
    pub direction: u16,
    pub _pad: u32,
    pub tcp_sent_base: u64,
    pub tcp_recv_base: u64,
    pub task: Task,
    pub counters: Counters,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct CloseEvent {
    pub kind: u32,
    pub is_tcp: u32,
    pub cookie: u64,
    pub tcp_sent: u64,
    pub tcp_recv: u64,
}

/// The fixed part of an exec record; `path_len` bytes of path and then `args_len`
/// bytes of NUL-separated argv follow it in the ring buffer record.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ExecHeader {
    pub kind: u32,
    pub path_len: u32,
    pub args_len: u32,
    pub truncated: u32,
    pub ktime_ns: u64,
    pub task: Task,
}

/// An exec record with its variable part.
#[derive(Debug, Clone)]
pub struct ExecEvent {
    pub header: ExecHeader,
    pub path: Vec<u8>,
    pub args: Vec<u8>,
}

const _: () = assert!(core::mem::size_of::<FileId>() == 16);
const _: () = assert!(core::mem::size_of::<Task>() == 88);
const _: () = assert!(core::mem::size_of::<FlowKey>() == 32);
const _: () = assert!(core::mem::size_of::<Counters>() == 32);
const _: () = assert!(core::mem::size_of::<FlowEvent>() == 208);
const _: () = assert!(core::mem::size_of::<FlowValue>() == 40);
const _: () = assert!(core::mem::size_of::<ExecHeader>() == 112);
const _: () = assert!(core::mem::size_of::<CloseEvent>() == 32);

// SAFETY: plain old data, every bit pattern valid, explicit padding: aya may copy these
// to and from map memory.
unsafe impl aya::Pod for FlowKey {}
// SAFETY: as above.
unsafe impl aya::Pod for FlowValue {}

/// One record from the ring buffer, decoded.
#[derive(Debug, Clone)]
pub enum RawEvent {
    Flow(FlowEvent),
    Close(CloseEvent),
    Exec(Box<ExecEvent>),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("ring buffer record of {len} bytes is too short for its kind {kind}")]
    Short { kind: u32, len: usize },
    #[error("ring buffer record has unknown kind {0}")]
    UnknownKind(u32),
    #[error("exec record of {len} bytes is shorter than its path ({path_len}) and argv ({args_len}) say")]
    ExecLength { len: usize, path_len: u32, args_len: u32 },
}

fn read_pod<T: Copy>(bytes: &[u8], kind: u32) -> Result<T, DecodeError> {
    if bytes.len() < core::mem::size_of::<T>() {
        return Err(DecodeError::Short { kind, len: bytes.len() });
    }
    // SAFETY: the length was checked above, T is a repr(C) record of integers and byte
    // arrays for which every bit pattern is valid, and read_unaligned needs no alignment.
    Ok(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

impl RawEvent {
    /// Decodes one ring buffer record; the first u32 of every record is its kind.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let kind: u32 = read_pod(bytes, 0)?;
        match kind {
            EV_FLOW_NEW | EV_FLOW_UNTRACKED => Ok(Self::Flow(read_pod(bytes, kind)?)),
            EV_SOCK_CLOSE => Ok(Self::Close(read_pod(bytes, kind)?)),
            EV_EXEC => {
                let header: ExecHeader = read_pod(bytes, kind)?;
                let start = core::mem::size_of::<ExecHeader>();
                let (path_len, args_len) = (header.path_len as usize, header.args_len as usize);
                let too_short = DecodeError::ExecLength { len: bytes.len(), path_len: header.path_len, args_len: header.args_len };
                if path_len > PATH_LEN || args_len > ARGS_LEN {
                    return Err(too_short);
                }
                let path = bytes.get(start..start + path_len).ok_or(too_short.clone())?;
                let args = bytes.get(start + path_len..start + path_len + args_len).ok_or(too_short)?;
                Ok(Self::Exec(Box::new(ExecEvent { header, path: path.to_vec(), args: args.to_vec() })))
            }
            other => Err(DecodeError::UnknownKind(other)),
        }
    }
}

/// Bytes up to the first NUL, lossily as UTF-8.
pub fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Task {
    pub fn comm(&self) -> String {
        c_str(&self.comm)
    }
}

impl ExecEvent {
    /// The executed file's absolute path as the kernel resolved it.
    pub fn path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// argv, as the process was started.
    pub fn argv(&self) -> Vec<String> {
        let raw = self.args.as_slice();
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        if raw.is_empty() {
            return Vec::new();
        }
        raw.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
    }
}

/// Kernel dev_t encoding (major << 20 | minor) to the userspace one of stat(2).
pub fn kernel_dev_to_user(dev: u32) -> u64 {
    let major = dev >> 20;
    let minor = dev & 0xfffff;
    libc::makedev(major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_close_event() {
        let ev = CloseEvent { kind: EV_SOCK_CLOSE, is_tcp: 1, cookie: 7, tcp_sent: 5, tcp_recv: 9 };
        // SAFETY: CloseEvent is plain data without padding.
        let bytes = unsafe {
            core::slice::from_raw_parts((&ev as *const CloseEvent).cast::<u8>(), core::mem::size_of::<CloseEvent>())
        };
        match RawEvent::decode(bytes) {
            Ok(RawEvent::Close(c)) => assert_eq!((c.cookie, c.tcp_recv), (7, 9)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn refuses_short_and_unknown_records() {
        assert_eq!(RawEvent::decode(&[1, 0]).err(), Some(DecodeError::Short { kind: 0, len: 2 }));
        assert_eq!(RawEvent::decode(&[1, 0, 0, 0, 0]).err(), Some(DecodeError::Short { kind: 1, len: 5 }));
        assert_eq!(RawEvent::decode(&[99, 0, 0, 0]).err(), Some(DecodeError::UnknownKind(99)));
    }

    fn exec_record(path: &[u8], args: &[u8], claimed_args: u32) -> Vec<u8> {
        let header = ExecHeader {
            kind: EV_EXEC,
            path_len: path.len() as u32,
            args_len: claimed_args,
            truncated: 0,
            ktime_ns: 0,
            task: Task::default(),
        };
        // SAFETY: ExecHeader is plain data without implicit padding.
        let mut bytes = unsafe {
            core::slice::from_raw_parts((&header as *const ExecHeader).cast::<u8>(), core::mem::size_of::<ExecHeader>())
        }
        .to_vec();
        bytes.extend_from_slice(path);
        bytes.extend_from_slice(args);
        bytes
    }

    #[test]
    fn exec_path_and_argv() {
        let args = b"ls\0-l\0\0x\0";
        let rec = exec_record(b"/bin/ls", args, args.len() as u32);
        let Ok(RawEvent::Exec(ev)) = RawEvent::decode(&rec) else { panic!("exec record") };
        assert_eq!(ev.path(), "/bin/ls");
        assert_eq!(ev.argv(), vec!["ls", "-l", "", "x"]);
    }

    #[test]
    fn exec_record_shorter_than_it_claims_is_refused() {
        let rec = exec_record(b"/bin/ls", b"ls\0", 100);
        assert!(matches!(RawEvent::decode(&rec), Err(DecodeError::ExecLength { args_len: 100, .. })));
    }

    #[test]
    fn kernel_dev_encoding() {
        // 259:3 (nvme) in the kernel's encoding.
        assert_eq!(kernel_dev_to_user((259 << 20) | 3), libc::makedev(259, 3));
    }
}
