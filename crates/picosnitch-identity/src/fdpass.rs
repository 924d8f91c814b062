//! Passing open files between roles over Unix stream sockets.
//!
//! Framing: a request is exactly 8 bytes (a little-endian u64 id) carrying one fd as
//! SCM_RIGHTS. A hash reply is 8 bytes of id, 1 status byte (0 ok, 1 error), a
//! little-endian u32 length and that many bytes of UTF-8 (the hex digest or the error).
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags,
};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

const MAX_REPLY: u32 = 64 * 1024;

/// Sends one fd with its id.
pub fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>, id: u64) -> io::Result<()> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("ancillary buffer too small for one fd"));
    }
    let bytes = id.to_le_bytes();
    let n = loop {
        match sendmsg(sock, &[IoSlice::new(&bytes)], &mut control, SendFlags::NOSIGNAL) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if n != bytes.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write of an fd-passing message"));
    }
    Ok(())
}

/// Receives one fd and its id; None at end of stream. The fd arrives close-on-exec.
pub fn recv_fd(sock: &UnixStream) -> io::Result<Option<(u64, OwnedFd)>> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut bytes = [0u8; 8];
    let msg = loop {
        match recvmsg(sock, &mut [IoSliceMut::new(&mut bytes)], &mut control, RecvFlags::CMSG_CLOEXEC | RecvFlags::WAITALL) {
            Ok(m) => break m,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut received: Option<OwnedFd> = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for fd in fds {
                // More than one fd is a protocol error; extra fds are closed on drop.
                if received.is_none() {
                    received = Some(fd);
                }
            }
        }
    }
    if msg.bytes == 0 {
        return Ok(None);
    }
    if msg.bytes != 8 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("fd-passing message of {} bytes, expected 8", msg.bytes)));
    }
    let fd = received.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "fd-passing message without an fd"))?;
    Ok(Some((u64::from_le_bytes(bytes), fd)))
}

pub fn send_hash_reply(mut sock: &UnixStream, id: u64, reply: &Result<String, String>) -> io::Result<()> {
    let (status, text) = match reply {
        Ok(h) => (0u8, h.as_bytes()),
        Err(e) => (1u8, e.as_bytes()),
    };
    let text = &text[..text.len().min(MAX_REPLY as usize)];
    let mut frame = Vec::with_capacity(13 + text.len());
    frame.extend_from_slice(&id.to_le_bytes());
    frame.push(status);
    frame.extend_from_slice(&(text.len() as u32).to_le_bytes());
    frame.extend_from_slice(text);
    sock.write_all(&frame)
}

/// Reads one hash reply; None at end of stream.
pub fn recv_hash_reply(mut sock: &UnixStream) -> io::Result<Option<(u64, Result<String, String>)>> {
    let mut head = [0u8; 13];
    match sock.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let id = u64::from_le_bytes(head[..8].try_into().map_err(io::Error::other)?);
    let len = u32::from_le_bytes(head[9..13].try_into().map_err(io::Error::other)?);
    if len > MAX_REPLY {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("hash reply of {len} bytes is too long")));
    }
    let mut text = vec![0u8; len as usize];
    sock.read_exact(&mut text)?;
    let text = String::from_utf8_lossy(&text).into_owned();
    Ok(Some((id, if head[8] == 0 { Ok(text) } else { Err(text) })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn passes_an_fd_and_replies() {
        let (a, b) = UnixStream::pair().expect("pair");
        let f = std::fs::File::open("/bin/ls").expect("open");
        send_fd(&a, f.as_fd(), 42).expect("send");
        let (id, fd) = recv_fd(&b).expect("recv").expect("one message");
        assert_eq!(id, 42);
        let (st1, st2) = (rustix::fs::fstat(&f).expect("fstat"), rustix::fs::fstat(&fd).expect("fstat"));
        assert_eq!((st1.st_dev, st1.st_ino), (st2.st_dev, st2.st_ino));
        assert!(rustix::io::fcntl_getfd(&fd).expect("getfd").contains(rustix::io::FdFlags::CLOEXEC));
        send_hash_reply(&b, 42, &Ok("abc".into())).expect("reply");
        send_hash_reply(&b, 43, &Err("nope".into())).expect("reply");
        assert_eq!(recv_hash_reply(&a).expect("r"), Some((42, Ok("abc".into()))));
        assert_eq!(recv_hash_reply(&a).expect("r"), Some((43, Err("nope".into()))));
        drop(b);
        assert_eq!(recv_hash_reply(&a).expect("eof"), None);
        assert!(recv_fd(&a).expect("eof").is_none());
    }
}
