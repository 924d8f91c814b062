//! TCP both ways: a server that answers each connection, and a client that can move
//! its bytes with plain read/write, io_uring, sendfile or splice.
use crate::report::{announce_port, Report, IO_TIMEOUT};
use crate::Io;
use anyhow::Context;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

pub fn server(bind: SocketAddr, accepts: usize, send: usize) -> anyhow::Result<Report> {
    let listener = TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
    announce_port(listener.local_addr()?.port());
    let mut r = Report::default();
    let answer = vec![b's'; send];
    for _ in 0..accepts {
        let (mut s, _) = listener.accept().context("accepting")?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).context("reading the request")?;
        r.received += buf.len() as u64;
        s.write_all(&answer).context("answering")?;
        r.sent += send as u64;
        r.local_ports.push(s.local_addr()?.port());
    }
    Ok(r)
}

pub fn client(to: SocketAddr, send: usize, io: Io, repeat: usize, rate: Option<f64>) -> anyhow::Result<Report> {
    let mut r = Report::default();
    let start = std::time::Instant::now();
    for i in 0..repeat {
        if let Some(rate) = rate.filter(|r| *r > 0.0) {
            // Absolute schedule, so a slow connection does not lower the rate.
            let due = start + std::time::Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let s = TcpStream::connect_timeout(&to, IO_TIMEOUT).with_context(|| format!("connecting to {to}"))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        r.local_ports.push(s.local_addr()?.port());
        let (sent, received) = match io {
            Io::Plain => plain(s, send)?,
            Io::Uring => crate::uring::exchange(s, send)?,
            Io::Sendfile => crate::zerocopy::sendfile_exchange(s, send)?,
            Io::Splice => crate::zerocopy::splice_exchange(s, send)?,
        };
        r.sent += sent;
        r.received += received;
    }
    Ok(r)
}

fn plain(mut s: TcpStream, send: usize) -> anyhow::Result<(u64, u64)> {
    s.write_all(&vec![b'c'; send]).context("sending")?;
    s.shutdown(Shutdown::Write)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).context("reading the answer")?;
    Ok((send as u64, buf.len() as u64))
}
