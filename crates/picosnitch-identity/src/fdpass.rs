//! The wire between the monitor and the hasher process: one SOCK_STREAM unix socket.
//!
//! Request (monitor → hasher): 8 bytes, the request id as little-endian u64, with exactly
//! one descriptor attached as SCM_RIGHTS to that message. One descriptor per request.
//!
//! Reply (hasher → monitor), fixed header then payload:
//!
//! | bytes | field                                                     |
//! |-------|-----------------------------------------------------------|
//! | 8     | request id, little-endian u64                             |
//! | 1     | status: 0 = ok (payload is the hex sha256), 1 = error     |
//! | 4     | payload length, little-endian u32, at most [`MAX_REPLY`]  |
//! | n     | payload, UTF-8                                            |
//!
//! A clean end of stream between messages is `Ok(None)`; one in the middle of a message
//! is `UnexpectedEof`; a malformed message is `InvalidData`.
use crate::retry::retry_eintr;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Longest reply payload accepted (and sent: longer error text is cut).
pub const MAX_REPLY: usize = 64 * 1024;

const STATUS_OK: u8 = 0;
const STATUS_ERR: u8 = 1;
const REPLY_HEADER: usize = 8 + 1 + 4;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Sends `request_id` with `fd` attached. The peer gets its own descriptor for the same
/// open file (same file offset: the hasher only preads).
pub fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>, request_id: u64) -> io::Result<()> {
    let payload = request_id.to_le_bytes();
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("SCM_RIGHTS control buffer too small"));
    }
    let sent = retry_eintr(|| {
        rustix::net::sendmsg(
            sock,
            &[IoSlice::new(&payload)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
    })?;
    // The descriptor travels with the first byte; the rest (if the kernel took only part,
    // which it does not in practice for 8 bytes) follows without it.
    send_all(sock, payload.get(sent..).unwrap_or_default())
}

/// Receives one request: `Ok(None)` on a clean end of stream, else the id and the
/// descriptor, which is close-on-exec (MSG_CMSG_CLOEXEC).
///
/// A message with no descriptor, more than one, or a truncated control buffer is
/// `InvalidData` (any descriptors that did arrive are closed).
pub fn recv_fd(sock: &UnixStream) -> io::Result<Option<(u64, OwnedFd)>> {
    let mut payload = [0u8; 8];
    let mut got = 0usize;
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(1);
    while got < payload.len() {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let rest = payload.get_mut(got..).unwrap_or_default();
        let msg = retry_eintr(|| {
            rustix::net::recvmsg(
                sock,
                &mut [IoSliceMut::new(rest)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )
        })?;
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(invalid(
                "fd request: control data truncated (more than one descriptor?)".into(),
            ));
        }
        if msg.bytes == 0 {
            if got == 0 && fds.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("fd request: end of stream after {got} of 8 bytes"),
            ));
        }
        got += msg.bytes;
    }
    let id = u64::from_le_bytes(payload);
    let count = fds.len();
    match (fds.pop(), count) {
        (Some(fd), 1) => Ok(Some((id, fd))),
        _ => Err(invalid(format!(
            "fd request {id}: expected 1 descriptor, got {count}"
        ))),
    }
}

/// Sends the reply to request `id`: the hex sha256, or the error text (cut to
/// [`MAX_REPLY`] bytes at a character boundary).
pub fn send_hash_reply(
    sock: &UnixStream,
    id: u64,
    result: Result<String, String>,
) -> io::Result<()> {
    let (status, text) = match &result {
        Ok(h) => (STATUS_OK, h.as_str()),
        Err(e) => (STATUS_ERR, e.as_str()),
    };
    let text = truncate_at_char(text, MAX_REPLY);
    let len = u32::try_from(text.len()).map_err(|_| invalid("reply too long".into()))?;
    let mut msg = Vec::with_capacity(REPLY_HEADER + text.len());
    msg.extend_from_slice(&id.to_le_bytes());
    msg.push(status);
    msg.extend_from_slice(&len.to_le_bytes());
    msg.extend_from_slice(text.as_bytes());
    send_all(sock, &msg)
}

/// A reply: the request id and the hasher's result (hex sha256, or its error text).
pub type HashReply = (u64, Result<String, String>);

