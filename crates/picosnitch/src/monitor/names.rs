//! The name capture beside the flow capture: its own BPF object and ring buffer, whose
//! records (DNS answers, TLS ClientHellos) travel to the primary as bytes, unparsed:
//! the monitor reads kernel records about any process but parses no packet.
use picosnitch_bpf::names::{NameCapture, NameRecord, NameSource};
use picosnitch_ipc::events::{KernelEvent, NamePacket, NamePacketKind};
use std::collections::BTreeMap;
use std::path::Path;

/// The name capture's ring buffer: drained every 100 ms, so at 2 KiB per record this
/// holds about 5,000 answers a second before any is lost (and counted).
pub const RING_BYTES: u32 = 1 << 20;

pub struct Names {
    cap: NameCapture,
    pub records_read: u64,
    pub records_undecodable: u64,
}

impl Names {
    /// Attaches the name capture, or says why it could not (capture goes on without
    /// domains then: a missing name is not worth losing the flows).
    pub fn load(cgroup: &Path) -> Option<Names> {
        match NameCapture::load(cgroup, RING_BYTES) {
            Ok(cap) => Some(Names { cap, records_read: 0, records_undecodable: 0 }),
            Err(e) => {
                tracing::error!(error = %e, "the name capture could not be attached: connections are recorded without their domains");
                None
            }
        }
    }

    /// Moves every waiting record into `out`.
    pub fn drain(&mut self, out: &mut Vec<KernelEvent>) {
        while let Some(item) = self.cap.ring.next() {
            self.records_read += 1;
            match NameRecord::decode(&item) {
                Ok(r) => out.push(KernelEvent::NamePacket(Box::new(NamePacket {
                    kind: match r.source {
                        NameSource::DnsUdp => NamePacketKind::DnsUdp,
                        NameSource::DnsTcp => NamePacketKind::DnsTcp,
                        NameSource::TlsHello => NamePacketKind::TlsHello,
                    },
                    netns: r.netns,
                    cookie: r.cookie,
                    wire_len: r.wire_len,
                    data: r.data,
                }))),
                Err(e) => {
                    self.records_undecodable += 1;
                    tracing::warn!(error = %e, "dropping an undecodable name capture record");
                }
            }
        }
    }

    /// The kernel side's counters, by name, for `picosnitch status`.
    pub fn counters(&self, into: &mut BTreeMap<String, u64>) -> Result<(), picosnitch_bpf::MapError> {
        for (name, v) in self.cap.counters()? {
            into.insert(name.to_string(), v);
        }
        Ok(())
    }
}
