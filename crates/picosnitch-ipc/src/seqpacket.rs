//! A `SOCK_SEQPACKET` Unix socket: whole messages, optional descriptors attached.
use crate::error::IpcError;
use crate::MAX_MESSAGE;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// Most descriptors one message may carry.
pub const MAX_FDS: usize = 4;

#[derive(Debug)]
pub struct SeqPacket {
    fd: OwnedFd,
    /// Reused for every receive: zeroing a fresh 60 KiB buffer per message was a
    /// visible share of the pipeline's CPU.
    buf: std::cell::RefCell<Vec<u8>>,
}

/// One received message.
#[derive(Debug, Default)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

impl SeqPacket {
    /// A connected pair; both ends close-on-exec.
    pub fn pair() -> Result<(SeqPacket, SeqPacket), IpcError> {
        let (a, b) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
            .map_err(|e| IpcError::Io { what: "creating a socketpair", source: e.into() })?;
        Ok((SeqPacket::wrap(a), SeqPacket::wrap(b)))
    }

    /// Adopts a descriptor that must be a SOCK_SEQPACKET socket (checked, so a role
    /// started by hand with the wrong fds fails clearly instead of misbehaving).
    pub fn from_fd(fd: OwnedFd) -> Result<SeqPacket, IpcError> {
        let ty = rustix::net::sockopt::socket_type(&fd)
            .map_err(|e| IpcError::Io { what: "checking an inherited descriptor", source: e.into() })?;
        if ty != SocketType::SEQPACKET {
            return Err(IpcError::Io {
                what: "checking an inherited descriptor",
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a SOCK_SEQPACKET socket"),
            });
        }
        Ok(SeqPacket::wrap(fd))
    }

    fn wrap(fd: OwnedFd) -> SeqPacket {
        SeqPacket { fd, buf: std::cell::RefCell::new(Vec::new()) }
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Sends one message with `fds` attached. Fails with `WouldBlock` on a
    /// non-blocking socket whose buffer is full.
    pub fn send(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        if bytes.is_empty() || bytes.len() > MAX_MESSAGE || fds.len() > MAX_FDS {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "message size or descriptor count out of range"));
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other("SCM_RIGHTS buffer too small"));
        }
        loop {
            match rustix::net::sendmsg(&self.fd, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL) {
                Ok(n) if n == bytes.len() => return Ok(()),
                Ok(n) => return Err(io::Error::other(format!("short seqpacket send: {n} of {} bytes", bytes.len()))),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives one message; `Ok(None)` when the peer has closed its end. Received
    /// descriptors are close-on-exec.
    pub fn recv(&self) -> Result<Option<Received>, io::Error> {
        let mut buf = self.buf.borrow_mut();
        if buf.len() < MAX_MESSAGE + 1 {
            buf.resize(MAX_MESSAGE + 1, 0);
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = loop {
            match rustix::net::recvmsg(&self.fd, &mut [IoSliceMut::new(&mut buf)], &mut control, RecvFlags::CMSG_CLOEXEC) {
                Ok(m) => break m,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let mut fds = Vec::new();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        if msg.flags.intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC) || msg.bytes > MAX_MESSAGE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, IpcError::Truncated { limit: MAX_MESSAGE }.to_string()));
        }
        if msg.bytes == 0 {
            // Senders never send empty messages, so zero bytes is the peer's close.
            return Ok(None);
        }
        Ok(Some(Received { bytes: buf[..msg.bytes].to_vec(), fds }))
    }
}

impl AsFd for SeqPacket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for SeqPacket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<SeqPacket> for OwnedFd {
    fn from(s: SeqPacket) -> OwnedFd {
        s.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn messages_keep_their_boundaries_and_descriptors() {
        let (a, b) = SeqPacket::pair().expect("pair");
        let mut file = tempfile_with(b"hello");
        a.send(b"one", &[]).expect("send");
        a.send(b"two!", &[file.as_fd()]).expect("send fd");
        let m1 = b.recv().expect("recv").expect("message");
        assert_eq!((m1.bytes.as_slice(), m1.fds.len()), (&b"one"[..], 0));
        let m2 = b.recv().expect("recv").expect("message");
        assert_eq!((m2.bytes.as_slice(), m2.fds.len()), (&b"two!"[..], 1));
        let mut got = std::fs::File::from(m2.fds.into_iter().next().expect("fd"));
        got.rewind().expect("seek");
        let mut s = String::new();
        got.read_to_string(&mut s).expect("read");
        assert_eq!(s, "hello");
        file.flush().expect("flush");
        drop(a);
        assert!(b.recv().expect("eof").is_none(), "a closed peer reads as end of stream");
    }

    #[test]
    fn oversized_and_empty_messages_are_refused() {
        let (a, _b) = SeqPacket::pair().expect("pair");
        assert!(a.send(&vec![0; MAX_MESSAGE + 1], &[]).is_err());
        assert!(a.send(&[], &[]).is_err());
    }

    #[test]
    fn a_stream_socket_is_not_adopted() {
        let (s, _t) = std::os::unix::net::UnixStream::pair().expect("pair");
        assert!(SeqPacket::from_fd(OwnedFd::from(s)).is_err());
    }

    fn tempfile_with(data: &[u8]) -> std::fs::File {
        let path = std::env::temp_dir().join(format!("picosnitch-ipc-test-{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("tmp");
        let _ = std::fs::remove_file(&path);
        f.write_all(data).expect("write");
        f
    }
}
