//! The monitor's view of live flows, kept apart from the kernel so it can be tested with
//! plain values. Kernel records only mark flows as changed; [`FlowTable::drain_changes`]
//! turns the differences since the last drain into events for the primary. A new
//! primary (after a restart) is brought up to date by announcing every live flow again.
use picosnitch_bpf::events::{Counters, FlowKey};
use picosnitch_ipc::events::{FlowOpen, KernelEvent};
use rustc_hash::FxHashMap as HashMap;
use std::time::{Duration, Instant};

pub struct Flow {
    /// None for a flow the kernel could not track (its map was full): it carries its
    /// bytes in its announcement and ends at once.
    pub key: Option<FlowKey>,
    pub open: FlowOpen,
    announced: bool,
    /// What the primary has been told, cumulative since the flow was first seen.
    told: Counters,
    /// The latest reading of the kernel's counters.
    now: Counters,
    closed: bool,
    dirty: bool,
    pub last_change: Instant,
    /// The TCP socket's application totals (sent, received) just before this flow's
    /// first counted byte (see the release-time fallback).
    pub tcp_base: (u64, u64),
}

#[derive(Default)]
pub struct FlowTable {
    next_id: u64,
    by_key: HashMap<FlowKey, u64>,
    flows: HashMap<u64, Flow>,
    by_cookie: HashMap<u64, Vec<u64>>,
    dirty: Vec<u64>,
}

/// A released TCP socket's own totals of what the application queued and consumed,
/// by any path (see `struct ps_close_event` in bpf/picosnitch.h).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TcpFinal {
    pub sent: u64,
    pub received: u64,
}

