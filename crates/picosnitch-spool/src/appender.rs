//! The writing end: one process appends, each record durable before `append` returns.
use crate::error::SpoolError;
use crate::segment::{self, MAGIC};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What became of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// On disk; the spool now holds `bytes_used`.
    Stored { bytes_used: u64 },
    /// Not stored: `needed` more bytes would pass the limit.
    Full { bytes_used: u64, needed: u64 },
}

struct Current {
    number: u64,
    file: File,
    len: u64,
}

pub struct Appender {
    dir: PathBuf,
    limit: u64,
    segment_max: u64,
    current: Option<Current>,
    last_number: u64,
}

impl Appender {
    /// Opens (creating, mode 0750) the spool directory. Appends go to a new segment
    /// first, never after what an earlier process may have left half-written.
    pub fn open(dir: &Path, limit: u64) -> Result<Appender, SpoolError> {
        if !dir.exists() {
            std::fs::DirBuilder::new().mode(0o750).create(dir).map_err(SpoolError::io("creating the spool directory", dir))?;
        }
        // Small segments are removed sooner once delivered; a few per limit keep the
        // part of the limit held by delivered records at the newest segment small.
        let segment_max = (limit / 8).clamp(64 << 10, 4 << 20);
        Ok(Appender { dir: dir.to_path_buf(), limit, segment_max, current: None, last_number: 0 })
    }

    /// For tests: segments of about this size.
    pub fn with_segment_max(mut self, bytes: u64) -> Self {
        self.segment_max = bytes;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one record, durably, unless that would pass the limit.
    pub fn append(&mut self, payload: &[u8]) -> Result<Appended, SpoolError> {
        let record = segment::encode(payload)?;
        let segs = segment::list(&self.dir)?;
        let used: u64 = segs.iter().map(|(_, len)| len).sum();
        let rotate = self.current.as_ref().is_none_or(|c| c.len >= self.segment_max);
        let needed = record.len() as u64 + if rotate { MAGIC.len() as u64 } else { 0 };
        if used + needed > self.limit {
            return Ok(Appended::Full { bytes_used: used, needed });
        }
        if rotate {
            let newest = segs.last().map_or(0, |(n, _)| *n);
            self.start_segment(newest.max(self.last_number) + 1)?;
        }
        let Some(cur) = self.current.as_mut() else {
            unreachable!("a segment was just started")
        };
        let path = segment::path(&self.dir, cur.number);
        let written = cur.file.write_all(&record).and_then(|()| cur.file.sync_data());
        if let Err(e) = written {
            // Whatever part reached the file is a torn record: nothing may follow it in
            // this segment, so the next record starts a new one.
            let _ = cur.file.set_len(cur.len);
            self.current = None;
            return Err(SpoolError::Io { what: "appending to the spool segment", path, source: e });
        }
        cur.len += record.len() as u64;
        Ok(Appended::Stored { bytes_used: used + needed })
    }

    fn start_segment(&mut self, number: u64) -> Result<(), SpoolError> {
        let path = segment::path(&self.dir, number);
        // O_EXCL and O_NOFOLLOW: never write through something planted in the directory.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(SpoolError::io("creating the spool segment", &path))?;
        file.write_all(MAGIC).and_then(|()| file.sync_data()).map_err(SpoolError::io("writing the spool segment", &path))?;
        // The new name must survive a crash too, or the records in it are lost with it.
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(SpoolError::io("syncing the spool directory", &self.dir))?;
        self.current = Some(Current { number, file, len: MAGIC.len() as u64 });
        self.last_number = number;
        Ok(())
    }
}
