//! Desktop notifications end to end: the real daemon's notify role, as a desktop user
//! (a system account the test creates), sends to a real dbus-daemon session bus at
//! /run/user/UID/bus, where a real org.freedesktop.Notifications server records exactly
//! what arrived and from which uid.
mod common;

use common::session_bus::{dbus_or_skip, ensure_account, SessionBus};
use common::*;
use std::time::{Duration, Instant};

/// The desktop user of these tests: an account (dbus-daemon needs one), not the
/// service user.
const DESKTOP_UID: u32 = 61339;
const DESKTOP_USER: &str = "picosnitch-desktop-test";
/// New executables run at once by the storm test, three times its burst.
const STORM: usize = 60;

fn udp_once(t: &Traffic) {
    t.run(&["udp-client", "--to", "127.0.0.1:9", "--count", "1", "--size", "8"]);
}

#[test]
fn notifications_reach_the_desktop_users_session_bus_deduplicated_and_rate_limited() {
    let test = "notifications_reach_the_desktop_users_session_bus_deduplicated_and_rate_limited";
    if !root_or_skip(test) || !dbus_or_skip(test) {
        return;
    }
    let gid = ensure_account(DESKTOP_USER, DESKTOP_UID);
    let bus = SessionBus::start(DESKTOP_UID, gid);
    let burst = 20;
    let interval = 5;
    let d = Daemon::start(&format!(
        "[desktop]\nuser = \"{DESKTOP_USER}\"\nnotification_burst = {burst}\nnotification_interval_seconds = {interval}\n"
    ));
    d.wait_status("the notify role to report", Duration::from_secs(20), |s| s["notify"]["bus"].is_string());
    assert_eq!(d.status()["notify"]["bus"], format!("unix:path=/run/user/{DESKTOP_UID}/bus"));

    // A new executable on the network: one notification, worded as picosnitch 2.x's,
    // sent by the desktop user (never root) with the path in the body.
    let first = Traffic::new("ntf-first");
    udp_once(&first);
    let a = bus.wait_for("First network connection detected for ntf-first", Duration::from_secs(30));
    assert_eq!((a.app.as_str(), a.summary.as_str()), ("picosnitch", "picosnitch"));
    assert!(a.body.contains(&first.path.display().to_string()), "{a:?}");
    assert_eq!(a.sender_uid, DESKTOP_UID, "sent as the desktop user: {a:?}");
    assert_eq!(a.category, "picosnitch.first_seen");
    assert_eq!(a.expire_timeout, 2000, "shown for 2 s, as picosnitch 2.x");

    // The same executable again: nothing new.
    udp_once(&first);

    // A storm of new executables whose names differ only in their numbers (hard
    // links of one binary: each path is an executable of its own): the first burst is
    // shown, the rest held back and summed up once the bucket refills. Other traffic
    // on the machine may take tokens too, so the bounds allow for it.
    let dir = first.path.parent().expect("traffic dir").to_path_buf();
    let storm: Vec<std::path::PathBuf> = (1..=STORM)
        .map(|i| {
            let p = dir.join(format!("ntf-storm-{i:02}"));
            std::fs::hard_link(&first.path, &p).expect("hard link");
            p
        })
        .collect();
    let started = Instant::now();
    for p in &storm {
        let out = std::process::Command::new(p).args(["udp-client", "--to", "127.0.0.1:9", "--count", "1", "--size", "8"]).output().expect("run");
        assert!(out.status.success());
    }
    let storm_arrived = |bus: &SessionBus| -> Vec<common::session_bus::Arrived> {
        bus.arrived().into_iter().filter(|a| a.body.contains("ntf-storm-")).collect()
    };
    // The summary: the last one held, with the count of the others.
    let summary = bus.wait_for("more notifications of this kind held back", Duration::from_secs(30));
    let elapsed = started.elapsed().as_secs() as usize;
    let got = storm_arrived(&bus);
    // (Whose it is depends on what else ran meanwhile: the bucket is per kind.)
    assert_eq!(summary.category, "picosnitch.first_seen", "{summary:?}");
    let allowed = (burst - 1) + elapsed / interval + 1;
    assert!(got.len() <= allowed, "{} notifications in {elapsed} s, the limit allows {allowed}: {got:#?}", got.len());
    assert!(!got.is_empty() && got.len() < STORM, "some shown, some held back: {got:#?}");
    for a in &got {
        assert!(
            a.body.starts_with("First network connection detected for ntf-storm-01") || a.body.starts_with("New executable detected for ntf-storm-"),
            "the same name with other digits is a known name: {a:?}"
        );
        assert_eq!(a.sender_uid, DESKTOP_UID);
    }
    let mut shown: Vec<&str> = got.iter().map(|a| a.body.lines().next().unwrap_or_default()).collect();
    shown.sort_unstable();
    let before = shown.len();
    shown.dedup();
    assert_eq!(shown.len(), before, "no executable announced twice: {got:#?}");

    // Nothing about ntf-first came twice.
    let firsts = bus.arrived().into_iter().filter(|a| a.body.contains("ntf-first")).count();
    assert_eq!(firsts, 1, "{:#?}", bus.arrived());

    // An error the supervisor sees (a role killed) reaches the desktop too.
    let hasher = d.role_pid("hasher");
    // SAFETY: kill with a pid the daemon reported for its own role.
    unsafe { libc::kill(hasher as i32, libc::SIGKILL) };
    let e = bus.wait_for("the hasher role killed by signal 9", Duration::from_secs(30));
    assert_eq!(e.category, "picosnitch.error");
    assert_eq!(e.urgency, 2, "critical");
    assert_eq!(e.sender_uid, DESKTOP_UID);

    let st = d.wait_status("the notify role's counters", Duration::from_secs(10), |s| {
        s["notify"]["sent"].as_u64() == Some(bus.arrived().len() as u64)
    });
    assert_eq!(st["notify"]["failed"], 0, "{st:#}");
    let held = st["notify"]["rate_limited"].as_u64().unwrap_or(0) as usize;
    assert!(held + got.len() >= STORM, "every storm executable shown or counted as held back: {st:#}");
    assert_eq!(st["primary"]["notices_dropped"], 0, "{st:#}");
}