impl FlowTable {
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    fn mark(&mut self, id: u64) {
        if let Some(f) = self.flows.get_mut(&id) {
            if !f.dirty {
                f.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    /// A flow announced by the kernel. Returns its id, or None when the key is already
    /// live (the kernel may announce a flow twice when two CPUs race).
    pub fn open(&mut self, key: FlowKey, mut open: FlowOpen, tcp_base: (u64, u64), now: Instant) -> Option<u64> {
        if let Some(id) = self.by_key.get(&key) {
            if self.flows.get(id).is_some_and(|f| !f.closed) {
                return None;
            }
        }
        self.next_id += 1;
        let id = self.next_id;
        open.flow = id;
        self.by_key.insert(key, id);
        self.by_cookie.entry(key.cookie).or_default().push(id);
        let flow = Flow {
            key: Some(key),
            open,
            announced: false,
            told: Counters::default(),
            now: Counters::default(),
            closed: false,
            dirty: false,
            last_change: now,
            tcp_base,
        };
        self.flows.insert(id, flow);
        self.mark(id);
        Some(id)
    }

    /// A flow the kernel could not track: announced with its bytes and ended at once.
    pub fn untracked(&mut self, mut open: FlowOpen, counters: Counters, now: Instant) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        open.flow = id;
        let flow = Flow {
            key: None,
            open,
            announced: false,
            told: Counters::default(),
            now: counters,
            closed: true,
            dirty: false,
            last_change: now,
            tcp_base: (0, 0),
        };
        self.flows.insert(id, flow);
        self.mark(id);
        id
    }

    /// Live (not yet closed) flows with kernel keys, for reading their counters.
    pub fn live(&self) -> Vec<(u64, FlowKey)> {
        self.flows.iter().filter(|(_, f)| !f.closed).filter_map(|(id, f)| f.key.map(|k| (*id, k))).collect()
    }

    pub fn get(&self, id: u64) -> Option<&Flow> {
        self.flows.get(&id)
    }

    /// Records a reading of the kernel's counters for a flow.
    pub fn update(&mut self, id: u64, counters: Counters, now: Instant) {
        let changed = match self.flows.get_mut(&id) {
            Some(f) if f.now != counters => {
                f.now = counters;
                f.last_change = now;
                true
            }
            _ => false,
        };
        if changed {
            self.mark(id);
        }
    }

    /// The live flows of a socket that just ended.
    pub fn flows_of_cookie(&self, cookie: u64) -> Vec<(u64, FlowKey)> {
        let Some(ids) = self.by_cookie.get(&cookie) else { return Vec::new() };
        ids.iter()
            .filter_map(|id| self.flows.get(id).filter(|f| !f.closed).and_then(|f| f.key.map(|k| (*id, k))))
            .collect()
    }

    /// Ends the flows of a socket, after their final readings were recorded. For TCP,
    /// what the socket's own totals show beyond what the send/recv hooks counted (a
    /// splice out of the socket reads through tcp_splice_read, not sock_recvmsg) is
    /// added to the socket's first flow.
    pub fn close_cookie(&mut self, cookie: u64, tcp: Option<TcpFinal>) {
        let ids: Vec<u64> = self.flows_of_cookie(cookie).into_iter().map(|(id, _)| id).collect();
        if let (Some(t), Some(first)) = (tcp, ids.iter().min().copied()) {
            let (mut sent, mut received) = (0u64, 0u64);
            let (mut base_acked, mut base_received) = (u64::MAX, u64::MAX);
            for id in &ids {
                if let Some(f) = self.flows.get(id) {
                    sent += f.now.send_bytes;
                    received += f.now.recv_bytes;
                    base_acked = base_acked.min(f.tcp_base.0);
                    base_received = base_received.min(f.tcp_base.1);
                }
            }
            let extra_send = t.sent.saturating_sub(base_acked).saturating_sub(sent);
            let extra_recv = t.received.saturating_sub(base_received).saturating_sub(received);
            if let Some(f) = self.flows.get_mut(&first) {
                f.now.send_bytes += extra_send;
                f.now.recv_bytes += extra_recv;
            }
        }
        for id in ids {
            self.close(id);
        }
    }

    /// Ends one flow (its socket is gone, or its process is).
    pub fn close(&mut self, id: u64) {
        if let Some(f) = self.flows.get_mut(&id) {
            f.closed = true;
        }
        self.mark(id);
    }

    /// Flows to end without a close record: their process is gone and nothing moved for
    /// `quiet` (sockets with no close hook, such as AF_PACKET), or nothing moved at all
    /// for `idle` on a connectionless socket (peers of unconnected UDP accumulate).
    pub fn to_reap(&self, now: Instant, quiet: Duration, idle: Duration, alive: impl Fn(u32) -> bool) -> Vec<u64> {
        self.flows
            .iter()
            .filter(|(_, f)| !f.closed)
            .filter(|(_, f)| {
                let still = now.saturating_duration_since(f.last_change);
                let connectionless = f.open.sock_type != libc::SOCK_STREAM as u16;
                (still >= quiet && !alive(f.open.task.tgid)) || (connectionless && still >= idle)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// A new primary knows none of the live flows: announce them all again. Bytes it
    /// was already told are not repeated.
    pub fn reannounce_all(&mut self) {
        let ids: Vec<u64> = self.flows.keys().copied().collect();
        for id in ids {
            if let Some(f) = self.flows.get_mut(&id) {
                f.announced = false;
            }
            self.mark(id);
        }
    }

    /// Events for everything that changed since the last drain: announcements, byte
    /// deltas, closes. Closed flows leave the table.
    pub fn drain_changes(&mut self, out: &mut Vec<KernelEvent>) {
        for id in std::mem::take(&mut self.dirty) {
            let Some(f) = self.flows.get_mut(&id) else { continue };
            f.dirty = false;
            if !f.announced {
                f.announced = true;
                out.push(KernelEvent::FlowOpen(Box::new(f.open.clone())));
            }
            let send = f.now.send_bytes.saturating_sub(f.told.send_bytes);
            let recv = f.now.recv_bytes.saturating_sub(f.told.recv_bytes);
            let send_packets = f.now.send_packets.saturating_sub(f.told.send_packets);
            let recv_packets = f.now.recv_packets.saturating_sub(f.told.recv_packets);
            if send > 0 || recv > 0 || send_packets > 0 || recv_packets > 0 {
                out.push(KernelEvent::FlowBytes { flow: id, send, recv, send_packets, recv_packets });
                f.told = f.now;
            }
            if f.closed {
                out.push(KernelEvent::FlowClose { flow: id });
                let key = f.key;
                self.flows.remove(&id);
                if let Some(key) = key {
                    if self.by_key.get(&key) == Some(&id) {
                        self.by_key.remove(&key);
                    }
                    if let Some(ids) = self.by_cookie.get_mut(&key.cookie) {
                        ids.retain(|x| *x != id);
                        if ids.is_empty() {
                            self.by_cookie.remove(&key.cookie);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picosnitch_ipc::events::{Direction, TaskInfo};

    fn key(cookie: u64, tgid: u32) -> FlowKey {
        FlowKey { cookie, tgid, rport: 443, family: 2, raddr: [0; 16] }
    }

    fn open(tgid: u32, sock_type: u16) -> FlowOpen {
        FlowOpen {
            flow: 0,
            unix_ns: 0,
            task: TaskInfo { tgid, ..Default::default() },
            family: 2,
            protocol: 6,
            sock_type,
            laddr: None,
            lport: 0,
            raddr: None,
            rport: 443,
            direction: Direction::Out,
            cookie: 0,
        }
    }

    fn counters(send: u64, recv: u64) -> Counters {
        Counters { send_bytes: send, recv_bytes: recv, send_packets: 1, recv_packets: 1 }
    }

    fn drain(t: &mut FlowTable) -> Vec<KernelEvent> {
        let mut v = Vec::new();
        t.drain_changes(&mut v);
        v
    }

    #[test]
    fn open_bytes_close_in_order_with_deltas() {
        let mut t = FlowTable::default();
        let now = Instant::now();
        let id = t.open(key(1, 10), open(10, 1), (0, 0), now).expect("new");
        assert!(t.open(key(1, 10), open(10, 1), (0, 0), now).is_none(), "a second announcement is ignored");
        t.update(id, counters(100, 5), now);
        let ev = drain(&mut t);
        assert!(matches!(&ev[0], KernelEvent::FlowOpen(o) if o.flow == id));
        assert!(matches!(ev[1], KernelEvent::FlowBytes { send: 100, recv: 5, .. }));
        t.update(id, counters(150, 5), now);
        t.close_cookie(1, None);
        let ev = drain(&mut t);
        assert_eq!(ev.len(), 2);
        assert!(matches!(ev[0], KernelEvent::FlowBytes { send: 50, recv: 0, .. }));
        assert!(matches!(ev[1], KernelEvent::FlowClose { flow } if flow == id));
        assert!(t.is_empty());
        assert!(drain(&mut t).is_empty());
    }

    #[test]
    fn tcp_goodput_beyond_the_hooks_is_added_at_close() {
        let mut t = FlowTable::default();
        let now = Instant::now();
        // The socket had moved 1000/2000 bytes before we first saw it.
        let id = t.open(key(7, 10), open(10, 1), (1000, 2000), now).expect("new");
        t.update(id, counters(300, 400), now);
        drain(&mut t);
        // At close the kernel's counters say 300 more were received (a splice).
        t.close_cookie(7, Some(TcpFinal { sent: 1300, received: 2700 }));
        let ev = drain(&mut t);
        assert!(matches!(ev[0], KernelEvent::FlowBytes { send: 0, recv: 300, .. }), "{ev:?}");
    }

    #[test]
    fn a_new_primary_hears_of_live_flows_again_without_repeated_bytes() {
        let mut t = FlowTable::default();
        let now = Instant::now();
        let id = t.open(key(1, 10), open(10, 1), (0, 0), now).expect("new");
        t.update(id, counters(10, 10), now);
        drain(&mut t);
        t.reannounce_all();
        let ev = drain(&mut t);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(matches!(&ev[0], KernelEvent::FlowOpen(o) if o.flow == id));
    }

    #[test]
    fn reaping_dead_processes_and_idle_datagram_flows() {
        let mut t = FlowTable::default();
        let start = Instant::now();
        let tcp = t.open(key(1, 10), open(10, libc::SOCK_STREAM as u16), (0, 0), start).expect("tcp");
        let udp = t.open(key(2, 11), open(11, libc::SOCK_DGRAM as u16), (0, 0), start).expect("udp");
        let later = start + Duration::from_secs(10);
        let quiet = Duration::from_secs(2);
        let idle = Duration::from_secs(300);
        assert!(t.to_reap(later, quiet, idle, |_| true).is_empty());
        assert_eq!(t.to_reap(later, quiet, idle, |pid| pid != 10), vec![tcp]);
        let much_later = start + Duration::from_secs(400);
        assert_eq!(t.to_reap(much_later, quiet, idle, |_| true), vec![udp], "idle TCP stays, idle UDP goes");
    }

    #[test]
    fn untracked_flows_carry_their_bytes_and_end() {
        let mut t = FlowTable::default();
        t.untracked(open(5, 2), counters(42, 0), Instant::now());
        let ev = drain(&mut t);
        assert_eq!(ev.len(), 3);
        assert!(matches!(ev[1], KernelEvent::FlowBytes { send: 42, .. }));
        assert!(t.is_empty());
    }
}