/// Receives one reply: `Ok(None)` on a clean end of stream.
pub fn recv_hash_reply(sock: &UnixStream) -> io::Result<Option<HashReply>> {
    let mut header = [0u8; REPLY_HEADER];
    if !recv_exact(sock, &mut header, true)? {
        return Ok(None);
    }
    let (id_bytes, rest) = header.split_at(8);
    let (status, len_bytes) = rest.split_at(1);
    let id = u64::from_le_bytes(id_bytes.try_into().map_err(|_| invalid("header".into()))?);
    let len = u32::from_le_bytes(len_bytes.try_into().map_err(|_| invalid("header".into()))?);
    let len = usize::try_from(len).map_err(|_| invalid(format!("reply {id}: length {len}")))?;
    if len > MAX_REPLY {
        return Err(invalid(format!(
            "reply {id}: payload of {len} bytes exceeds {MAX_REPLY}"
        )));
    }
    let mut payload = vec![0u8; len];
    recv_exact(sock, &mut payload, false)?;
    let text = String::from_utf8(payload)
        .map_err(|_| invalid(format!("reply {id}: payload is not UTF-8")))?;
    match status.first().copied() {
        Some(STATUS_OK) => Ok(Some((id, Ok(text)))),
        Some(STATUS_ERR) => Ok(Some((id, Err(text)))),
        other => Err(invalid(format!("reply {id}: unknown status {other:?}"))),
    }
}

/// Longest prefix of `s` of at most `max` bytes ending on a character boundary.
fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Writes all of `buf` with MSG_NOSIGNAL (a closed peer is EPIPE, not SIGPIPE).
fn send_all(sock: &UnixStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = retry_eintr(|| rustix::net::send(sock, buf, SendFlags::NOSIGNAL))?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "send wrote 0 bytes",
            ));
        }
        buf = buf.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// Fills `buf`. Returns false on end of stream before the first byte if `eof_ok`; end of
/// stream anywhere else is `UnexpectedEof`.
fn recv_exact(sock: &UnixStream, buf: &mut [u8], eof_ok: bool) -> io::Result<bool> {
    let mut got = 0usize;
    while got < buf.len() {
        let rest = buf.get_mut(got..).unwrap_or_default();
        let (n, _) = retry_eintr(|| rustix::net::recv(sock, &mut *rest, RecvFlags::empty()))?;
        if n == 0 {
            if got == 0 && eof_ok {
                return Ok(false);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("reply: end of stream after {got} of {} bytes", buf.len()),
            ));
        }
        got += n;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn fd_passing_between_threads() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(b"hello through SCM_RIGHTS").expect("write");
        let sender = std::thread::spawn(move || {
            send_fd(&a, f.as_fd(), 42).expect("send 42");
            send_fd(&a, f.as_fd(), u64::MAX).expect("send max");
            // `a` drops: the receiver then sees a clean end of stream.
        });
        let (id, fd) = recv_fd(&b).expect("recv").expect("a request");
        assert_eq!(id, 42);
        let flags = rustix::io::fcntl_getfd(&fd).expect("getfd");
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
        let mut buf = [0u8; 5];
        let n = rustix::io::pread(&fd, &mut buf, 0).expect("pread");
        assert_eq!(&buf[..n], b"hello");
        let (id2, _fd2) = recv_fd(&b).expect("recv").expect("second request");
        assert_eq!(id2, u64::MAX);
        sender.join().expect("sender thread");
        assert!(recv_fd(&b).expect("eof").is_none());
    }

    #[test]
    fn request_without_fd_is_invalid() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        (&a).write_all(&7u64.to_le_bytes()).expect("write");
        let err = recv_fd(&b).expect_err("no fd attached");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncated_request_is_unexpected_eof() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        (&a).write_all(&[1, 2, 3]).expect("write");
        drop(a);
        let err = recv_fd(&b).expect_err("short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn replies_round_trip() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        send_hash_reply(&a, 1, Ok("abc".into())).expect("send ok");
        send_hash_reply(&a, 2, Err("EIO: bad disk".into())).expect("send err");
        send_hash_reply(&a, 3, Err(String::new())).expect("send empty err");
        drop(a);
        assert_eq!(
            recv_hash_reply(&b).expect("recv"),
            Some((1, Ok("abc".to_owned())))
        );
        assert_eq!(
            recv_hash_reply(&b).expect("recv"),
            Some((2, Err("EIO: bad disk".to_owned())))
        );
        assert_eq!(
            recv_hash_reply(&b).expect("recv"),
            Some((3, Err(String::new())))
        );
        assert_eq!(recv_hash_reply(&b).expect("eof"), None);
    }

    #[test]
    fn oversized_reply_is_refused_and_long_error_is_cut() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let mut msg = 9u64.to_le_bytes().to_vec();
        msg.push(STATUS_OK);
        msg.extend_from_slice(&(u32::MAX).to_le_bytes());
        (&a).write_all(&msg).expect("write");
        let err = recv_hash_reply(&b).expect_err("too long");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let (a, b) = UnixStream::pair().expect("socketpair");
        let long = "é".repeat(MAX_REPLY); // 2 bytes each
        let writer = std::thread::spawn(move || send_hash_reply(&a, 5, Err(long)));
        let (id, res) = recv_hash_reply(&b).expect("recv").expect("reply");
        writer.join().expect("join").expect("send");
        assert_eq!(id, 5);
        let text = res.expect_err("error reply");
        assert_eq!(text.len(), MAX_REPLY);
    }
}
