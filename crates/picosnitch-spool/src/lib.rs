//! The spool: a durable, bounded, ordered queue of records in one directory, written by
//! one process (the writer, [`Appender`]) and drained by another (the remote role,
//! [`Reader`]), which share nothing but the directory.
//!
//! Records live in numbered segment files (`00000000000000000001.seg`, ...), each an
//! 8-byte magic followed by records: a little-endian `u32` length, the CRC-32 of the
//! payload, and the payload. The appender writes each record with one `write` and
//! `fdatasync`s it before [`Appender::append`] returns; it only ever appends to the
//! newest segment, and starts a new one when that is full and whenever it is opened
//! again (so a record torn by a crash is never followed by good ones in its segment).
//! The reader never removes the newest segment, and removes an older one once every
//! record in it is consumed; so the two agree without locks:
//!
//! - a record that is incomplete or fails its checksum in the *newest* segment may
//!   still be being written: the reader waits;
//! - the same in an older segment is a tail torn by a crash (the writer moved on): the
//!   reader counts it and continues with the next segment. The writer had not
//!   acknowledged that batch, so it was sent to it again and spooled again.
mod appender;
mod error;
mod reader;
mod segment;

pub use appender::{Appended, Appender};
pub use error::SpoolError;
pub use reader::{Position, Reader, Record};
pub use segment::{usage, Usage};

#[cfg(test)]
mod tests;
