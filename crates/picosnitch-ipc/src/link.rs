//! A typed, asynchronous link: `Out` messages go one way, `In` messages come back.
use crate::error::IpcError;
use crate::seqpacket::SeqPacket;
use crate::MAX_MESSAGE;
use async_io::Async;
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, OwnedFd};

pub struct Link<Out, In> {
    sock: Async<SeqPacket>,
    _types: PhantomData<fn(Out) -> In>,
}

impl<Out: Serialize, In: DeserializeOwned> Link<Out, In> {
    /// Puts the socket in non-blocking mode on smol's reactor.
    pub fn new(sock: SeqPacket) -> Result<Self, IpcError> {
        let sock = Async::new(sock).map_err(IpcError::io("registering a link with the reactor"))?;
        Ok(Self { sock, _types: PhantomData })
    }

    pub async fn send(&self, msg: &Out) -> Result<(), IpcError> {
        self.send_with_fds(msg, &[]).await
    }

    pub async fn send_with_fds(&self, msg: &Out, fds: &[BorrowedFd<'_>]) -> Result<(), IpcError> {
        let bytes = encode(msg)?;
        self.sock.write_with(|s| s.send(&bytes, fds)).await.map_err(IpcError::io("sending on a link"))
    }

    /// The next message, or `None` once the peer has closed its end.
    pub async fn recv(&self) -> Result<Option<In>, IpcError> {
        match self.recv_with_fds().await? {
            None => Ok(None),
            Some((msg, fds)) if fds.is_empty() => Ok(Some(msg)),
            Some((_, fds)) => Err(IpcError::Descriptors { expected: 0, got: fds.len() }),
        }
    }

    pub async fn recv_with_fds(&self) -> Result<Option<(In, Vec<OwnedFd>)>, IpcError> {
        let Some(m) = self.sock.read_with(|s| s.recv()).await.map_err(IpcError::io("receiving on a link"))? else {
            return Ok(None);
        };
        let msg = postcard::from_bytes(&m.bytes).map_err(|source| IpcError::Decode { len: m.bytes.len(), source })?;
        Ok(Some((msg, m.fds)))
    }

    pub fn into_inner(self) -> Result<SeqPacket, IpcError> {
        self.sock.into_inner().map_err(IpcError::io("taking a link off the reactor"))
    }
}

/// The encoding of one message, refused if it does not fit a link.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, IpcError> {
    let bytes = postcard::to_allocvec(msg).map_err(IpcError::Encode)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(IpcError::TooLarge { len: bytes.len(), limit: MAX_MESSAGE });
    }
    Ok(bytes)
}

/// One message as [`Link::recv`] decodes it, for roles that read their links without
/// an event loop (the opener).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, IpcError> {
    postcard::from_bytes(bytes).map_err(|source| IpcError::Decode { len: bytes.len(), source })
}

/// The encoded size of one item, for splitting a batch into messages that fit.
pub fn encoded_len<T: Serialize>(item: &T) -> Result<usize, IpcError> {
    postcard::to_allocvec(item).map(|v| v.len()).map_err(IpcError::Encode)
}

/// Splits `items` into chunks whose encodings fit in a message, leaving `headroom`
/// bytes for the message around them. An item too large on its own is an error
/// naming its size (callers bound the variable parts, such as command lines).
pub fn chunks_that_fit<T: Serialize>(items: Vec<T>, headroom: usize) -> Result<Vec<Vec<T>>, IpcError> {
    let budget = MAX_MESSAGE.saturating_sub(headroom);
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut used = 0usize;
    for item in items {
        // A varint length prefix per item is at most 5 bytes more than its encoding.
        let len = encoded_len(&item)? + 5;
        if len > budget {
            return Err(IpcError::TooLarge { len, limit: budget });
        }
        if used + len > budget && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            used = 0;
        }
        used += len;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_messages_round_trip_with_descriptors() {
        let (a, b) = SeqPacket::pair().expect("pair");
        let a: Link<(u64, String), ()> = Link::new(a).expect("link");
        let b: Link<(), (u64, String)> = Link::new(b).expect("link");
        futures_lite::future::block_on(async {
            let file = std::fs::File::open("/proc/self/exe").expect("open");
            use std::os::fd::AsFd;
            a.send_with_fds(&(7, "x".into()), &[file.as_fd()]).await.expect("send");
            a.send(&(8, "y".into())).await.expect("send");
            let (m, fds) = b.recv_with_fds().await.expect("recv").expect("msg");
            assert_eq!((m, fds.len()), ((7, "x".to_string()), 1));
            assert_eq!(b.recv().await.expect("recv"), Some((8, "y".to_string())));
            drop(a);
            assert_eq!(b.recv().await.expect("eof"), None);
        });
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let (a, b) = SeqPacket::pair().expect("pair");
        a.send(&[0xff; 3], &[]).expect("raw send");
        let b: Link<(), (u64, String)> = Link::new(b).expect("link");
        let err = futures_lite::future::block_on(b.recv()).expect_err("garbage");
        assert!(matches!(err, IpcError::Decode { len: 3, .. }), "{err}");
    }

    #[test]
    fn batches_are_split_to_fit() {
        let items: Vec<String> = (0..100).map(|i| format!("{i:0>2000}")).collect();
        let chunks = chunks_that_fit(items.clone(), 64).expect("split");
        assert!(chunks.len() > 1);
        for c in &chunks {
            assert!(encode(c).expect("fits").len() <= MAX_MESSAGE);
        }
        assert_eq!(chunks.concat(), items);
        assert!(chunks_that_fit(vec!["x".repeat(MAX_MESSAGE)], 0).is_err());
    }
}
