//! Request/response over one TCP connection (netperf's TCP_RR): the client sends a
//! request of --size bytes and waits for an answer of the same size, --count times, and
//! reports the distribution of round-trip times. What a monitor adds per send and
//! receive shows up here, without connection setup in the way.
use crate::report::{announce_port, Report, IO_TIMEOUT};
use anyhow::Context;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

/// Answers every request of `size` bytes with the same bytes until the client closes.
pub fn server(bind: SocketAddr, accepts: usize, size: usize) -> anyhow::Result<Report> {
    let listener = TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
    announce_port(listener.local_addr()?.port());
    let mut r = Report::default();
    let mut buf = vec![0u8; size.max(1)];
    for _ in 0..accepts {
        let (mut s, _) = listener.accept().context("accepting")?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        r.local_ports.push(s.local_addr()?.port());
        loop {
            match read_exact_or_eof(&mut s, &mut buf).context("reading a request")? {
                false => break,
                true => {
                    r.received += buf.len() as u64;
                    r.received_packets += 1;
                    s.write_all(&buf).context("answering")?;
                    r.sent += buf.len() as u64;
                    r.sent_packets += 1;
                }
            }
        }
    }
    Ok(r)
}

pub fn client(to: SocketAddr, count: usize, size: usize) -> anyhow::Result<Report> {
    let mut s = TcpStream::connect_timeout(&to, IO_TIMEOUT).with_context(|| format!("connecting to {to}"))?;
    // Without it Nagle's algorithm and delayed ACKs would be measured, not the path.
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut r = Report { local_ports: vec![s.local_addr()?.port()], ..Default::default() };
    let request = vec![b'q'; size.max(1)];
    let mut answer = vec![0u8; size.max(1)];
    r.round_trips.reserve(count);
    for _ in 0..count {
        let start = Instant::now();
        s.write_all(&request).context("sending a request")?;
        if !read_exact_or_eof(&mut s, &mut answer).context("reading an answer")? {
            anyhow::bail!("the server closed the connection after {} answers", r.received_packets);
        }
        r.round_trips.push(start.elapsed());
        r.sent += request.len() as u64;
        r.sent_packets += 1;
        r.received += answer.len() as u64;
        r.received_packets += 1;
    }
    s.shutdown(Shutdown::Write)?;
    Ok(r)
}

/// Fills `buf`; false on a clean EOF before the first byte.
fn read_exact_or_eof(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
