//! What can keep rows from the remote database, each as a sentence that says what to do.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("reading [database.remote] {key} {}: {source}; it is read as root when the daemon starts", path.display())]
    ReadFile { key: &'static str, path: PathBuf, source: std::io::Error },
    #[error("[database.remote] ca_file {}: {why}", path.display())]
    CaFile { path: PathBuf, why: String },
    #[error("no trusted root certificates for tls = \"verify-full\": {0}; install the system's CA bundle or set [database.remote] ca_file")]
    NoRoots(String),
    #[error("cannot reach {server}: {why}; rows wait in the spool")]
    Unreachable { server: String, why: String },
    #[error("{server} refused the login of {user:?}: {message}; check [database.remote] user and password_file")]
    Login { server: String, user: String, message: String },
    #[error("TLS with {server} failed: {why}; the server's certificate must be signed by a CA in [database.remote] ca_file (or the system's roots) and name {host:?}")]
    Tls { server: String, host: String, why: String },
    #[error("{server} does not offer TLS; enable ssl on the server, or set [database.remote] tls = \"disable\" on loopback or a trusted link only")]
    NoTls { server: String },
    #[error("the remote database is not ready for picosnitch: {0}; run the SQL that `picosnitch remote-schema` prints there, as the database owner")]
    Schema(String),
    #[error("the remote database refused the rows: {0}")]
    Refused(String),
    #[error("the remote database connection failed: {0}")]
    Connection(String),
    #[error("the remote database did not answer within {0} s")]
    Timeout(u64),
}

impl RemoteError {
    /// The server judged the data itself invalid (not the connection, login or
    /// schema): retrying the same batch cannot succeed.
    pub fn is_data_error(&self) -> bool {
        matches!(self, RemoteError::Refused(_))
    }
}

/// An error's whole chain, since tokio-postgres and rustls put the useful part in the
/// sources ("error performing TLS handshake: invalid peer certificate: UnknownIssuer").
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
