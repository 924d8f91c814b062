//! TLS settings, built before the role confines itself: the trust anchors are read
//! from `ca_file` or the system's store then, and never again.
use crate::error::RemoteError;
use picosnitch_config::TlsMode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;

/// How the connection is protected.
#[derive(Clone)]
pub enum Tls {
    Disabled,
    /// The server's certificate chain and host name are verified (libpq's verify-full).
    Verified { config: Arc<rustls::ClientConfig>, description: String },
}

impl Tls {
    pub fn load(mode: TlsMode, ca_file: &Path) -> Result<Tls, RemoteError> {
        match mode {
            TlsMode::Disable => Ok(Tls::Disabled),
            TlsMode::VerifyFull => {
                let mut roots = rustls::RootCertStore::empty();
                let description = if ca_file.as_os_str().is_empty() {
                    let found = rustls_native_certs::load_native_certs();
                    let (added, _) = roots.add_parsable_certificates(found.certs);
                    if added == 0 {
                        let why = found.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                        return Err(RemoteError::NoRoots(if why.is_empty() { "the system's store is empty".into() } else { why }));
                    }
                    format!("TLS, server certificate and host name verified against the system's {added} root certificates")
                } else {
                    let text = std::fs::read(ca_file)
                        .map_err(|source| RemoteError::ReadFile { key: "ca_file", path: ca_file.to_path_buf(), source })?;
                    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&text)
                        .collect::<Result<_, _>>()
                        .map_err(|e| RemoteError::CaFile { path: ca_file.to_path_buf(), why: format!("not a PEM file: {e}") })?;
                    let (added, bad) = roots.add_parsable_certificates(certs);
                    if added == 0 {
                        return Err(RemoteError::CaFile {
                            path: ca_file.to_path_buf(),
                            why: format!("holds no usable CA certificate ({bad} unparsable)"),
                        });
                    }
                    format!("TLS, server certificate and host name verified against {}", ca_file.display())
                };
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| RemoteError::Tls { server: String::new(), host: String::new(), why: e.to_string() })?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Ok(Tls::Verified { config: Arc::new(config), description })
            }
        }
    }

    pub fn description(&self) -> String {
        match self {
            Tls::Disabled => "no TLS (tls = \"disable\"): only for loopback or a trusted link".into(),
            Tls::Verified { description, .. } => description.clone(),
        }
    }
}
