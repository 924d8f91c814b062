//! Ethernet frames through an AF_PACKET socket, attributed to the sender.
use crate::pace::Pace;
use crate::report::Report;
use anyhow::Context;
use std::ffi::CString;

/// IEEE 802 "local experimental" ethertype: nothing on the machine will react to it.
const ETHERTYPE: u16 = 0x88b5;

pub fn send(ifname: &str, count: usize, size: usize, pace: Pace) -> anyhow::Result<Report> {
    let name = CString::new(ifname).context("interface name")?;
    // SAFETY: if_nametoindex reads a NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        anyhow::bail!("no interface named {ifname}");
    }
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(ETHERTYPE.to_be())) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("opening an AF_PACKET socket (needs CAP_NET_RAW)");
    }
    // SAFETY: fd was just returned by socket(2) and is owned here.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut frame = vec![0u8; 14 + size];
    frame[..6].copy_from_slice(&[0xff; 6]);
    frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    frame[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    // SAFETY: sockaddr_ll is plain data.
    let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = ETHERTYPE.to_be();
    ll.sll_ifindex = ifindex as i32;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    let mut r = Report::default();
    for i in 0..count {
        pace.wait(i);
        // SAFETY: frame and ll are alive and sized as passed.
        let n = unsafe {
            libc::sendto(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&ll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("sending a frame");
        }
        r.sent += n as u64;
        r.sent_packets += 1;
    }
    Ok(r)
}