#[test]
fn without_a_session_bus_failures_are_counted_and_the_daemon_runs_on() {
    let test = "without_a_session_bus_failures_are_counted_and_the_daemon_runs_on";
    if !root_or_skip(test) {
        return;
    }
    // No bus at /run/user/61340/bus (a bare uid, no session): the role keeps running
    // and counts what it could not deliver.
    let d = Daemon::start("[desktop]\nuser = \"61340\"\n");
    let t = Traffic::new("ntf-nobus");
    udp_once(&t);
    let st = d.wait_status("a failed notification", Duration::from_secs(30), |s| s["notify"]["failed"].as_u64().unwrap_or(0) >= 1);
    assert!(st["notify"]["last_error"].is_string(), "{st:#}");
    let notify = st["roles"].as_array().and_then(|r| r.iter().find(|r| r["role"] == "notify").cloned()).expect("notify role listed");
    assert_eq!(notify["restarts"], 0, "{st:#}");
}

/// Changes one byte of the binary's `.comment` section (not loaded, so it still runs),
/// in place: same path, inode and size, and the mtime put back, so that only a
/// watch on the file, not its metadata, can tell it changed.
fn rewrite_in_place(path: &std::path::Path) {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::metadata(path).expect("stat");
    let bytes = std::fs::read(path).expect("read");
    let at = bytes.windows(6).position(|w| w == b"GCC: (").expect("a .comment section (GCC: ...) in the binary") + 5;
    let mut f = std::fs::OpenOptions::new().write(true).open(path).expect("open for writing in place");
    f.seek(SeekFrom::Start(at as u64)).expect("seek");
    f.write_all(b"[").expect("write");
    f.set_times(std::fs::FileTimes::new().set_modified(before.modified().expect("mtime")).set_accessed(before.accessed().expect("atime")))
        .expect("putting the mtime back");
    drop(f);
    let after = std::fs::metadata(path).expect("stat");
    assert_eq!((after.ino(), after.size(), after.mtime(), after.mtime_nsec()), (before.ino(), before.size(), before.mtime(), before.mtime_nsec()));
}

#[test]
fn a_binary_rewritten_in_place_is_hashed_again_and_notified() {
    let test = "a_binary_rewritten_in_place_is_hashed_again_and_notified";
    if !root_or_skip(test) || !dbus_or_skip(test) {
        return;
    }
    // Its own desktop user and bus: tests run in parallel.
    let uid = 61341;
    let gid = ensure_account("picosnitch-desktop-test2", uid);
    let bus = SessionBus::start(uid, gid);
    let d = Daemon::start("[desktop]\nuser = \"picosnitch-desktop-test2\"\nnotification_burst = 50\n");
    let t = Traffic::new("ntf-rewrite");
    let old = t.sha256();
    udp_once(&t);
    d.wait_rows(&t.path, Duration::from_secs(60), |r| r.iter().any(|r| r.sha256 == old));
    // (Its first-seen notification may be held back by the rate limit: the other
    // tests' storms run meanwhile and every daemon sees all traffic. A change of
    // sha256 is a kind of its own, limited on its own.)

    rewrite_in_place(&t.path);
    let new = t.sha256();
    assert_ne!(new, old);
    d.wait_status("fanotify to report the write", Duration::from_secs(30), |s| {
        s["primary"]["executables_rewritten"].as_u64().unwrap_or(0) >= 1
    });
    udp_once(&t);
    let rows = d.wait_rows(&t.path, Duration::from_secs(60), |r| r.iter().any(|r| r.sha256 == new));
    assert!(rows.iter().any(|r| r.sha256 == old), "the first run keeps its hash: {rows:#?}");
    let n = bus.wait_for("New sha256 detected for ntf-rewrite", Duration::from_secs(30));
    assert!(n.body.contains(&t.path.display().to_string()) && n.body.contains(&new), "{n:?}");
    assert_eq!(n.category, "picosnitch.sha256_changed");
    assert_eq!(n.sender_uid, uid);
    let st = d.status();
    assert_eq!(st["primary"]["exe_watch_overflows"], 0, "{st:#}");
}

