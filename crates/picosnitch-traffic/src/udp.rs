//! UDP: unconnected (sendto/recvfrom), connected, and batched (sendmmsg/recvmmsg).
use crate::pace::Pace;
use crate::report::{announce_port, Report, IO_TIMEOUT};
use anyhow::Context;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

pub fn server(bind: SocketAddr, count: usize, reply: usize, mmsg: Option<usize>, mut pace: Pace) -> anyhow::Result<Report> {
    let s = UdpSocket::bind(bind).with_context(|| format!("binding {bind}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    roomy_receive_buffer(&s);
    announce_port(s.local_addr()?.port());
    let mut r = Report { local_ports: vec![s.local_addr()?.port()], ..Default::default() };
    let answer = vec![b'r'; reply];
    let mut peers = Vec::new();
    while (r.received_packets as usize) < count {
        match mmsg {
            Some(batch) => {
                for (len, peer) in recv_mmsg(&s, batch.min(count - r.received_packets as usize))? {
                    r.received += len as u64;
                    r.received_packets += 1;
                    peers.push(peer);
                }
            }
            None => {
                let mut buf = vec![0u8; 65536];
                let (len, peer) = s.recv_from(&mut buf).context("receiving")?;
                r.received += len as u64;
                r.received_packets += 1;
                peers.push(peer);
            }
        }
    }
    if reply > 0 {
        // The answers' schedule starts now, not when the first request was awaited.
        pace.restart();
        for (i, peer) in peers.into_iter().enumerate() {
            pace.wait(i);
            s.send_to(&answer, peer).context("answering")?;
            r.sent += reply as u64;
            r.sent_packets += 1;
        }
    }
    Ok(r)
}

/// How the client addresses its datagrams.
pub enum Addressing {
    /// sendto() each datagram.
    Unconnected,
    /// connect() to each of `probes` first, moving nothing (as getaddrinfo does on one
    /// UDP socket to learn the source address toward each candidate), then to the
    /// destination, and send().
    Connected { probes: Vec<SocketAddr> },
}

pub fn client(
    to: SocketAddr,
    count: usize,
    size: usize,
    addressing: Addressing,
    mmsg: Option<usize>,
    replies: usize,
    pace: Pace,
) -> anyhow::Result<Report> {
    let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0".parse()? } else { "[::]:0".parse()? };
    let s = UdpSocket::bind(bind)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    roomy_receive_buffer(&s);
    let connected = matches!(addressing, Addressing::Connected { .. });
    if let Addressing::Connected { probes } = &addressing {
        for probe in probes {
            s.connect(probe).with_context(|| format!("connecting to {probe}"))?;
        }
        s.connect(to).with_context(|| format!("connecting to {to}"))?;
    }
    let payload = vec![b'u'; size];
    let mut r = Report::default();
    let mut left = count;
    let mut step = 0;
    while left > 0 {
        if step > 0 {
            pace.wait(step);
        }
        step += 1;
        let n = match mmsg {
            Some(batch) => send_mmsg(&s, &payload, batch.min(left), (!connected).then_some(to))?,
            None => {
                if connected {
                    s.send(&payload)?;
                } else {
                    s.send_to(&payload, to)?;
                }
                1
            }
        };
        left -= n;
        r.sent += (n * size) as u64;
        r.sent_packets += n as u64;
    }
    r.local_ports.push(s.local_addr()?.port());
    let mut buf = vec![0u8; 65536];
    for _ in 0..replies {
        let len = if connected { s.recv(&mut buf)? } else { s.recv_from(&mut buf)?.0 };
        r.received += len as u64;
        r.received_packets += 1;
    }
    Ok(r)
}

/// Room for every datagram of a run in the socket's receive queue: on a busy machine the
/// receiver can be off the CPU for longer than the default buffer (about 90 datagrams of
/// 1200 bytes) lasts, and a datagram dropped there never arrives, so the run would wait
/// for it and fail. As root SO_RCVBUFFORCE passes net.core.rmem_max; otherwise SO_RCVBUF
/// gets what that limit allows. Best effort: a smaller buffer still works on a quiet machine.
fn roomy_receive_buffer(s: &UdpSocket) {
    const BYTES: libc::c_int = 8 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt reads one c_int from a pointer valid for the call.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&BYTES as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return;
        }
    }
}

/// sendmmsg of `n` copies of `payload`; returns how many the kernel took.
fn send_mmsg(s: &UdpSocket, payload: &[u8], n: usize, to: Option<SocketAddr>) -> anyhow::Result<usize> {
    let addr = to.map(socket2::SockAddr::from);
    let mut iovs: Vec<libc::iovec> =
        (0..n).map(|_| libc::iovec { iov_base: payload.as_ptr() as *mut libc::c_void, iov_len: payload.len() }).collect();
    // SAFETY: mmsghdr is plain data; every pointer set below outlives the call.
    let mut msgs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
        if let Some(a) = &addr {
            m.msg_hdr.msg_name = a.as_ptr() as *mut libc::c_void;
            m.msg_hdr.msg_namelen = a.len();
        }
    }
    // SAFETY: msgs points to n initialised headers whose buffers are alive.
    let sent = unsafe { libc::sendmmsg(s.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
    if sent < 0 {
        return Err(std::io::Error::last_os_error()).context("sendmmsg");
    }
    Ok(sent as usize)
}

/// recvmmsg of up to `n` datagrams: their lengths and senders.
fn recv_mmsg(s: &UdpSocket, n: usize) -> anyhow::Result<Vec<(usize, SocketAddr)>> {
    let mut bufs = vec![vec![0u8; 65536]; n];
    // SAFETY: sockaddr_storage is plain data.
    let mut names: Vec<libc::sockaddr_storage> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
    let mut iovs: Vec<libc::iovec> =
        bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
    // SAFETY: as in send_mmsg.
    let mut msgs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
    for ((m, iov), name) in msgs.iter_mut().zip(iovs.iter_mut()).zip(names.iter_mut()) {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
        m.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
        m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
    }
    let mut timeout = libc::timespec { tv_sec: IO_TIMEOUT.as_secs() as i64, tv_nsec: 0 };
    // SAFETY: msgs, their buffers and names are alive and sized as declared.
    let got = unsafe { libc::recvmmsg(s.as_raw_fd(), msgs.as_mut_ptr(), n as u32, libc::MSG_WAITFORONE, &mut timeout) };
    if got < 0 {
        return Err(std::io::Error::last_os_error()).context("recvmmsg");
    }
    let mut out = Vec::new();
    for (m, name) in msgs.iter().zip(names.iter()).take(got as usize) {
        out.push((m.msg_len as usize, sender(name).context("recvmmsg: sender is not an IP address")?));
    }
    Ok(out)
}

/// The IP address in a sockaddr_storage the kernel filled.
fn sender(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says the storage holds a sockaddr_in, which fits in it.
            let a = unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: as above for sockaddr_in6.
            let a = unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::new(ip.into(), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}
