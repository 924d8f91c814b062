//! Executables the primary cannot open by path: deleted or replaced after their process
//! started, or only present in another mount namespace. The opener role opens them
//! through /proc/PID/exe, and the history holds the sha256 of what the process really
//! runs, not `!replaced` or `!unreadable`.
mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// The status counters of the primary and the opener, once the opener has opened `n`.
fn wait_opened(d: &Daemon, n: u64) -> serde_json::Value {
    d.wait_status("the opener's descriptors counted", Duration::from_secs(20), |st| {
        st["primary"]["exe_opened_via_proc"].as_u64().unwrap_or(0) >= n && st["opener"]["opened"].as_u64().unwrap_or(0) >= n
    })
}

/// The daemon's log lines about the opener, for failure messages.
fn opener_log(d: &Daemon) -> String {
    d.log()
}

/// A server that accepts two connections: the first is recorded while it still runs
/// (its executable can only be opened through /proc while the process lives), the
/// second lets it end.
fn connect_once(client: &Traffic, port: u16) {
    let c = client.run(&["tcp-client", "--to", &format!("127.0.0.1:{port}"), "--send", "7"]);
    assert_eq!(c.sent, 7);
}

#[test]
fn a_deleted_or_replaced_binary_is_hashed_through_proc() {
    if !root_or_skip("a_deleted_or_replaced_binary_is_hashed_through_proc") {
        return;
    }
    let d = Daemon::start("");
    let client = Traffic::new("opclient");

    let deleted = Traffic::new("opdeleted");
    let deleted_sha = deleted.sha256();
    let srv_deleted = deleted.serve(&["tcp-server", "--accepts", "2", "--send", "5"]);
    std::fs::remove_file(&deleted.path).expect("deleting the running binary");

    let replaced = Traffic::new("opreplaced");
    let replaced_sha = replaced.sha256();
    let srv_replaced = replaced.serve(&["tcp-server", "--accepts", "2", "--send", "5"]);
    // A package upgrade's way: a new file renamed over the old path.
    let new = replaced.path.with_extension("new");
    std::fs::write(&new, b"#!/bin/sh\necho a different program\n").expect("new file");
    std::fs::rename(&new, &replaced.path).expect("replacing the running binary");
    let new_sha = sha256_of(&replaced.path);
    assert_ne!(new_sha, replaced_sha);

    connect_once(&client, srv_deleted.port);
    connect_once(&client, srv_replaced.port);
    for (what, path, sha) in [("deleted", &deleted.path, &deleted_sha), ("replaced", &replaced.path, &replaced_sha)] {
        let rows = d.wait_rows(path, Duration::from_secs(30), |r| sums(r).1 >= 7 && !r.is_empty());
        assert!(rows.iter().all(|r| &r.sha256 == sha), "{what}: the running binary's sha256 {sha}, got {:?}\n{}", rows.iter().map(|r| &r.sha256).collect::<Vec<_>>(), opener_log(&d));
        assert_eq!(sums(&rows).0, 5, "{what}: the server's bytes");
    }
    let st = wait_opened(&d, 2);
    assert_eq!(st["opener"]["malformed"], 0, "{st}");
    connect_once(&client, srv_deleted.port);
    connect_once(&client, srv_replaced.port);
    srv_deleted.finish();
    srv_replaced.finish();
}

#[test]
fn a_binary_in_another_mount_namespace_is_hashed_through_proc() {
    if !root_or_skip("a_binary_in_another_mount_namespace_is_hashed_through_proc") {
        return;
    }
    let d = Daemon::start("");
    // An empty directory on the host; inside the new mount namespace a tmpfs over it
    // holds the binary, so its path leads nowhere on the host.
    let dir = tempfile::Builder::new().prefix("picosnitch-e2e-mntns-").tempdir().expect("tempdir");
    let mountpoint = dir.path().canonicalize().expect("canonical");
    let inside = mountpoint.join("nsserver");
    let source = traffic_binary();
    let script = format!(
        "mount -t tmpfs -o size=64m picosnitch-e2e {mp} && cp {src} {bin} && exec {bin} tcp-server --accepts 2 --send 5",
        mp = mountpoint.display(),
        src = source.display(),
        bin = inside.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let srv = Traffic::new("opmntnsunused").serve_with(&mut cmd);
    assert!(!inside.exists(), "{} must not exist on the host", inside.display());
    let client = Traffic::new("opnsclient");
    connect_once(&client, srv.port);
    let sha = sha256_of(&source);
    let rows = d.wait_rows(&inside, Duration::from_secs(30), |r| sums(r).1 >= 7);
    assert!(rows.iter().all(|r| r.sha256 == sha), "the sha256 of {} inside the namespace: {sha}, got {:?}\n{}", inside.display(), rows.iter().map(|r| &r.sha256).collect::<Vec<_>>(), opener_log(&d));
    wait_opened(&d, 1);
    connect_once(&client, srv.port);
    srv.finish();
}

/// A directory under /dev that may hold executables: /dev/shm when it is not mounted
/// noexec (container runtimes mount it so), else a tmpfs the test mounts (and removes).
struct DevDir {
    path: std::path::PathBuf,
    mounted: bool,
    _shm: Option<tempfile::TempDir>,
}

impl DevDir {
    fn new() -> DevDir {
        let shm_exec = {
            let c = std::ffi::CString::new("/dev/shm").expect("path");
            // SAFETY: statvfs with a valid path and a zeroed struct it fills.
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0) && st.f_flag & libc::ST_NOEXEC == 0
        };
        if shm_exec {
            let dir = tempfile::Builder::new().prefix("picosnitch-e2e-").tempdir_in("/dev/shm").expect("a directory in /dev/shm");
            return DevDir { path: dir.path().to_path_buf(), mounted: false, _shm: Some(dir) };
        }
        let path = std::path::PathBuf::from(format!("/dev/picosnitch-e2e-{}", std::process::id()));
        std::fs::create_dir(&path).expect("a directory under /dev");
        let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64m", "picosnitch-e2e"]).arg(&path).status().expect("mount");
        assert!(st.success(), "mounting a tmpfs on {}", path.display());
        DevDir { path, mounted: true, _shm: None }
    }
}

impl Drop for DevDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// A binary run from under /dev, where the primary's Landlock rules let it open nothing
/// (it reads no device or shared-memory file): opened through /proc by the opener.
#[test]
fn a_binary_run_from_dev_shm_is_hashed_through_proc() {
    if !root_or_skip("a_binary_run_from_dev_shm_is_hashed_through_proc") {
        return;
    }
    let d = Daemon::start("");
    let dir = DevDir::new();
    let path = dir.path.join("opshmsrv");
    std::fs::copy(traffic_binary(), &path).expect("copying the server under /dev");
    let sha = sha256_of(&path);
    let srv = Traffic::new("opshmunused").serve_with(Command::new(&path).args(["tcp-server", "--accepts", "2", "--send", "5"]));
    let client = Traffic::new("opshmcli");
    connect_once(&client, srv.port);
    let rows = d.wait_rows(&path, Duration::from_secs(30), |r| sums(r).1 >= 7);
    assert!(rows.iter().all(|r| r.sha256 == sha), "{sha}, got {:?}\n{}", rows.iter().map(|r| &r.sha256).collect::<Vec<_>>(), opener_log(&d));
    wait_opened(&d, 1);
    connect_once(&client, srv.port);
    srv.finish();
    let _ = std::fs::remove_file(&path);
}
