//! The writer role: the only process that opens the database for writing. It commits
//! each batch of rows from the primary together with the batch's number, then
//! acknowledges it; the primary holds every batch until then, so a writer that dies,
//! or a disk that fills, loses nothing the primary's queue can hold.
use crate::role::{self, Command, Control};
use anyhow::Context;
use async_io::Timer;
use picosnitch_config::Config;
use picosnitch_ipc::control::{FromRole, Role};
use picosnitch_ipc::rows::{RowAck, RowBatch};
use picosnitch_ipc::status::{RoleStatus, WriterStatus};
use picosnitch_ipc::{Link, SeqPacket};
use picosnitch_store::{Delivery, Store, StoreError};
use std::time::{Duration, Instant};

pub mod policy;
mod spool;

use spool::RemoteSpool;

const STATUS_PERIOD: Duration = Duration::from_secs(2);
const PRUNE_PERIOD: Duration = Duration::from_secs(3600);
const RETRY_PERIOD: Duration = Duration::from_secs(2);

type PrimaryLink = Link<RowAck, RowBatch>;

enum Wake {
    Command(anyhow::Result<Command>),
    Batch(Result<Option<RowBatch>, picosnitch_ipc::IpcError>),
    Tick,
}

pub fn run(control: SeqPacket, config: &Config) -> anyhow::Result<()> {
    let path = config.database.path.clone();
    // INVARIANT: confined before the database is opened: it needs no privilege (its
    // directory belongs to the service user, prepared by the supervisor), and files
    // it creates get the service group and mode 0640 from the umask.
    crate::confine::confine_role(&policy::POLICY, config)?;
    let (store, report) = Store::open(&path).with_context(|| format!("opening the database {}", path.display()))?;
    let mut status = WriterStatus { db_path: path.display().to_string(), ..Default::default() };
    if let Some(old) = &report.moved_aside {
        tracing::error!(
            moved_to = %old.display(),
            db = %path.display(),
            "the database was corrupt: it was moved aside (kept, not deleted) and a new one was created"
        );
        status.moved_aside = Some(old.display().to_string());
    }
    apply_mode(&path, config.data.mode_bits());
    let mut store = store;
    prune(&mut store, config, &mut status);
    let spool = RemoteSpool::new(config);
    smol::block_on(serve(control, config, store, spool, status))
}

/// Gives the history's files `[data] mode`. SQLite creates its -wal and -shm files with
/// the database file's mode, so later ones follow; existing ones are set here too.
fn apply_mode(db: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %file.display(), mode = format_args!("{mode:04o}"), error = %e, "cannot apply [data] mode"),
        }
    }
}

fn prune(s: &mut Store, config: &Config, status: &mut WriterStatus) {
    if config.database.retention_days == 0 {
        return;
    }
    let cutoff = picosnitch_store::unix_days_ago(config.database.retention_days);
    match s.prune(cutoff) {
        Ok(r) => {
            status.rows_pruned += r.connections;
            if r.connections > 0 {
                tracing::info!(rows = r.connections, executables = r.executables, before = cutoff, "pruned rows past retention_days");
            }
        }
        Err(e) => tracing::error!(error = %e, "pruning old rows failed; will try again in an hour"),
    }
}

