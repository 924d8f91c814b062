//! The draining end: reads records in order without consuming them, and removes each
//! segment once everything in it has been consumed.
use crate::error::SpoolError;
use crate::segment::{self, Read, MAGIC};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Where a record ends: consuming it consumes everything before it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub payload: Vec<u8>,
    /// Just past this record.
    pub end: Position,
}

pub struct Reader {
    dir: PathBuf,
    /// Everything before this is consumed; `None` until the first segment is seen.
    consumed: Option<Position>,
    open: Option<(u64, File)>,
    /// Tails torn by a crash, skipped (each was spooled again by the writer).
    pub torn_tails: u64,
}

impl Reader {
    pub fn new(dir: &Path) -> Reader {
        Reader { dir: dir.to_path_buf(), consumed: None, open: None, torn_tails: 0 }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Up to `max_records` records (and about `max_bytes`), oldest first, after what
    /// is consumed. Calling it again without [`Reader::consume`] returns them again.
    pub fn peek(&mut self, max_records: usize, max_bytes: usize) -> Result<Vec<Record>, SpoolError> {
        let mut out: Vec<Record> = Vec::new();
        let mut bytes = 0usize;
        let mut segs = segment::list(&self.dir)?;
        let Some(&(first, _)) = segs.first() else { return Ok(out) };
        let start = |n: u64| Position { segment: n, offset: MAGIC.len() as u64 };
        let mut pos = match self.consumed {
            Some(p) if segs.iter().any(|(n, _)| *n == p.segment) => p,
            // Its segment is gone (removed by hand): continue with the next one.
            Some(p) => match segs.iter().find(|(n, _)| *n > p.segment) {
                Some(&(n, _)) => start(n),
                None => return Ok(out),
            },
            None => start(first),
        };
        self.consumed = Some(pos);
        while out.len() < max_records && bytes < max_bytes {
            // Taken before reading: once a newer segment exists, this one is final.
            let newer = segs.iter().find(|(n, _)| *n > pos.segment).map(|&(n, _)| n);
            match self.read(pos)? {
                Read::Record(payload, next) => {
                    pos.offset = next;
                    bytes += payload.len();
                    out.push(Record { payload, end: pos });
                }
                damaged_or_end => {
                    let Some(next) = newer else {
                        // The writer may have moved on since the listing: look again,
                        // and read again if it did.
                        segs = segment::list(&self.dir)?;
                        if segs.iter().any(|(n, _)| *n > pos.segment) {
                            continue;
                        }
                        break;
                    };
                    if matches!(damaged_or_end, Read::Damaged) {
                        self.torn_tails += 1;
                        tracing::warn!(
                            segment = %segment::path(&self.dir, pos.segment).display(),
                            offset = pos.offset,
                            "skipping the tail of a spool segment torn by a crash (its batch was spooled again)"
                        );
                    }
                    let done = pos.segment;
                    pos = start(next);
                    if out.is_empty() {
                        // Everything in it is consumed: it can go now.
                        self.remove(done)?;
                        self.consumed = Some(pos);
                    }
                }
            }
        }
        Ok(out)
    }

    fn read(&mut self, pos: Position) -> Result<Read, SpoolError> {
        let path = segment::path(&self.dir, pos.segment);
        let Some(file) = self.file(pos.segment)? else { return Ok(Read::End) };
        if pos.offset == MAGIC.len() as u64 {
            use std::os::unix::fs::FileExt;
            let mut magic = [0u8; 8];
            let got = file.read_at(&mut magic, 0).map_err(SpoolError::io("reading the spool segment", &path))?;
            if got < magic.len() {
                // Just created, or torn right after.
                return Ok(Read::Damaged);
            }
            if &magic != MAGIC {
                return Err(SpoolError::Foreign { path, found: magic.to_vec() });
            }
        }
        segment::read_at(file, pos.offset, &path)
    }

    /// Everything up to `end` is delivered: segments before its one are removed.
    pub fn consume(&mut self, end: Position) -> Result<(), SpoolError> {
        let segs = segment::list(&self.dir)?;
        for (n, _) in segs.iter().filter(|(n, _)| *n < end.segment) {
            self.remove(*n)?;
        }
        self.consumed = Some(end);
        Ok(())
    }

    fn file(&mut self, number: u64) -> Result<Option<&File>, SpoolError> {
        if self.open.as_ref().is_none_or(|(n, _)| *n != number) {
            let path = segment::path(&self.dir, number);
            match File::open(&path) {
                Ok(f) => self.open = Some((number, f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.open = None;
                    return Ok(None);
                }
                Err(e) => return Err(SpoolError::Io { what: "opening the spool segment", path, source: e }),
            }
        }
        Ok(self.open.as_ref().map(|(_, f)| f))
    }

    fn remove(&mut self, number: u64) -> Result<(), SpoolError> {
        if self.open.as_ref().is_some_and(|(n, _)| *n == number) {
            self.open = None;
        }
        let path = segment::path(&self.dir, number);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SpoolError::Io { what: "removing the delivered spool segment", path, source: e }),
        }
    }
}

