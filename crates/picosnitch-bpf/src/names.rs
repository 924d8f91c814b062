//! The name capture (`bpf/names.bpf.c`): DNS answers the machine receives and the first
//! TLS client packet of each TCP socket, as raw bytes for the primary to parse. Its own
//! object and ring buffer, so a flood of DNS answers cannot push flow records out.
use crate::loader::LoadError;
use aya::maps::{Array, MapData, MapError, RingBuf};
use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock, CgroupSockAddr};
use aya::{Btf, Ebpf, EbpfLoader};
use std::fs::File;
use std::path::Path;

/// The compiled object (`bpf/names.bpf.c`), aligned for the ELF parser.
pub static NAMES_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/names.bpf.o"));

/// Mirrors of `bpf/names.h` (checked against the object's BTF in tests/btf_mirror.rs).
pub const NAME_DATA_LEN: usize = 2048;
pub const NAME_DNS_UDP: u32 = 1;
pub const NAME_DNS_TCP: u32 = 2;
pub const NAME_TLS_HELLO: u32 = 3;
const NSTAT_MAX: u32 = 4;
/// Names of the kernel side's counters, by index (`enum ps_name_stat`).
pub const NAME_STAT_NAMES: [&str; 3] = ["names_ringbuf_full", "names_truncated", "names_netns_unknown"];

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NameEvent {
    pub kind: u32,
    pub netns: u32,
    pub cookie: u64,
    pub len: u32,
    pub wire_len: u32,
    pub data: [u8; NAME_DATA_LEN],
}

const HEADER_LEN: usize = core::mem::offset_of!(NameEvent, data);
const _: () = assert!(HEADER_LEN == 24);

/// What the packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// One DNS message in a UDP datagram from port 53.
    DnsUdp,
    /// A TCP segment from port 53: DNS messages, each after a two-byte length.
    DnsTcp,
    /// The first payload a TCP socket sent, which starts a TLS ClientHello.
    TlsHello,
}

/// One record of the name capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRecord {
    pub source: NameSource,
    /// Network namespace inode of the socket; 0 when the kernel side did not know it.
    pub netns: u32,
    pub cookie: u64,
    /// Payload bytes on the wire; more than `data.len()` when the copy was cut.
    pub wire_len: u32,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameDecodeError {
    #[error("name record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("name record of unknown kind {0}")]
    UnknownKind(u32),
    #[error("name record says {said} bytes of data but has {has} (at most {NAME_DATA_LEN})")]
    Length { said: u32, has: usize },
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(a)
}

impl NameRecord {
    pub fn decode(bytes: &[u8]) -> Result<Self, NameDecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(NameDecodeError::Short(bytes.len()));
        }
        let source = match u32_at(bytes, 0) {
            NAME_DNS_UDP => NameSource::DnsUdp,
            NAME_DNS_TCP => NameSource::DnsTcp,
            NAME_TLS_HELLO => NameSource::TlsHello,
            other => return Err(NameDecodeError::UnknownKind(other)),
        };
        let mut cookie = [0u8; 8];
        cookie.copy_from_slice(&bytes[8..16]);
        let len = u32_at(bytes, 16);
        let data = &bytes[HEADER_LEN..];
        if len as usize > NAME_DATA_LEN || len as usize > data.len() {
            return Err(NameDecodeError::Length { said: len, has: data.len() });
        }
        Ok(NameRecord {
            source,
            netns: u32_at(bytes, 4),
            cookie: u64::from_ne_bytes(cookie),
            wire_len: u32_at(bytes, 20),
            data: data[..len as usize].to_vec(),
        })
    }
}

/// The attached name capture. Dropping it detaches everything.
pub struct NameCapture {
    _ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    stats: Array<MapData, u64>,
}

const SOCK_ADDR: [&str; 4] = ["name_connect4", "name_connect6", "name_sendmsg4", "name_sendmsg6"];

impl NameCapture {
    /// Loads the object and attaches its programs to the cgroup v2 directory `cgroup`
    /// (the root: every socket on the machine). `ring_buffer_bytes` is a power of two.
    pub fn load(cgroup: &Path, ring_buffer_bytes: u32) -> Result<Self, LoadError> {
        let btf = Btf::from_sys_fs()?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .map_max_entries("name_events", ring_buffer_bytes)
            .load(NAMES_OBJECT)?;
        let cgroup_fd = File::open(cgroup).map_err(|source| LoadError::Cgroup { path: cgroup.to_path_buf(), source })?;
        // Namespaces first, so the first answers already know theirs.
        {
            let name = "name_sock_create";
            let prog: &mut CgroupSock = program(&mut ebpf, name)?;
            prog.load().map_err(|source| LoadError::Program { name, source })?;
            prog.attach(&cgroup_fd, CgroupAttachMode::Single).map_err(|source| LoadError::Attach { name, source })?;
        }
        for name in SOCK_ADDR {
            let prog: &mut CgroupSockAddr = program(&mut ebpf, name)?;
            prog.load().map_err(|source| LoadError::Program { name, source })?;
            prog.attach(&cgroup_fd, CgroupAttachMode::Single).map_err(|source| LoadError::Attach { name, source })?;
        }
        for (name, kind) in [("name_ingress", CgroupSkbAttachType::Ingress), ("name_egress", CgroupSkbAttachType::Egress)] {
            let prog: &mut CgroupSkb = program(&mut ebpf, name)?;
            prog.load().map_err(|source| LoadError::Program { name, source })?;
            prog.attach(&cgroup_fd, kind, CgroupAttachMode::Single).map_err(|source| LoadError::Attach { name, source })?;
        }
        let ring = take_map(&mut ebpf, "name_events", RingBuf::try_from)?;
        let stats = take_map(&mut ebpf, "name_stats", Array::try_from)?;
        Ok(Self { _ebpf: ebpf, ring, stats })
    }

    /// The kernel side's counters, by name; an error when they cannot be read.
    pub fn counters(&self) -> Result<Vec<(&'static str, u64)>, MapError> {
        let mut out = Vec::with_capacity(NAME_STAT_NAMES.len());
        for (i, name) in NAME_STAT_NAMES.iter().enumerate() {
            let idx = i as u32;
            if idx < NSTAT_MAX {
                out.push((*name, self.stats.get(&idx, 0)?));
            }
        }
        Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u32, len: u32, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&4026531840u32.to_ne_bytes());
        b.extend_from_slice(&77u64.to_ne_bytes());
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&(len + 5).to_ne_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn decodes_a_record_and_refuses_bad_lengths() {
        let r = NameRecord::decode(&record(NAME_TLS_HELLO, 3, b"abc")).expect("decodes");
        assert_eq!((r.source, r.netns, r.cookie, r.wire_len, r.data.as_slice()), (NameSource::TlsHello, 4026531840, 77, 8, &b"abc"[..]));
        assert_eq!(NameRecord::decode(&record(NAME_DNS_UDP, 4, b"abc")), Err(NameDecodeError::Length { said: 4, has: 3 }));
        assert_eq!(NameRecord::decode(&record(9, 0, b"")), Err(NameDecodeError::UnknownKind(9)));
        assert_eq!(NameRecord::decode(&[1, 0, 0]), Err(NameDecodeError::Short(3)));
    }
}
