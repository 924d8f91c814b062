//! The API key (and an optional CA certificate) travel from the supervisor to the
//! virustotal role through a pipe at fd 5: the supervisor reads the files, which may
//! be readable by root only (systemd credentials), and the role, which may open no
//! file at all, reads the pipe before it confines itself.
use anyhow::Context;
use picosnitch_config::VirusTotalConfig;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

/// Where the supervisor puts the pipe (the primary gets the live feed there).
pub const SECRETS_FD: i32 = crate::role::FEED_FD;

/// Well under a pipe's 64 KiB buffer, so the supervisor's write never waits.
const MAX_KEY: u64 = 1024;
const MAX_CA: u64 = 32 * 1024;

#[derive(Serialize, Deserialize)]
pub struct Secrets {
    pub api_key: String,
    pub ca_pem: Option<String>,
}

fn read_capped(path: &std::path::Path, cap: u64, what: &str) -> anyhow::Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {what} {}", path.display()))?;
    let mut text = String::new();
    file.take(cap + 1).read_to_string(&mut text).with_context(|| format!("reading {what} {}", path.display()))?;
    if text.len() as u64 > cap {
        anyhow::bail!("{what} {} is longer than {cap} bytes: is it the right file?", path.display());
    }
    Ok(text)
}

/// Supervisor side: the secrets from the configuration, in a pipe whose read end goes
/// to the role. Read again at every start of the role, so a new key needs no daemon
/// restart, only the role's.
pub fn pipe_for_role(vt: &VirusTotalConfig) -> anyhow::Result<OwnedFd> {
    let api_key = if vt.api_key_file.as_os_str().is_empty() {
        vt.api_key.clone()
    } else {
        read_capped(&vt.api_key_file, MAX_KEY, "the VirusTotal API key file ([virustotal] api_key_file)")?.trim().to_string()
    };
    if api_key.is_empty() || api_key.chars().any(|c| c.is_control() || c.is_whitespace()) {
        anyhow::bail!("the VirusTotal API key is empty or has spaces or control characters: put the key alone in [virustotal] api_key_file");
    }
    let ca_pem = if vt.ca_file.as_os_str().is_empty() {
        None
    } else {
        Some(read_capped(&vt.ca_file, MAX_CA, "the CA certificate ([virustotal] ca_file)")?)
    };
    let payload = serde_json::to_vec(&Secrets { api_key, ca_pem }).context("encoding the VirusTotal secrets")?;
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("creating the secrets pipe")?;
    let mut write = std::fs::File::from(write);
    write.write_all(&payload).context("writing the secrets pipe")?;
    Ok(read)
}

/// Role side: reads the pipe at fd 5 to its end, and closes it.
pub fn take() -> anyhow::Result<Secrets> {
    // SAFETY: fcntl(F_GETFD) on any integer is safe; it only tells whether it is open.
    if unsafe { libc::fcntl(SECRETS_FD, libc::F_GETFD) } < 0 {
        anyhow::bail!("started without the API key at fd {SECRETS_FD}: the virustotal role is started by `picosnitch daemon`");
    }
    // SAFETY: the fd is open and the supervisor placed it there for this process; from
    // here on it is owned once and closed when read.
    let fd = unsafe { OwnedFd::from_raw_fd(SECRETS_FD) };
    let mut text = Vec::new();
    std::fs::File::from(fd).take(MAX_KEY + MAX_CA + 1024).read_to_end(&mut text).context("reading the API key from the supervisor")?;
    serde_json::from_slice(&text).context("the supervisor's secrets pipe did not hold the API key")
}
