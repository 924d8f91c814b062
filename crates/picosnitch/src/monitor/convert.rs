//! Kernel records (the C structs' Rust mirror) to the messages the primary reads.
use picosnitch_bpf::events::{self, c_str, ExecEvent, FlowEvent, Task};
use picosnitch_ipc::events::{Direction, ExecInfo, FileId, FlowOpen, TaskInfo};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Converts the kernel's monotonic event times to unix time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// CLOCK_REALTIME - CLOCK_MONOTONIC, in nanoseconds.
    offset_ns: i64,
}

impl Clock {
    pub fn now() -> Clock {
        let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let real = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        let ns = |t: rustix::time::Timespec| t.tv_sec.saturating_mul(1_000_000_000).saturating_add(t.tv_nsec);
        Clock { offset_ns: ns(real) - ns(mono) }
    }

    pub fn unix_ns(&self, ktime_ns: u64) -> i64 {
        i64::try_from(ktime_ns).unwrap_or(i64::MAX).saturating_add(self.offset_ns)
    }
}

pub fn task(t: &Task) -> TaskInfo {
    let file = |f: &events::FileId| FileId { dev: f.dev, ino: f.ino };
    TaskInfo {
        tgid: t.tgid,
        pid: t.pid,
        ppid: t.ppid,
        gppid: t.gppid,
        uid: t.uid,
        netns: t.netns,
        exe: file(&t.exe),
        pexe: file(&t.pexe),
        gpexe: file(&t.gpexe),
        comm: c_str(&t.comm),
    }
}

/// An address in the kernel's network byte order layout; None for "no address".
fn addr(family: u16, bytes: &[u8; 16]) -> Option<IpAddr> {
    match i32::from(family) {
        libc::AF_INET => {
            let a = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            (!a.is_unspecified()).then_some(IpAddr::V4(a))
        }
        libc::AF_INET6 => {
            let a = Ipv6Addr::from(*bytes);
            if a.is_unspecified() {
                None
            } else {
                // An IPv4 peer of a dual-stack socket: show it as the IPv4 address it is.
                Some(a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4))
            }
        }
        _ => None,
    }
}

/// The announcement of a flow, without its id (the flow table assigns it).
pub fn flow_open(ev: &FlowEvent, clock: &Clock) -> FlowOpen {
    FlowOpen {
        flow: 0,
        unix_ns: clock.unix_ns(ev.ktime_ns),
        task: task(&ev.task),
        family: ev.key.family,
        protocol: ev.protocol,
        sock_type: ev.sock_type,
        laddr: addr(ev.key.family, &ev.laddr),
        lport: ev.lport,
        raddr: addr(ev.key.family, &ev.key.raddr),
        rport: ev.key.rport,
        direction: if ev.direction == events::DIR_IN { Direction::In } else { Direction::Out },
        cookie: ev.key.cookie,
    }
}

pub fn exec(ev: &ExecEvent) -> ExecInfo {
    ExecInfo {
        task: task(&ev.header.task),
        path: ev.path(),
        argv: ev.argv(),
        path_truncated: ev.header.truncated & 1 != 0,
        argv_truncated: ev.header.truncated & 2 != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_kernel_layout() {
        let mut b = [0u8; 16];
        assert_eq!(addr(2, &b), None);
        b[..4].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(addr(2, &b), Some("127.0.0.1".parse().expect("ip")));
        let v6: Ipv6Addr = "::ffff:10.1.2.3".parse().expect("ip");
        assert_eq!(addr(10, &v6.octets()), Some("10.1.2.3".parse().expect("ip")));
        let v6: Ipv6Addr = "fd00::1".parse().expect("ip");
        assert_eq!(addr(10, &v6.octets()), Some("fd00::1".parse().expect("ip")));
        assert_eq!(addr(17, &v6.octets()), None, "AF_PACKET has no IP address");
    }

    #[test]
    fn clock_maps_monotonic_to_unix() {
        let c = Clock::now();
        let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let t = c.unix_ns(u64::try_from(mono.tv_sec * 1_000_000_000 + mono.tv_nsec).expect("positive"));
        let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_nanos() as i64;
        assert!((t - real).abs() < 1_000_000_000, "{t} vs {real}");
    }
}
