//! The live feed as the primary sees it: every flow opening, moving bytes and closing,
//! published to the subscribers of the socket the supervisor bound (see
//! `picosnitch-feed`'s FORMAT.md). Publishing never waits; with nobody listening no
//! update is even built.
use super::identity::Sha;
use super::periods::FlowRow;
use picosnitch_feed::{Direction, FeedHub, FeedStats, FlowUpdate, UpdateKind, FORMAT_VERSION};
use picosnitch_ipc::events::{self, TaskInfo};
use std::net::IpAddr;

/// What the feed adds to a flow's row: its number on the feed, the processes behind
/// it, and its running totals.
#[derive(Debug, Clone)]
pub struct FeedFlow {
    id: u64,
    pids: [u32; 3],
    direction: Option<Direction>,
    send_total: u64,
    recv_total: u64,
}

pub struct Feed {
    hub: Option<FeedHub>,
    /// Feed flow numbers are the primary's own: a restarted monitor numbers its flows
    /// afresh, and readers must not mistake a new flow for an old one.
    next_id: u64,
}

impl Feed {
    pub fn new(hub: Option<FeedHub>) -> Feed {
        Feed { hub, next_id: 0 }
    }

    pub fn stats(&self) -> FeedStats {
        self.hub.as_ref().map(FeedHub::stats).unwrap_or_default()
    }

    /// Numbers a new flow and announces it.
    pub fn open(&mut self, row: &FlowRow, task: &TaskInfo, direction: events::Direction, unix_ns: i64) -> FeedFlow {
        self.next_id += 1;
        let direction = match direction {
            events::Direction::Out => Direction::Out,
            events::Direction::In => Direction::In,
        };
        let flow = FeedFlow {
            id: self.next_id,
            pids: [task.tgid, task.ppid, task.gppid],
            direction: Some(direction),
            send_total: 0,
            recv_total: 0,
        };
        self.publish(UpdateKind::Open, row, &flow, 0, 0, unix_ns as f64 / 1e9);
        flow
    }

    /// Bytes moved on a known flow.
    pub fn bytes(&self, row: &FlowRow, flow: &mut FeedFlow, send: u64, recv: u64) {
        flow.send_total += send;
        flow.recv_total += recv;
        self.publish(UpdateKind::Bytes, row, flow, send, recv, now());
    }

    pub fn close(&self, row: &FlowRow, flow: &FeedFlow) {
        self.publish(UpdateKind::Close, row, flow, 0, 0, now());
    }

    /// A program started (with `[monitoring] every_exe`).
    pub fn exec(&self, row: &FlowRow, task: &TaskInfo) {
        let flow = FeedFlow { id: 0, pids: [task.tgid, task.ppid, task.gppid], direction: None, send_total: 0, recv_total: 0 };
        self.publish(UpdateKind::Exec, row, &flow, 0, 0, now());
    }

    fn publish(&self, kind: UpdateKind, row: &FlowRow, flow: &FeedFlow, send: u64, recv: u64, time: f64) {
        let Some(hub) = self.hub.as_ref().filter(|h| h.has_subscribers()) else { return };
        hub.publish(&update(kind, row, flow, send, recv, time));
    }
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn addr(a: Option<IpAddr>) -> String {
    a.map(|a| a.to_string()).unwrap_or_default()
}

fn update(kind: UpdateKind, row: &FlowRow, flow: &FeedFlow, send: u64, recv: u64, time: f64) -> FlowUpdate {
    let [exe, pexe, gpexe] = [0, 1, 2].map(|i| {
        let e = row.exes[i].borrow();
        let sha = match &e.sha256 {
            Sha::Known(s) => s.clone(),
            Sha::Pending => String::new(),
        };
        (e.exe.clone(), e.cmdline.clone(), sha)
    });
    FlowUpdate {
        v: FORMAT_VERSION,
        kind,
        flow: flow.id,
        time,
        pid: flow.pids[0],
        ppid: flow.pids[1],
        gppid: flow.pids[2],
        uid: row.uid,
        exe: exe.0,
        name: row.names[0].to_string(),
        cmdline: exe.1,
        sha256: exe.2,
        pexe: pexe.0,
        pname: row.names[1].to_string(),
        pcmdline: pexe.1,
        psha256: pexe.2,
        gpexe: gpexe.0,
        gpname: row.names[2].to_string(),
        gpcmdline: gpexe.1,
        gpsha256: gpexe.2,
        family: row.family,
        protocol: row.protocol,
        laddr: addr(row.laddr),
        lport: row.lport,
        raddr: addr(row.raddr),
        rport: row.rport,
        domain: row.domain.to_string(),
        netns: u64::from(row.netns),
        direction: flow.direction,
        send,
        recv,
        send_total: flow.send_total,
        recv_total: flow.recv_total,
    }
}
