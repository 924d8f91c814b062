//! TCP both ways: a server that answers each connection, and a client that can move
//! its bytes with plain read/write, io_uring, sendfile or splice.
use crate::pace::Pace;
use crate::report::{announce_port, Report, IO_TIMEOUT};
use crate::Io;
use anyhow::Context;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

pub fn server(bind: SocketAddr, accepts: usize, send: usize, pace: Pace) -> anyhow::Result<Report> {
    let listener = TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
    announce_port(listener.local_addr()?.port());
    let mut r = Report::default();
    for _ in 0..accepts {
        let (mut s, _) = listener.accept().context("accepting")?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        r.received += drain(&mut s).context("reading the request")?;
        let mut pace = pace;
        pace.restart();
        write_paced(&mut s, b's', send, &pace).context("answering")?;
        r.sent += send as u64;
        r.local_ports.push(s.local_addr()?.port());
    }
    Ok(r)
}

pub fn client(
    to: SocketAddr,
    send: usize,
    io: Io,
    repeat: usize,
    rate: Option<f64>,
    until: Option<std::time::Instant>,
    pace: Pace,
) -> anyhow::Result<Report> {
    let mut r = Report::default();
    let start = std::time::Instant::now();
    for i in 0..repeat {
        if until.is_some_and(|u| std::time::Instant::now() >= u) {
            break;
        }
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
        let mut pace = pace;
        pace.restart();
        let (sent, received) = match io {
            Io::Plain => plain(s, send, &pace)?,
            Io::Uring => crate::uring::exchange(s, send, &pace)?,
            Io::Sendfile => crate::zerocopy::sendfile_exchange(s, send, &pace)?,
            Io::Splice => crate::zerocopy::splice_exchange(s, send, &pace)?,
        };
        r.sent += sent;
        r.received += received;
    }
    Ok(r)
}

fn plain(mut s: TcpStream, send: usize, pace: &Pace) -> anyhow::Result<(u64, u64)> {
    write_paced(&mut s, b'c', send, pace).context("sending")?;
    s.shutdown(Shutdown::Write)?;
    let received = drain(&mut s).context("reading the answer")?;
    Ok((send as u64, received))
}

/// Writes `len` bytes of `fill` in the pace's chunks, waiting between chunks.
pub fn write_paced(s: &mut TcpStream, fill: u8, len: usize, pace: &Pace) -> std::io::Result<()> {
    let chunk = vec![fill; pace.chunk().min(len.max(1))];
    let mut left = len;
    let mut step = 0;
    while left > 0 {
        let n = chunk.len().min(left);
        s.write_all(&chunk[..n])?;
        left -= n;
        step += 1;
        if left > 0 {
            pace.wait(step);
        }
    }
    Ok(())
}

/// Reads to EOF and counts, without keeping the bytes (a bulk transfer can be gigabytes).
pub fn drain(s: &mut TcpStream) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
