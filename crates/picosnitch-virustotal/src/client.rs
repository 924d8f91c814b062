//! The HTTPS requests. Blocking (ureq): the role runs them on a `blocking` thread, one
//! at a time, paced by [`crate::Pacing`]. TLS is always verified, against Mozilla's
//! roots compiled into the binary (no CA files are read at run time) or, when
//! `[virustotal] ca_file` is set, against that certificate alone.
use crate::api::{self, AnalysisState, Stats};
use crate::error::VtError;
use std::io::Read;
use std::time::Duration;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// Answers are small JSON documents; a file report with every engine's result is
/// about 100 KiB.
const MAX_ANSWER: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://www.virustotal.com`, or a test server.
    pub api_url: String,
    pub api_key: String,
    /// PEM of the only CA to trust instead of the built-in roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Whole request, connect to last byte.
    pub timeout: Duration,
}

/// What VirusTotal knows about a sha256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Known(Stats),
    /// Known but not analysed yet (no `last_analysis_stats`).
    Unanalysed,
    /// 404 NotFoundError: VirusTotal has never seen the file.
    NotFound,
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    key: String,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, VtError> {
        let roots = match &config.ca_pem {
            Some(pem) => {
                let cert = Certificate::from_pem(pem).map_err(|e| VtError::BadCertificate(e.to_string()))?;
                RootCerts::new_with_certs(&[cert.to_owned()])
            }
            None => RootCerts::WebPki,
        };
        let tls = TlsConfig::builder().root_certs(roots).build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            // The role may connect to the API's port only: no proxies from the
            // environment, no redirects elsewhere.
            .proxy(None)
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(config.timeout))
            .user_agent(concat!("picosnitch/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client { agent, base: config.api_url.trim_end_matches('/').to_string(), key: config.api_key })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v3/{path}", self.base)
    }

    /// `GET /api/v3/files/{sha256}`.
    pub fn lookup(&self, sha256: &str) -> Result<Lookup, VtError> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(VtError::Api { status: 0, code: "InvalidArgument".into(), message: format!("{sha256:?} is not a sha256") });
        }
        let url = self.url(&format!("files/{}", sha256.to_ascii_lowercase()));
        let (status, body) = self.exchange(&url, self.agent.get(&url).header("x-apikey", &self.key).call())?;
        match status {
            200 => Ok(api::parse_file(&body)?.map_or(Lookup::Unanalysed, Lookup::Known)),
            404 if api::parse_error(status, &body).code == "NotFoundError" => Ok(Lookup::NotFound),
            _ => Err(error_answer(status, &body)),
        }
    }

    /// `POST /api/v3/files` (multipart, field `file`): the analysis id. The file is
    /// streamed from `file`, whose size is `size`.
    pub fn upload(&self, file: &mut dyn Read, size: u64, name: &str) -> Result<String, VtError> {
        if size > crate::MAX_SIMPLE_UPLOAD {
            return Err(VtError::TooLarge { size, limit: crate::MAX_SIMPLE_UPLOAD });
        }
        let boundary = format!("picosnitch-{:016x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
        let name: String = name.chars().filter(|c| !c.is_control() && *c != '"' && *c != '\\').collect();
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let length = head.len() as u64 + size + tail.len() as u64;
        // Exactly `size` bytes of the file, even if it grew since it was measured.
        let mut body = std::io::Cursor::new(head.into_bytes()).chain(file.take(size)).chain(std::io::Cursor::new(tail.into_bytes()));
        let url = self.url("files");
        let sent = self
            .agent
            .post(&url)
            .header("x-apikey", &self.key)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .header("content-length", length.to_string())
            .send(ureq::SendBody::from_reader(&mut body));
        let (status, answer) = self.exchange(&url, sent)?;
        match status {
            200 => api::parse_upload(&answer),
            _ => Err(error_answer(status, &answer)),
        }
    }

    /// `GET /api/v3/analyses/{id}`.
    pub fn analysis(&self, id: &str) -> Result<AnalysisState, VtError> {
        let url = self.url(&format!("analyses/{}", encode_segment(id)));
        let (status, body) = self.exchange(&url, self.agent.get(&url).header("x-apikey", &self.key).call())?;
        match status {
            200 => api::parse_analysis(&body),
            _ => Err(error_answer(status, &body)),
        }
    }

    fn exchange(&self, url: &str, sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<(u16, String), VtError> {
        let transport = |source| VtError::Transport { url: url.to_string(), source };
        let mut response = sent.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.body_mut().with_config().limit(MAX_ANSWER).read_to_string().map_err(transport)?;
        Ok((status, body))
    }
}

fn error_answer(status: u16, body: &str) -> VtError {
    let e = api::parse_error(status, body);
    match (status, e.code.as_str()) {
        (429, _) | (_, "QuotaExceededError") => VtError::Quota { message: e.message },
        (401, _) | (_, "WrongCredentialsError" | "AuthenticationRequiredError" | "UserNotActiveError") => {
            VtError::Credentials { code: e.code, message: e.message }
        }
        _ => VtError::Api { status, code: e.code, message: e.message },
    }
}

/// An analysis id (base64) as one path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn analysis_ids_stay_one_segment() {
        assert_eq!(super::encode_segment("ab+/c=="), "ab%2B%2Fc==");
    }
}
