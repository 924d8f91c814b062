//! One executable's way through VirusTotal, one request at a time: look the sha256 up;
//! if VirusTotal has never seen it and uploads are on, upload the file and follow its
//! analysis until it completes. Runs on a blocking thread; the role paces the steps.
use picosnitch_ipc::virustotal::VtRequest;
use picosnitch_store::{Verdict, VerdictResult};
use picosnitch_virustotal::{AnalysisState, Client, Lookup, Stats, VtError};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;

/// Polls of an upload's analysis before giving up with "not analysed yet" (at the
/// default 15 s pacing, about 5 minutes).
const MAX_POLLS: u32 = 20;

pub enum Stage {
    Lookup,
    Upload,
    Poll { id: String, polls: u32 },
}

pub struct Job {
    pub req: VtRequest,
    /// The executable, when it may be uploaded.
    pub fd: Option<OwnedFd>,
    pub stage: Stage,
    /// Transient failures so far (network, quota).
    pub attempts: u32,
}

pub enum Step {
    /// Another request is needed (upload, poll).
    Again,
    Done(Verdict),
    /// The verdict came from an upload.
    Uploaded(Verdict),
}

fn verdict(sha256: &str, result: VerdictResult, s: Stats) -> Verdict {
    Verdict {
        sha256: sha256.to_string(),
        checked: picosnitch_store::unix_now(),
        result,
        malicious: s.malicious,
        suspicious: s.suspicious,
        undetected: s.undetected,
        harmless: s.harmless,
    }
}

/// Reads a file by offset from 0: the descriptor is shared with the primary and the
/// hasher, so its file position means nothing here.
struct FromStart<'a> {
    file: &'a std::fs::File,
    pos: u64,
}

impl std::io::Read for FromStart<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Makes the job's next request.
pub fn step(client: &Client, job: &mut Job, upload_max: u64) -> Result<Step, VtError> {
    let sha = job.req.sha256.clone();
    match &mut job.stage {
        Stage::Lookup => match client.lookup(&sha)? {
            Lookup::Known(s) => Ok(Step::Done(verdict(&sha, VerdictResult::Analysed, s))),
            Lookup::Unanalysed => Ok(Step::Done(verdict(&sha, VerdictResult::Unanalysed, Stats::default()))),
            Lookup::NotFound => {
                let size = match &job.fd {
                    Some(fd) => std::fs::File::from(fd.try_clone().map_err(VtError::File)?).metadata().map_err(VtError::File)?.len(),
                    None => return Ok(Step::Done(verdict(&sha, VerdictResult::NotFound, Stats::default()))),
                };
                if size > upload_max {
                    tracing::info!(exe = %job.req.exe, size, limit = upload_max, "not uploading to VirusTotal: larger than [virustotal] upload_max_mib");
                    return Ok(Step::Done(verdict(&sha, VerdictResult::NotFound, Stats::default())));
                }
                job.stage = Stage::Upload;
                Ok(Step::Again)
            }
        },
        Stage::Upload => {
            let Some(fd) = &job.fd else { return Ok(Step::Done(verdict(&sha, VerdictResult::NotFound, Stats::default()))) };
            let file = std::fs::File::from(fd.try_clone().map_err(VtError::File)?);
            let size = file.metadata().map_err(VtError::File)?.len();
            let name = job.req.exe.rsplit('/').next().unwrap_or("executable").to_string();
            let id = client.upload(&mut FromStart { file: &file, pos: 0 }, size, &name)?;
            tracing::info!(exe = %job.req.exe, sha256 = %sha, analysis = %id, "uploaded to VirusTotal");
            // The upload is done: the descriptor is not needed any more.
            job.fd = None;
            job.stage = Stage::Poll { id, polls: 0 };
            Ok(Step::Again)
        }
        Stage::Poll { id, polls } => {
            *polls += 1;
            match client.analysis(id)? {
                AnalysisState::Completed(s) => Ok(Step::Uploaded(verdict(&sha, VerdictResult::Analysed, s))),
                AnalysisState::Pending if *polls >= MAX_POLLS => {
                    tracing::warn!(exe = %job.req.exe, analysis = %id, "VirusTotal's analysis of the upload did not complete in time");
                    Ok(Step::Uploaded(verdict(&sha, VerdictResult::Unanalysed, Stats::default())))
                }
                AnalysisState::Pending => Ok(Step::Again),
            }
        }
    }
}
