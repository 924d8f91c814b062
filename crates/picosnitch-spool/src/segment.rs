//! Segment files: their names, their header, and reading one record.
use crate::error::SpoolError;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The first bytes of every segment; the digit is the format's version.
pub const MAGIC: &[u8; 8] = b"PSSPOOL1";
/// Length and CRC-32 before each payload.
pub const RECORD_HEADER: usize = 8;
/// No record is larger (a row batch is under 64 KiB); a bigger length is corruption.
pub const MAX_RECORD: usize = 16 << 20;

pub fn name(number: u64) -> String {
    format!("{number:020}.seg")
}

pub fn path(dir: &Path, number: u64) -> PathBuf {
    dir.join(name(number))
}

fn number_of(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Segment numbers in the directory, oldest first, with their sizes.
pub fn list(dir: &Path) -> Result<Vec<(u64, u64)>, SpoolError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(SpoolError::Io { what: "listing the spool", path: dir.to_path_buf(), source: e }),
    };
    for entry in entries {
        let entry = entry.map_err(SpoolError::io("listing the spool", dir))?;
        let Some(n) = entry.file_name().to_str().and_then(number_of) else { continue };
        // A segment removed between the listing and here is simply gone.
        let Ok(md) = entry.metadata() else { continue };
        out.push((n, md.len()));
    }
    out.sort_unstable();
    Ok(out)
}

/// What the spool holds on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub segments: u64,
}

pub fn usage(dir: &Path) -> Result<Usage, SpoolError> {
    let segs = list(dir)?;
    Ok(Usage { bytes: segs.iter().map(|(_, len)| len).sum(), segments: segs.len() as u64 })
}

/// One record read at an offset.
pub enum Read {
    /// The payload and the offset just past it.
    Record(Vec<u8>, u64),
    /// Nothing more at this offset (yet).
    End,
    /// Bytes that are not a whole, intact record: being written, or torn.
    Damaged,
}

pub fn read_at(file: &File, offset: u64, path: &Path) -> Result<Read, SpoolError> {
    let mut header = [0u8; RECORD_HEADER];
    let got = read_full(file, &mut header, offset, path)?;
    if got == 0 {
        return Ok(Read::End);
    }
    if got < RECORD_HEADER {
        return Ok(Read::Damaged);
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_RECORD {
        return Ok(Read::Damaged);
    }
    let mut payload = vec![0u8; len];
    let got = read_full(file, &mut payload, offset + RECORD_HEADER as u64, path)?;
    if got < len || crc32fast::hash(&payload) != crc {
        return Ok(Read::Damaged);
    }
    Ok(Read::Record(payload, offset + (RECORD_HEADER + len) as u64))
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(file: &File, buf: &mut [u8], offset: u64, path: &Path) -> Result<usize, SpoolError> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SpoolError::Io { what: "reading the spool segment", path: path.to_path_buf(), source: e }),
        }
    }
    Ok(done)
}

/// The header and payload of one record, as the appender writes them.
pub fn encode(payload: &[u8]) -> Result<Vec<u8>, SpoolError> {
    if payload.is_empty() || payload.len() > MAX_RECORD {
        return Err(SpoolError::TooLarge { len: payload.len(), max: MAX_RECORD });
    }
    let mut out = Vec::with_capacity(RECORD_HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}