async fn serve(control: SeqPacket, config: &Config, store: Store, spool: Option<RemoteSpool>, mut status: WriterStatus) -> anyhow::Result<()> {
    let control: Control = Link::new(control)?;
    let mut store = store;
    let mut spool = spool;
    let mut primary: Option<PrimaryLink> = None;
    let mut next_status = Instant::now();
    let mut next_prune = Instant::now() + PRUNE_PERIOD;
    // A batch that could not be committed yet: retried before anything else is read.
    let mut held: Option<RowBatch> = None;
    let mut retry_at = Instant::now();
    loop {
        let deadline = if held.is_some() { next_status.min(retry_at) } else { next_status };
        let wake = futures_lite::future::or(
            async { Wake::Command(role::next_command(&control).await) },
            futures_lite::future::or(
                async {
                    match (&primary, &held) {
                        (Some(p), None) => Wake::Batch(p.recv().await),
                        _ => futures_lite::future::pending().await,
                    }
                },
                async {
                    Timer::at(deadline).await;
                    Wake::Tick
                },
            ),
        )
        .await;
        match wake {
            Wake::Command(cmd) => match cmd? {
                Command::Link(Role::Primary, sock) => {
                    let link = Link::new(sock)?;
                    // The primary resends what it has not seen acknowledged.
                    held = None;
                    if config.virustotal.enabled() {
                        tell_verdicts(&store, &link).await;
                    }
                    primary = Some(link);
                }
                Command::Link(other, _) => tracing::warn!(peer = %other, "ignoring a link the writer does not use"),
                Command::Probe(p, a) => role::answer_probe(&control, &p, a.as_deref()).await?,
                Command::Notice(_) => {}
                Command::Stop | Command::Closed => {
                    if let Some(b) = &held {
                        tracing::error!(rows = b.rows.len(), "stopping with a batch that could not be written");
                    }
                    return Ok(());
                }
            },
            Wake::Batch(Ok(Some(batch))) => held = Some(batch),
            Wake::Batch(Ok(None)) => {
                tracing::info!("primary closed its link; waiting for a new one");
                primary = None;
            }
            Wake::Batch(Err(e)) => {
                tracing::warn!(error = %e, "bad message from the primary; dropping the link");
                primary = None;
            }
            Wake::Tick => {}
        }
        if let Some(batch) = held.take() {
            if Instant::now() >= retry_at {
                let (s, sp, result, st) = commit(store, spool, batch.clone(), status).await;
                store = s;
                spool = sp;
                status = st;
                match result {
                    Ok(delivery) => {
                        match delivery {
                            Delivery::Inserted(n) => status.rows_written += n as u64,
                            Delivery::AlreadyDelivered => status.batches_duplicate += 1,
                        }
                        if let Some(e) = status.last_error.take() {
                            tracing::info!(was = %e, "the database is writable again");
                        }
                        if let Some(p) = &primary {
                            if let Err(e) = p.send(&RowAck { seq: batch.seq, have_verdicts: Vec::new() }).await {
                                tracing::warn!(error = %e, "primary link lost before the acknowledgement");
                                primary = None;
                            }
                        }
                    }
                    Err(CommitError::Batch(e)) => {
                        tracing::error!(error = %e, "dropping a malformed batch; this is a bug, please report it");
                        if let Some(p) = &primary {
                            let _ = p.send(&RowAck { seq: batch.seq, have_verdicts: Vec::new() }).await;
                        }
                    }
                    Err(CommitError::Store(e)) => {
                        let text = match &e {
                            StoreError::Full { .. } => format!("{e}; rows wait in memory up to [database] queue_limit, then are dropped and counted: free some space"),
                            _ => e.to_string(),
                        };
                        if status.last_error.as_deref() != Some(text.as_str()) {
                            tracing::error!(error = %text, "cannot write to the database; retrying");
                        }
                        status.last_error = Some(text);
                        held = Some(batch);
                        retry_at = Instant::now() + RETRY_PERIOD;
                    }
                }
            } else {
                held = Some(batch);
            }
        }
        let now = Instant::now();
        if now >= next_prune {
            let (s, st) = blocking::unblock({
                let mut store = store;
                let config = config.clone();
                let mut st = status.clone();
                move || {
                    prune(&mut store, &config, &mut st);
                    (store, st)
                }
            })
            .await;
            store = s;
            status = st;
            next_prune = now + PRUNE_PERIOD;
        }
        if now >= next_status {
            control.send(&FromRole::Status(RoleStatus::Writer(status.clone()))).await.context("reporting status")?;
            next_status = now + STATUS_PERIOD;
        }
    }
}

/// Tells a new primary which executables already have a VirusTotal verdict. A primary
/// that misses this (a failed read) only asks VirusTotal again.
async fn tell_verdicts(store: &Store, link: &PrimaryLink) {
    let hashes = match store.verdict_hashes() {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the stored VirusTotal verdicts; executables will be looked up again");
            return;
        }
    };
    for chunk in hashes.chunks(picosnitch_ipc::rows::VERDICTS_PER_ACK) {
        if let Err(e) = link.send(&RowAck { seq: 0, have_verdicts: chunk.to_vec() }).await {
            tracing::warn!(error = %e, "primary link lost while listing stored verdicts");
            return;
        }
    }
}

/// Commits one batch off the event loop, then spools it for the remote database (also
/// when the store already had it: the earlier writer may have died before spooling).
/// The store, spool and status travel to the blocking thread and back.
async fn commit(
    mut store: Store,
    mut spool: Option<RemoteSpool>,
    batch: RowBatch,
    mut status: WriterStatus,
) -> (Store, Option<RemoteSpool>, Result<Delivery, CommitError>, WriterStatus) {
    blocking::unblock(move || {
        let r = match batch.unpack() {
            Ok(rows) => store.insert_delivery(&batch.source, batch.seq, &rows, &batch.verdicts).map_err(CommitError::Store),
            Err(e) => Err(CommitError::Batch(e)),
        };
        if let (Ok(_), Some(sp)) = (&r, spool.as_mut()) {
            sp.put(&batch, &mut status);
        }
        (store, spool, r, status)
    })
    .await
}

#[derive(Debug, thiserror::Error)]
enum CommitError {
    #[error(transparent)]
    Store(StoreError),
    /// A batch that cannot be unpacked is dropped (with an error) rather than retried.
    #[error("a malformed row batch from the primary: {0}")]
    Batch(picosnitch_ipc::rows::BadIndex),
}
