//! What each role reports for `picosnitch status`. Every counter that means lost or
//! degraded data is named here, so nothing is dropped without a number to show for it.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Externally tagged (serde's default): postcard cannot encode internally tagged enums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RoleStatus {
    Monitor(MonitorStatus),
    Primary(PrimaryStatus),
    Hasher(HasherStatus),
    Writer(WriterStatus),
    Remote(RemoteStatus),
    VirusTotal(VirusTotalStatus),
    Notify(NotifyStatus),
    UserHasher(UserHasherStatus),
    Opener(OpenerStatus),
    ReverseDns(ReverseDnsStatus),
}

/// What the opener did with the primary's requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenerStatus {
    pub requests: u64,
    /// Opened and verified: the descriptor went to the primary.
    pub opened: u64,
    /// The process had exited.
    pub gone: u64,
    /// The process runs another file than the one asked for.
    pub mismatched: u64,
    /// `/proc/PID/exe` could not be opened for another reason.
    pub failed: u64,
    /// Messages that were not a well-formed request (dropped).
    pub malformed: u64,
}

/// The rdns role: PTR lookups sent to the resolver and what came back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReverseDnsStatus {
    /// The resolver asked (`address:port`).
    pub resolver: String,
    pub queries: u64,
    /// Replies naming the address, and replies saying there is no name.
    pub named: u64,
    pub no_name: u64,
    /// Lookups without a reply in time (a resolver down or slow).
    pub timeouts: u64,
    /// Replies that did not parse or did not fit their query, resolver errors
    /// (SERVFAIL, REFUSED), and send failures.
    pub errors: u64,
    /// Lookups refused because too many were in flight.
    pub dropped_busy: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyStatus {
    /// The session bus it sends to (`unix:path=/run/user/UID/bus`).
    pub bus: String,
    pub sent: u64,
    /// Notifications the bus refused or that timed out (no session, no notification
    /// server): a loss, shown in `picosnitch status`.
    pub failed: u64,
    /// Dropped as a repeat of one shown within the deduplication window (not a loss).
    pub duplicates: u64,
    /// Held back by the rate limit and summed up in a later "N more" notification.
    pub rate_limited: u64,
    /// Why the last notification failed, if one did.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorStatus {
    pub hook_set: String,
    pub hook_reason: String,
    pub cgroup: String,
    /// The kernel side's own counters, summed over CPUs: ring buffer full (by record
    /// kind), flow map full, bytes lost with dropped records, truncated paths.
    pub kernel: BTreeMap<String, u64>,
    pub records_read: u64,
    pub records_undecodable: u64,
    pub flows_tracked: u64,
    /// Flows closed by the monitor because their process is gone and the socket has no
    /// close hook (AF_PACKET) or went idle.
    pub flows_reaped: u64,
    /// Counter reads that failed: of the kernel's flow map (an entry vanished early), or
    /// of its loss counters (losses may then go unseen).
    pub counter_read_failures: u64,
    /// Kernel flow entries removed unrecorded: their announcement never reached the
    /// monitor (seen in two sweeps a minute apart). Their bytes are lost.
    #[serde(default)]
    pub orphan_flows_removed: u64,
    /// Records of the name capture (DNS answers, TLS ClientHellos) read, and those that
    /// could not be decoded (dropped).
    pub name_records_read: u64,
    pub name_records_undecodable: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryStatus {
    pub flows_active: u64,
    pub flows_seen: u64,
    pub execs_seen: u64,
    /// Rows waiting for the writer's acknowledgement (the writer queue).
    pub rows_queued: u64,
    pub rows_acknowledged: u64,
    /// Rows dropped because the writer queue was full (`database.queue_limit`).
    pub rows_dropped_queue_full: u64,
    /// In those rows: connections opened (a row sums several) and payload bytes.
    #[serde(default)]
    pub events_dropped_queue_full: u64,
    #[serde(default)]
    pub bytes_dropped_queue_full: u64,
    /// Rows not recorded because of `[log]` ignore rules (not a loss: configured).
    pub rows_ignored: u64,
    /// Byte updates for flows the primary never heard of (a bug or a lost open).
    pub bytes_unattributed: u64,
    pub exe_replaced: u64,
    pub exe_unresolved: u64,
    pub hash_requests: u64,
    pub hash_cache_hits: u64,
    pub hash_failures: u64,
    pub hashes_pending: u64,
    /// Executables it could not open, handed to the desktop user's hasher by path.
    #[serde(default)]
    pub user_hash_requests: u64,
    /// Of those, recorded `!hash-timeout`: not hashed in `[desktop] hash_timeout_seconds`.
    #[serde(default)]
    pub user_hash_timeouts: u64,
    /// Executables that could not be opened by path, opened through /proc/PID/exe by
    /// the opener role instead; and those not opened because the process had exited
    /// (before the opener was asked, or by the time it tried), ran another file by
    /// then, or for another reason (the opener could not, or did not answer in time).
    pub exe_opened_via_proc: u64,
    pub exe_proc_gone: u64,
    pub exe_proc_mismatch: u64,
    pub exe_proc_failed: u64,
    /// Executables not checked on VirusTotal because too many were waiting.
    pub virustotal_not_checked: u64,
    /// Live feed readers connected now.
    pub feed_subscribers: u64,
    /// Updates sent to at least one reader.
    pub feed_updates_published: u64,
    /// Readers disconnected because they fell behind (they may reconnect).
    pub feed_subscribers_dropped_slow: u64,
    /// Readers refused because the most allowed were connected.
    pub feed_subscribers_refused: u64,
    /// Writes to hashed executables reported by fanotify (their cached hash is dropped).
    pub executables_rewritten: u64,
    /// fanotify queue overflows (every cached hash dropped).
    pub exe_watch_overflows: u64,
    /// Hashed executables fanotify could not watch (a rewrite of those goes unseen
    /// until their size or mtime changes).
    pub exe_watch_failures: u64,
    /// Desktop notifications raised (new executables and names, changed sha256).
    pub notices_raised: u64,
    /// Notices dropped because the notify role was not there or fell behind.
    pub notices_dropped: u64,
    /// DNS answers parsed, and addresses learnt from them.
    pub dns_answers: u64,
    pub dns_addresses: u64,
    /// DNS packets from port 53 that could not be parsed (dropped): malformed, or a
    /// TCP segment continuing a message.
    pub dns_malformed: u64,
    /// TCP segments from port 53 that continue a message begun in an earlier one
    /// (skipped: only a message's first segment is parsed).
    pub dns_tcp_continued: u64,
    /// TLS ClientHellos parsed, those naming a server, and those that could not be
    /// parsed (dropped; cut short by the 2 KiB copy, or malformed).
    pub tls_hellos: u64,
    pub tls_server_names: u64,
    pub tls_malformed: u64,
    /// Flows given a domain from a DNS answer, and from a TLS server name.
    pub domains_from_dns: u64,
    pub domains_from_tls: u64,
    /// Names learnt from reverse DNS (PTR) lookups, flows given a domain from one,
    /// lookups that failed or timed out, and addresses not looked up because too many
    /// were waiting (with `[monitoring] reverse_dns`).
    #[serde(default)]
    pub rdns_names_learnt: u64,
    #[serde(default)]
    pub domains_from_rdns: u64,
    #[serde(default)]
    pub rdns_failed: u64,
    #[serde(default)]
    pub rdns_not_asked: u64,
    /// Names in the cache now, and names pushed out before their TTL by its bounds.
    pub domain_cache_entries: u64,
    pub domain_cache_evicted_early: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HasherStatus {
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    pub failures: u64,
}

/// The desktop user's hasher: files it hashed by path, as that user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserHasherStatus {
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    /// Answered from its cache (same device, inode, size and modification time).
    pub cache_hits: u64,
    /// The file at the path was not the one the kernel ran.
    pub replaced: u64,
    pub failures: u64,
    /// Files not hashed within `[desktop] hash_timeout_seconds` (a hung FUSE server),
    /// including those refused while an earlier read on the same filesystem hangs.
    pub timeouts: u64,
    /// Reads still hung right now (each holds one abandoned thread).
    pub reads_hung: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterStatus {
    pub db_path: String,
    pub rows_written: u64,
    /// Batches that arrived a second time after a restart and were not written again.
    pub batches_duplicate: u64,
    pub rows_pruned: u64,
    /// The error that currently keeps rows from being written (disk full, ...).
    pub last_error: Option<String>,
    /// Where a corrupt database was moved before a new one was created.
    pub moved_aside: Option<String>,
    /// Rows put in the spool for the remote database (`[database.remote]`).
    pub remote_rows_spooled: u64,
    /// Rows not spooled, because the spool was full (`spool_limit_bytes`) or could not
    /// be written: they are in the local history but will never reach the remote one.
    pub remote_rows_dropped: u64,
    /// How often the spool became full (each is logged: the event a notification
    /// would announce).
    pub remote_spool_full_events: u64,
    /// Why rows currently cannot be spooled (full, or a write error).
    pub remote_spool_error: Option<String>,
}

/// The remote role: delivery of the spool to the remote database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteStatus {
    /// `postgresql://user@host:port/database`, and the table prefix.
    pub server: String,
    /// How the connection is protected ("TLS, certificate checked against ...").
    pub tls: String,
    pub connected: bool,
    /// The address the current connection reached.
    pub peer: Option<String>,
    pub connects: u64,
    pub rows_delivered: u64,
    pub batches_delivered: u64,
    /// Batches the server already had (sent again after a restart or a lost commit
    /// acknowledgement): not inserted twice.
    pub batches_duplicate: u64,
    /// Batches the server refused as invalid data, and their rows: lost for the remote.
    pub batches_rejected: u64,
    pub rows_rejected: u64,
    /// Spooled records this version cannot decode: lost for the remote.
    pub records_undecodable: u64,
    /// Tails of spool segments torn by a crash (their batches were spooled again).
    pub torn_tails: u64,
    /// What waits in the spool.
    pub spool_bytes: u64,
    pub spool_segments: u64,
    /// Unix time of the last delivery (0: none yet).
    pub last_delivery_unix: i64,
    /// Why nothing is delivered now (unreachable, refused login, TLS, schema).
    pub last_error: Option<String>,
    /// Things that work but should be fixed (the login may do more than INSERT).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirusTotalStatus {
    /// Hash lookups answered (found, not found or not analysed yet).
    pub lookups: u64,
    pub files_uploaded: u64,
    /// Verdicts with at least one engine saying malicious or suspicious.
    pub flagged: u64,
    /// Requests waiting for their turn (one per `request_limit_seconds`).
    pub queued: u64,
    /// Requests refused because the queue was full (the hash is not checked).
    pub dropped_queue_full: u64,
    /// 429 QuotaExceededError answers (each followed by a longer wait).
    pub quota_errors: u64,
    /// Other failures (network, TLS, refused key, malformed answers).
    pub errors: u64,
    pub last_error: Option<String>,
}
