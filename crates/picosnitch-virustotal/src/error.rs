use thiserror::Error;

/// What went wrong talking to VirusTotal. Each variant says what to do about it.
#[derive(Debug, Error)]
pub enum VtError {
    /// 401 WrongCredentialsError, AuthenticationRequiredError, UserNotActiveError.
    #[error("VirusTotal refused the API key ({code}: {message}); check [virustotal] api_key_file")]
    Credentials { code: String, message: String },
    /// 429 QuotaExceededError (per minute, day or month).
    #[error("VirusTotal quota exceeded ({message}); waiting longer between requests")]
    Quota { message: String },
    /// Any other error answer.
    #[error("VirusTotal answered {status} {code}: {message}")]
    Api { status: u16, code: String, message: String },
    /// An answer that is not the JSON VirusTotal documents.
    #[error("VirusTotal's answer to {what} could not be read: {why}")]
    Malformed { what: &'static str, why: String },
    /// Connection, TLS or timeout.
    #[error("cannot reach VirusTotal at {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: ureq::Error,
    },
    #[error("reading the file to upload: {0}")]
    File(#[source] std::io::Error),
    #[error("the file is {size} bytes, more than the upload limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("the CA certificate for [virustotal] is not a PEM certificate: {0}")]
    BadCertificate(String),
}

impl VtError {
    /// Whether waiting (and asking again later) may help.
    pub fn is_transient(&self) -> bool {
        match self {
            VtError::Quota { .. } | VtError::Transport { .. } => true,
            VtError::Api { status, .. } => *status >= 500 || *status == 424,
            _ => false,
        }
    }
}