#[test]
fn the_notify_role_is_the_desktop_user_confined_and_refuses_what_it_must_not_do() {
    let test = "the_notify_role_is_the_desktop_user_confined_and_refuses_what_it_must_not_do";
    if !root_or_skip(test) {
        return;
    }
    let uid = 61342; // a bare uid: no bus needed for this test
    let probes = "notify:read-shadow,notify:write-outside,notify:connect=127.0.0.1:22";
    let d = Daemon::start_env(&format!("[desktop]\nuser = \"{uid}\"\n"), &[("PICOSNITCH_SANDBOX_PROBE", probes)]);
    for probe in ["read-shadow", "write-outside"] {
        let line = d.wait_log(&["sandbox probe result", "role=notify", &format!("probe={probe}")], Duration::from_secs(30));
        assert!(line.contains("refused: Permission denied"), "{probe}: {line}");
    }
    // An inet socket is outside its policy (AF_UNIX only): the role is stopped and restarted.
    let line = d.wait_log(&["forbids", "role=notify", "syscall=socket"], Duration::from_secs(30));
    assert!(line.contains("stopped before the call ran"), "{line}");
    d.wait_status("the notify role restarted and ready", Duration::from_secs(30), |st| {
        st["roles"].as_array().is_some_and(|rs| rs.iter().any(|r| r["role"] == "notify" && r["restarts"] == 1 && r["ready"] == true))
    });
    // The replacement (probes go to a role's first process only) is confined the same.
    let pid = d.role_pid("notify");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("role status");
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_string();
    assert!(field("Uid:").split_whitespace().all(|u| u == uid.to_string()), "runs as the desktop user, never root: {}", field("Uid:"));
    assert!(field("Gid:").split_whitespace().all(|g| g == uid.to_string()), "{}", field("Gid:"));
    for set in ["CapEff:", "CapPrm:", "CapBnd:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000000000", "notify {set}");
    }
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
}

#[test]
fn a_desktop_user_that_is_root_is_refused() {
    // The configuration check refuses root by name and by uid, before anything starts.
    for user in ["root", "0"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, format!("[desktop]\nuser = \"{user}\"\n")).expect("config");
        let out = std::process::Command::new(DAEMON).arg("check-config").arg(&config).output().expect("check-config");
        assert!(!out.status.success(), "{user} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("never sent as root"), "{user}: {err}");
    }
}

#[test]
fn an_executable_virustotal_flags_is_notified() {
    let test = "an_executable_virustotal_flags_is_notified";
    if !root_or_skip(test) || !dbus_or_skip(test) {
        return;
    }
    let uid = 61342;
    let gid = ensure_account("picosnitch-desktop-test3", uid);
    let bus = SessionBus::start(uid, gid);
    let fake = picosnitch_virustotal::fake::FakeVirusTotal::start(VT_KEY).expect("fake VirusTotal");
    let secrets = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(&format!(
        "{}[desktop]\nuser = \"picosnitch-desktop-test3\"\nnotification_burst = 50\n",
        virustotal_section(&fake, secrets.path(), false)
    ));
    let flagged = Traffic::distinct("ntf-vtflagged");
    fake.add_file(
        &flagged.sha256(),
        Some(picosnitch_virustotal::Stats { malicious: 5, suspicious: 2, undetected: 50, harmless: 1, ..Default::default() }),
    );
    udp_once(&flagged);
    // Critical and kept until dismissed, with the path, the engines' counts and the sha256.
    let a = bus.wait_for(&format!("VirusTotal flags {}", flagged.path.display()), Duration::from_secs(90));
    assert_eq!(a.category, "picosnitch.virustotal_flagged", "{a:?}");
    assert_eq!(a.urgency, 2, "critical: {a:?}");
    assert_eq!(a.expire_timeout, 0, "stays until dismissed: {a:?}");
    assert!(a.body.contains(&flagged.sha256()) && a.body.contains('5'), "{a:?}");
    assert_eq!(a.sender_uid, uid);
    drop(d);
}
