//! The Rust records in `events.rs` must match the C structs in `bpf/picosnitch.h`
//! byte for byte. This reads the struct layouts from the compiled object's BTF (with
//! bpftool) and compares every size and field offset.
use picosnitch_bpf::events::*;
use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use std::process::Command;

struct Layout {
    size: usize,
    members: HashMap<String, usize>,
}

fn btf_layouts() -> HashMap<String, Layout> {
    btf_layouts_of(picosnitch_bpf::BPF_OBJECT)
}

fn btf_layouts_of(object: &[u8]) -> HashMap<String, Layout> {
    let dir = tempfile::tempdir().expect("tempdir");
    let obj = dir.path().join("object.bpf.o");
    std::fs::write(&obj, object).expect("writing the object");
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(&obj)
        .args(["format", "raw"])
        .output()
        .expect("running bpftool (install it with: apt-get install -y bpftool)");
    assert!(out.status.success(), "bpftool failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf8");
    let mut layouts = HashMap::new();
    let mut current: Option<(String, Layout)> = None;
    for line in text.lines() {
        if line.starts_with('[') {
            if let Some((name, l)) = current.take() {
                layouts.insert(name, l);
            }
            // [12] STRUCT 'ps_flow_event' size=192 vlen=9
            let mut parts = line.split_whitespace();
            let _id = parts.next();
            if parts.next() != Some("STRUCT") {
                continue;
            }
            let name = parts.next().unwrap_or("").trim_matches('\'').to_string();
            let size = parts
                .find_map(|p| p.strip_prefix("size="))
                .and_then(|s| s.parse().ok())
                .expect("struct size");
            current = Some((name, Layout { size, members: HashMap::new() }));
        } else if let Some((_, l)) = current.as_mut() {
            // 'kind' type_id=3 bits_offset=0
            let line = line.trim();
            let name = line.split('\'').nth(1).unwrap_or("").to_string();
            if let Some(bits) = line.split_whitespace().find_map(|p| p.strip_prefix("bits_offset=")) {
                l.members.insert(name, bits.parse::<usize>().expect("offset") / 8);
            }
        }
    }
    if let Some((name, l)) = current.take() {
        layouts.insert(name, l);
    }
    layouts
}

macro_rules! check {
    ($layouts:expr, $c:literal, $rust:ty, [$($field:ident),* $(,)?]) => {{
        let l = $layouts.get($c).unwrap_or_else(|| panic!("struct {} not in the object's BTF", $c));
        assert_eq!(l.size, size_of::<$rust>(), "size of {}", $c);
        let mut expected = 0;
        $(
            expected += 1;
            assert_eq!(
                l.members.get(stringify!($field)).copied(),
                Some(offset_of!($rust, $field)),
                "offset of {}.{}", $c, stringify!($field)
            );
        )*
        assert_eq!(l.members.len(), expected, "{} has fields the Rust mirror lacks", $c);
    }};
}

#[test]
fn rust_records_match_the_object_btf() {
    if Command::new("bpftool").arg("version").output().is_err() {
        panic!("bpftool is not installed: run scripts/install-deps.sh");
    }
    // Also the stats names: one per enum ps_stat entry below PS_STAT_MAX.
    assert!(STAT_NAMES.len() as u32 <= STAT_MAX);
    let l = btf_layouts();
    check!(l, "ps_file_id", FileId, [ino, dev, _pad]);
    check!(l, "ps_task", Task, [tgid, pid, ppid, gppid, uid, netns, exe, pexe, gpexe, comm]);
    check!(l, "ps_flow_key", FlowKey, [cookie, tgid, rport, family, raddr]);
    check!(l, "ps_counters", Counters, [send_bytes, recv_bytes, send_packets, recv_packets]);
    check!(l, "ps_flow_value", FlowValue, [counters, flags, _pad]);
    check!(
        l,
        "ps_flow_event",
        FlowEvent,
        [kind, protocol, sock_type, ktime_ns, key, laddr, lport, direction, _pad, tcp_sent_base, tcp_recv_base, task, counters]
    );
    check!(l, "ps_close_event", CloseEvent, [kind, is_tcp, cookie, tcp_sent, tcp_recv]);
    // The exec record is a fixed header followed by a variable part the Rust side reads
    // as bytes: check the header's fields and where the data starts.
    let exec = l.get("ps_exec_event").expect("ps_exec_event in BTF");
    for (field, off) in [
        ("kind", offset_of!(ExecHeader, kind)),
        ("path_len", offset_of!(ExecHeader, path_len)),
        ("args_len", offset_of!(ExecHeader, args_len)),
        ("truncated", offset_of!(ExecHeader, truncated)),
        ("ktime_ns", offset_of!(ExecHeader, ktime_ns)),
        ("task", offset_of!(ExecHeader, task)),
        ("data", size_of::<ExecHeader>()),
    ] {
        assert_eq!(exec.members.get(field).copied(), Some(off), "offset of ps_exec_event.{field}");
    }
    assert_eq!(exec.size, size_of::<ExecHeader>() + PATH_LEN + ARGS_LEN, "size of ps_exec_event");
    assert_eq!(exec.members.len(), 7, "ps_exec_event has fields the Rust mirror lacks");
}

#[test]
fn name_record_matches_the_names_object_btf() {
    use picosnitch_bpf::names::NameEvent;
    if Command::new("bpftool").arg("version").output().is_err() {
        panic!("bpftool is not installed: run scripts/install-deps.sh");
    }
    let l = btf_layouts_of(picosnitch_bpf::names::NAMES_OBJECT);
    check!(l, "ps_name_event", NameEvent, [kind, netns, cookie, len, wire_len, data]);
}
