//! Bytes that never pass through a userspace buffer: sendfile from a file to a socket,
//! and splice between a pipe and a socket in both directions.
use crate::pace::Pace;
use anyhow::Context;
use std::io::{Read, Seek, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;

pub fn sendfile_exchange(mut s: TcpStream, send: usize, pace: &Pace) -> anyhow::Result<(u64, u64)> {
    let path = std::env::temp_dir().join(format!("picosnitch-traffic-{}.bin", std::process::id()));
    let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
    let _ = std::fs::remove_file(&path);
    f.write_all(&vec![b'f'; send])?;
    f.rewind()?;
    let mut left = send;
    let mut step = 0;
    while left > 0 {
        let mut want = pace.chunk().min(left);
        while want > 0 {
            // SAFETY: both fds are open; a null offset uses and advances the file position.
            let n = unsafe { libc::sendfile(s.as_raw_fd(), f.as_raw_fd(), std::ptr::null_mut(), want) };
            if n <= 0 {
                return Err(std::io::Error::last_os_error()).context("sendfile");
            }
            want -= n as usize;
            left -= n as usize;
        }
        step += 1;
        if left > 0 {
            pace.wait(step);
        }
    }
    s.shutdown(Shutdown::Write)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).context("reading the answer")?;
    Ok((send as u64, buf.len() as u64))
}

fn pipe() -> anyhow::Result<(std::fs::File, std::fs::File)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: both fds were just created and are owned here.
    Ok(unsafe { (<std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]), <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[1])) })
}

fn splice(from: i32, to: i32, len: usize) -> anyhow::Result<usize> {
    // SAFETY: both fds are open; null offsets use the descriptors' own positions.
    let n = unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, libc::SPLICE_F_MOVE) };
    if n < 0 {
        return Err(std::io::Error::last_os_error()).context("splice");
    }
    Ok(n as usize)
}

pub fn splice_exchange(s: TcpStream, send: usize, pace: &Pace) -> anyhow::Result<(u64, u64)> {
    let (mut rd, mut wr) = pipe()?;
    // A pipe holds 64 KiB by default: pieces bigger than this would block the write below.
    let piece = vec![b'p'; 16 * 1024];
    let mut left = send;
    let mut step = 0;
    while left > 0 {
        let mut want = pace.chunk().min(left);
        while want > 0 {
            let n = piece.len().min(want);
            wr.write_all(&piece[..n])?;
            let mut moved = 0;
            while moved < n {
                moved += splice(rd.as_raw_fd(), s.as_raw_fd(), n - moved)?;
            }
            want -= n;
            left -= n;
        }
        step += 1;
        if left > 0 {
            pace.wait(step);
        }
    }
    s.shutdown(Shutdown::Write)?;
    // The answer travels socket -> pipe without passing through recvmsg.
    let mut received = 0u64;
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        let n = splice(s.as_raw_fd(), wr.as_raw_fd(), 64 * 1024)?;
        if n == 0 {
            break;
        }
        let mut drained = 0;
        while drained < n {
            let want = (n - drained).min(sink.len());
            drained += rd.read(&mut sink[..want])?;
        }
        received += n as u64;
    }
    Ok((send as u64, received))
}
