//! The daemon's status, written by the supervisor to `<runtime_dir>/status.json` every
//! second and read by `picosnitch status`. Every loss counter of every role is in it.
use picosnitch_ipc::status::{
    HasherStatus, MonitorStatus, NotifyStatus, OpenerStatus, PrimaryStatus, RemoteStatus, ReverseDnsStatus, UserHasherStatus, VirusTotalStatus,
    WriterStatus,
};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Bumped when the file's shape changes incompatibly.
pub const STATUS_FORMAT: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleState {
    pub role: String,
    pub pid: Option<u32>,
    pub restarts: u32,
    /// Its current process is working: the monitor has attached the kernel hooks, the
    /// others have reported.
    pub ready: bool,
    /// How its previous process ended, if it was restarted.
    pub last_exit: Option<String>,
    pub up_seconds: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineStatus {
    pub format: u32,
    pub version: String,
    pub supervisor_pid: u32,
    pub started_unix: i64,
    pub updated_unix: i64,
    /// The kernel hooks are attached and the database is open.
    pub ready: bool,
    /// Started with PICOSNITCH_UNCONFINED_FOR_BENCHMARK=1: no role is sandboxed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfined: bool,
    pub roles: Vec<RoleState>,
    pub monitor: Option<MonitorStatus>,
    pub primary: Option<PrimaryStatus>,
    pub hasher: Option<HasherStatus>,
    pub writer: Option<WriterStatus>,
    /// Absent without a desktop user.
    #[serde(default)]
    pub notify: Option<NotifyStatus>,
    /// Absent without a desktop user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_hasher: Option<UserHasherStatus>,
    /// Only with `[database.remote]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteStatus>,
    /// Absent unless `[virustotal]` has an API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virustotal: Option<VirusTotalStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opener: Option<OpenerStatus>,
    /// Absent unless `[monitoring] reverse_dns` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_dns: Option<ReverseDnsStatus>,
}

/// Ends the name of a loss entry that details the one before it (what its rows held).
const DETAIL: &str = "in those rows";

impl PipelineStatus {
    /// Writes the file atomically (a reader never sees half of it), readable by the
    /// owner and `gid`'s members only.
    pub fn write_atomically(&self, path: &Path, gid: Option<u32>) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        // O_EXCL|O_NOFOLLOW: never write through a link someone planted.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(&text)?;
        if gid.is_some() {
            std::os::unix::fs::fchown(&f, None, gid)?;
        }
        f.set_permissions(std::fs::Permissions::from_mode(0o640))?;
        drop(f);
        std::fs::rename(&tmp, path)
    }

    /// Every loss counter above zero, named, with its value.
    fn loss_counters(&self) -> Vec<(String, u64)> {
        let mut losses = Vec::new();
        if let Some(m) = &self.monitor {
            for (name, v) in &m.kernel {
                // Not losses: a cut path or DNS copy, an answer whose namespace is unknown.
                let degraded = matches!(name.as_str(), "path_truncated" | "names_truncated" | "names_netns_unknown");
                if *v > 0 && !degraded {
                    losses.push((format!("kernel {name}"), *v));
                }
            }
            if m.records_undecodable > 0 {
                losses.push(("undecodable kernel records".into(), m.records_undecodable));
            }
            if m.counter_read_failures > 0 {
                losses.push(("kernel counter reads failed (flow bytes or losses unseen)".into(), m.counter_read_failures));
            }
            if m.orphan_flows_removed > 0 {
                losses.push(("kernel flows never announced, removed unrecorded".into(), m.orphan_flows_removed));
            }
            if m.name_records_undecodable > 0 {
                losses.push(("undecodable name capture records".into(), m.name_records_undecodable));
            }
        }
        if let Some(p) = &self.primary {
            if p.dns_malformed > 0 {
                losses.push(("malformed DNS answers dropped".into(), p.dns_malformed));
            }
            if p.tls_malformed > 0 {
                losses.push(("unparsed TLS ClientHellos dropped".into(), p.tls_malformed));
            }
            if p.rows_dropped_queue_full > 0 {
                losses.push(("rows dropped with the writer queue full".into(), p.rows_dropped_queue_full));
                losses.push((format!("connections {DETAIL}"), p.events_dropped_queue_full));
                losses.push((format!("payload bytes {DETAIL}"), p.bytes_dropped_queue_full));
            }
            if p.virustotal_not_checked > 0 {
                losses.push(("executables not checked on VirusTotal (too many waiting)".into(), p.virustotal_not_checked));
            }
            if p.bytes_unattributed > 0 {
                losses.push(("bytes of unknown flows".into(), p.bytes_unattributed));
            }
            if p.notices_dropped > 0 {
                losses.push(("notifications dropped before the notify role".into(), p.notices_dropped));
            }
        }
        if let Some(w) = &self.writer {
            if w.remote_rows_dropped > 0 {
                losses.push(("rows not spooled for the remote database".into(), w.remote_rows_dropped));
            }
        }
        if let Some(r) = &self.remote {
            if r.rows_rejected > 0 {
                losses.push(("rows the remote database refused".into(), r.rows_rejected));
            }
            if r.records_undecodable > 0 {
                losses.push(("undecodable spool records".into(), r.records_undecodable));
            }
        }
        if let Some(v) = &self.virustotal {
            if v.dropped_queue_full > 0 {
                losses.push(("executables not checked on VirusTotal (queue full)".into(), v.dropped_queue_full));
            }
        }
        if let Some(n) = &self.notify {
            if n.failed > 0 {
                losses.push(("notifications not delivered".into(), n.failed));
            }
        }
        losses
    }

    /// Every loss, as `picosnitch status` names it.
    pub fn losses(&self) -> Vec<String> {
        self.loss_counters().into_iter().map(|(name, v)| format!("{name} {v}")).collect()
    }

    /// Events and rows lost so far (not counting undelivered notifications, which
    /// cannot themselves be announced, nor what the rows counted before held).
    pub fn loss_total(&self) -> u64 {
        self.loss_counters()
            .into_iter()
            .filter(|(name, _)| !name.starts_with("notifications") && !name.ends_with(DETAIL))
            .map(|(_, v)| v)
            .sum()
    }

    /// Human-readable form for `picosnitch status`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let state = match (self.ready, self.unconfined) {
            (true, false) => "running",
            (false, false) => "starting",
            (true, true) => "running UNCONFINED",
            (false, true) => "starting UNCONFINED",
        };
        let _ = writeln!(s, "picosnitch {} {state} (supervisor pid {})", self.version, self.supervisor_pid);
        if self.unconfined {
            let _ = writeln!(
                s,
                "UNCONFINED: started with {}=1, so no role is sandboxed (for measuring the sandbox's cost only); restart it without that variable",
                crate::unconfined::ENV
            );
        }
        let _ = writeln!(s, "\nroles:");
        for r in &self.roles {
            let pid = r.pid.map_or_else(|| "-".to_string(), |p| p.to_string());
            let _ = write!(s, "  {:<8} pid {:<8} up {:>7}s  restarts {}", r.role, pid, r.up_seconds, r.restarts);
            if let Some(e) = &r.last_exit {
                let _ = write!(s, "  (last: {e})");
            }
            s.push('\n');
        }
        if let Some(m) = &self.monitor {
            let _ = writeln!(s, "\nkernel: hook set {} ({})", m.hook_set, m.hook_reason);
            let _ = writeln!(s, "  cgroup {}", m.cgroup);
            let _ = writeln!(
                s,
                "  records read {}, flows tracked {}, flows reaped {}",
                m.records_read, m.flows_tracked, m.flows_reaped
            );
            for (name, v) in &m.kernel {
                let _ = writeln!(s, "  {name:<24} {v}");
            }
        }
        if let Some(p) = &self.primary {
            let _ = writeln!(s, "\nprimary:");
            let _ = writeln!(s, "  flows active {}, seen {}, executions seen {}", p.flows_active, p.flows_seen, p.execs_seen);
            let _ = writeln!(
                s,
                "  rows queued {}, acknowledged {}, dropped (queue full) {}, ignored by [log] rules {}",
                p.rows_queued, p.rows_acknowledged, p.rows_dropped_queue_full, p.rows_ignored
            );
            let _ = writeln!(
                s,
                "  executables: replaced {}, unresolved {}; hashes requested {}, cache hits {}, failed {}, pending {}; by the desktop user {}, timed out {}",
                p.exe_replaced,
                p.exe_unresolved,
                p.hash_requests,
                p.hash_cache_hits,
                p.hash_failures,
                p.hashes_pending,
                p.user_hash_requests,
                p.user_hash_timeouts
            );
            let _ = writeln!(
                s,
                "  executables not openable by path: opened via /proc {}, process gone {}, process runs another file {}, failed {}",
                p.exe_opened_via_proc, p.exe_proc_gone, p.exe_proc_mismatch, p.exe_proc_failed
            );
            let _ = writeln!(
                s,
                "  live feed: readers {}, updates sent {}, readers dropped for falling behind {}, refused {}",
                p.feed_subscribers, p.feed_updates_published, p.feed_subscribers_dropped_slow, p.feed_subscribers_refused
            );
            let _ = writeln!(
                s,
                "  domains: DNS answers {} ({} addresses, {} malformed, {} TCP continuations skipped), TLS hellos {} ({} names, {} unparsed); flows named by DNS {}, by TLS {}; cache {} names, {} pushed out early",
                p.dns_answers,
                p.dns_addresses,
                p.dns_malformed,
                p.dns_tcp_continued,
                p.tls_hellos,
                p.tls_server_names,
                p.tls_malformed,
                p.domains_from_dns,
                p.domains_from_tls,
                p.domain_cache_entries,
                p.domain_cache_evicted_early
            );
            if self.reverse_dns.is_some() || p.rdns_names_learnt + p.rdns_failed + p.rdns_not_asked > 0 {
                let _ = writeln!(
                    s,
                    "  reverse DNS: names learnt {}, flows named {}, lookups failed or timed out {}, addresses not looked up (too many waiting) {}",
                    p.rdns_names_learnt, p.domains_from_rdns, p.rdns_failed, p.rdns_not_asked
                );
            }
            let _ = writeln!(s, "  notices raised {}, dropped (no notify role, or it fell behind) {}", p.notices_raised, p.notices_dropped);
        }
        if let Some(h) = &self.hasher {
            let _ = writeln!(s, "\nhasher: {} files, {} bytes hashed, {} failures", h.files_hashed, h.bytes_hashed, h.failures);
        }
        if let Some(u) = &self.user_hasher {
            let _ = writeln!(
                s,
                "\nuser-hasher (as the desktop user): {} files, {} bytes hashed, cache hits {}, replaced {}, failures {}, timed out {}, reads hung now {}",
                u.files_hashed, u.bytes_hashed, u.cache_hits, u.replaced, u.failures, u.timeouts, u.reads_hung
            );
        }
        if let Some(o) = &self.opener {
            let _ = writeln!(
                s,
                "\nopener: requests {}, opened {}, process gone {}, another file {}, failed {}, malformed {}",
                o.requests, o.opened, o.gone, o.mismatched, o.failed, o.malformed
            );
        }
        if let Some(w) = &self.writer {
            let _ = writeln!(s, "\nwriter: database {}", w.db_path);
            let _ = writeln!(
                s,
                "  rows written {}, duplicate batches skipped {}, rows pruned {}",
                w.rows_written, w.batches_duplicate, w.rows_pruned
            );
            if let Some(e) = &w.last_error {
                let _ = writeln!(s, "  NOT WRITING: {e}");
            }
            if let Some(m) = &w.moved_aside {
                let _ = writeln!(s, "  a corrupt database was moved aside to {m}");
            }
            if w.remote_rows_spooled + w.remote_rows_dropped > 0 || w.remote_spool_error.is_some() {
                let _ = writeln!(
                    s,
                    "  rows spooled for the remote database {}, dropped {} (spool full {} times)",
                    w.remote_rows_spooled, w.remote_rows_dropped, w.remote_spool_full_events
                );
            }
            if let Some(e) = &w.remote_spool_error {
                let _ = writeln!(s, "  NOT SPOOLING: {e}");
            }
        }
        if let Some(r) = &self.remote {
            // Its losses are named by loss_counters, like every role's.
            render_remote(&mut s, r, &mut Vec::new());
        }
        if let Some(n) = &self.notify {
            let _ = writeln!(
                s,
                "\nnotify: bus {}, sent {}, failed {}, duplicates dropped {}, held back by the rate limit {}",
                n.bus, n.sent, n.failed, n.duplicates, n.rate_limited
            );
            if let Some(e) = &n.last_error {
                let _ = writeln!(s, "  last failure: {e}");
            }
        }
        if let Some(v) = &self.virustotal {
            let _ = writeln!(
                s,
                "\nvirustotal: {} lookups, {} uploads, {} flagged; {} waiting; quota errors {}, other errors {}",
                v.lookups, v.files_uploaded, v.flagged, v.queued, v.quota_errors, v.errors
            );
            if let Some(e) = &v.last_error {
                let _ = writeln!(s, "  last error: {e}");
            }
        }
        if let Some(r) = &self.reverse_dns {
            // Not losses: an address without a name is recorded all the same.
            let _ = writeln!(
                s,
                "\nrdns: resolver {}, queries {}, named {}, no name {}, timeouts {}, errors {}, refused (too many in flight) {}",
                r.resolver, r.queries, r.named, r.no_name, r.timeouts, r.errors, r.dropped_busy
            );
            if let Some(e) = &r.last_error {
                let _ = writeln!(s, "  last error: {e}");
            }
        }
        let _ = writeln!(s);
        let losses = self.losses();
        if losses.is_empty() {
            let _ = writeln!(s, "losses: none");
        } else {
            let _ = writeln!(s, "LOSSES: {}", losses.join("; "));
        }
        s
    }
}

fn render_remote(s: &mut String, r: &RemoteStatus, losses: &mut Vec<String>) {
    let state = if r.connected { format!("connected to {}", r.peer.as_deref().unwrap_or("?")) } else { "not connected".into() };
    let _ = writeln!(s, "\nremote: {} ({state})", r.server);
    let _ = writeln!(s, "  {}", r.tls);
    let _ = writeln!(
        s,
        "  rows delivered {}, batches {}, duplicate batches skipped {}, connections {}",
        r.rows_delivered, r.batches_delivered, r.batches_duplicate, r.connects
    );
    let _ = writeln!(s, "  spool {} bytes in {} segments, torn tails skipped {}", r.spool_bytes, r.spool_segments, r.torn_tails);
    if let Some(e) = &r.last_error {
        let _ = writeln!(s, "  NOT DELIVERING: {e}");
    }
    for w in &r.warnings {
        let _ = writeln!(s, "  warning: {w}");
    }
    if r.rows_rejected > 0 {
        losses.push(format!("rows the remote database refused {}", r.rows_rejected));
    }
    if r.records_undecodable > 0 {
        losses.push(format!("undecodable spool records {}", r.records_undecodable));
    }
}
