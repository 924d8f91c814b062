//! TCP through io_uring: IORING_OP_SEND and IORING_OP_RECV instead of write/read.
use crate::pace::Pace;
use anyhow::Context;
use io_uring::{opcode, types, IoUring};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;

fn run_one(ring: &mut IoUring, entry: io_uring::squeue::Entry) -> anyhow::Result<i32> {
    // SAFETY: the buffers the entry points to are alive until its completion, which is
    // awaited right here before returning.
    unsafe { ring.submission().push(&entry).map_err(|_| anyhow::anyhow!("io_uring submission queue full"))? };
    ring.submit_and_wait(1).context("io_uring_enter")?;
    let cqe = ring.completion().next().context("io_uring completion missing")?;
    if cqe.result() < 0 {
        return Err(std::io::Error::from_raw_os_error(-cqe.result())).context("io_uring operation");
    }
    Ok(cqe.result())
}

pub fn exchange(s: TcpStream, send: usize, pace: &Pace) -> anyhow::Result<(u64, u64)> {
    let mut ring = IoUring::new(8).context("creating an io_uring (kernel >= 5.6, not disabled by io_uring_disabled)")?;
    let fd = types::Fd(s.as_raw_fd());
    let data = vec![b'i'; pace.chunk().min(send.max(1))];
    let mut left = send;
    let mut step = 0;
    while left > 0 {
        // One chunk per paced step; a short send finishes its chunk before the wait.
        let want = data.len().min(left);
        let mut off = 0;
        while off < want {
            let n = run_one(&mut ring, opcode::Send::new(fd, data[off..].as_ptr(), (want - off) as u32).build())?;
            off += n as usize;
        }
        left -= want;
        step += 1;
        if left > 0 {
            pace.wait(step);
        }
    }
    s.shutdown(Shutdown::Write)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0u64;
    loop {
        let n = run_one(&mut ring, opcode::Recv::new(fd, buf.as_mut_ptr(), buf.len() as u32).build())?;
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    Ok((send as u64, received))
}
