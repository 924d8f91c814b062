//! The writer's side of the remote copy: each batch, once committed locally, is put in
//! the spool before it is acknowledged, so a writer that dies in between is sent the
//! batch again and spools it again (the remote skips what it already has). The writer
//! never waits for the remote database; it only appends to files. A full spool drops
//! rows for the remote (the local history keeps them), counted and logged.
use picosnitch_config::Config;
use picosnitch_ipc::rows::RowBatch;
use picosnitch_ipc::status::WriterStatus;
use picosnitch_spool::{Appended, Appender};
use std::path::PathBuf;

pub struct RemoteSpool {
    dir: PathBuf,
    limit: u64,
    appender: Option<Appender>,
    full: bool,
}

impl RemoteSpool {
    /// `None` when no remote database is configured.
    pub fn new(config: &Config) -> Option<RemoteSpool> {
        let remote = config.database.remote.as_ref()?;
        Some(RemoteSpool { dir: crate::remote::spool_dir(config), limit: remote.spool_limit_bytes, appender: None, full: false })
    }

    /// Spools one committed batch, counting what could not be.
    pub fn put(&mut self, batch: &RowBatch, status: &mut WriterStatus) {
        let rows = batch.rows.len() as u64;
        let result = self.append(batch);
        match result {
            Ok(Appended::Stored { .. }) => {
                status.remote_rows_spooled += rows;
                if self.full || status.remote_spool_error.is_some() {
                    tracing::info!("the remote spool takes rows again");
                    self.full = false;
                    status.remote_spool_error = None;
                }
            }
            Ok(Appended::Full { bytes_used, .. }) => {
                status.remote_rows_dropped += rows;
                if !self.full {
                    self.full = true;
                    status.remote_spool_full_events += 1;
                    let text = format!(
                        "the remote spool is full ({bytes_used} bytes, [database.remote] spool_limit_bytes = {}): rows for the remote database are dropped (the local history keeps them) until it drains",
                        self.limit
                    );
                    tracing::error!(error = %text, dir = %self.dir.display(), "remote spool full");
                    status.remote_spool_error = Some(text);
                }
            }
            Err(text) => {
                status.remote_rows_dropped += rows;
                if status.remote_spool_error.as_deref() != Some(text.as_str()) {
                    tracing::error!(error = %text, rows, "cannot spool rows for the remote database; they are dropped for it (the local history keeps them)");
                }
                status.remote_spool_error = Some(text);
            }
        }
    }

    fn append(&mut self, batch: &RowBatch) -> Result<Appended, String> {
        let bytes = picosnitch_ipc::link::encode(batch).map_err(|e| format!("encoding a batch for the spool: {e}"))?;
        if self.appender.is_none() {
            self.appender = Some(Appender::open(&self.dir, self.limit).map_err(|e| e.to_string())?);
        }
        let Some(a) = self.appender.as_mut() else { return Err("the spool is not open".into()) };
        a.append(&bytes).map_err(|e| {
            // Reopened next time: a new segment after whatever this left behind.
            self.appender = None;
            e.to_string()
        })
    }
}
