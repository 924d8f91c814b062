//! A local stand-in for VirusTotal, for tests (feature `fake-server`): HTTPS on
//! 127.0.0.1 with a certificate made at start, answering the part of the v3 API the
//! client uses with the real JSON shapes, including its error and quota answers:
//!
//! - `GET /api/v3/files/{sha256}`: 200 with `last_analysis_stats` for a known file,
//!   404 `NotFoundError` otherwise;
//! - `POST /api/v3/files` (multipart): 200 with an analysis descriptor; the file is
//!   known from then on;
//! - `GET /api/v3/analyses/{id}`: `queued` on the first poll, then `completed`;
//! - 401 `WrongCredentialsError` for any other API key; 429 `QuotaExceededError` once
//!   the quota set by [`FakeVirusTotal::set_quota`] is spent.
//!
//! Every request is recorded with its time, for assertions on pacing.
use crate::api::Stats;
use sha2::Digest;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// When its request line arrived.
    pub at: Instant,
    /// For uploads: sha256 and size of the file's bytes.
    pub uploaded: Option<(String, usize)>,
}

#[derive(Default)]
struct State {
    api_key: String,
    files: HashMap<String, Option<Stats>>,
    /// Stats an uploaded file's analysis completes with.
    upload_verdict: Stats,
    analyses: HashMap<String, (u32, String)>,
    quota: Option<u32>,
    requests: Vec<Recorded>,
}

pub struct FakeVirusTotal {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakeVirusTotal {
    /// Starts serving at once on a free loopback port; accepts only `api_key`.
    pub fn start(api_key: &str) -> std::io::Result<FakeVirusTotal> {
        let io = |e: rcgen::Error| std::io::Error::other(e.to_string());
        let ca_key = rcgen::KeyPair::generate().map_err(io)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(io)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "picosnitch test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(io)?;
        let leaf_key = rcgen::KeyPair::generate().map_err(io)?;
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(io)?
            .signed_by(&leaf_key, &ca)
            .map_err(io)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .map_err(std::io::Error::other)?;
        let tls = Arc::new(tls);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State { api_key: api_key.to_string(), ..Default::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (tls, state) = (Arc::clone(&tls), Arc::clone(&state));
                            std::thread::spawn(move || {
                                let _ = serve_connection(stream, tls, &state);
                            });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Ok(FakeVirusTotal { addr, ca_pem: ca.pem(), state, stop, thread: Some(thread) })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The CA that signed the server's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// VirusTotal knows this file, with these stats (`None`: not analysed yet).
    pub fn add_file(&self, sha256: &str, stats: Option<Stats>) {
        lock(&self.state).files.insert(sha256.to_ascii_lowercase(), stats);
    }

    pub fn set_upload_verdict(&self, stats: Stats) {
        lock(&self.state).upload_verdict = stats;
    }

    /// From now on only this key is accepted.
    pub fn set_api_key(&self, key: &str) {
        lock(&self.state).api_key = key.to_string();
    }

    /// Answer this many more requests, then 429 to all (`None`: no quota).
    pub fn set_quota(&self, left: Option<u32>) {
        lock(&self.state).quota = left;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }
}

impl Drop for FakeVirusTotal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_connection(stream: TcpStream, tls: Arc<rustls::ServerConfig>, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    // Keep-alive: requests on one connection until the client closes it (bounded).
    for _ in 0..1000 {
        let mut reader = BufReader::new(&mut tls);
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        // When the request began: what a pacing check compares (an upload's body takes a while).
        let at = Instant::now();
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; len.min(64 * 1024 * 1024)];
        reader.read_exact(&mut body)?;
        drop(reader);
        let (status, json, uploaded) = answer(state, &method, &path, &headers, &body);
        lock(state).requests.push(Recorded { method, path, status, at, uploaded });
        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            404 => "Not Found",
            429 => "Too Many Requests",
            _ => "Bad Request",
        };
        write!(tls, "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}", json.len())?;
        tls.flush()?;
    }
    Ok(())
}

fn error(status: u16, code: &str, message: &str) -> (u16, String, Option<(String, usize)>) {
    (status, serde_json::json!({"error": {"code": code, "message": message}}).to_string(), None)
}

fn stats_json(s: &Stats) -> serde_json::Value {
    serde_json::to_value(s).unwrap_or_default()
}

fn answer(
    state: &Mutex<State>,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> (u16, String, Option<(String, usize)>) {
    let mut st = lock(state);
    if headers.get("x-apikey") != Some(&st.api_key) {
        return error(401, "WrongCredentialsError", "Wrong API key");
    }
    if let Some(q) = st.quota.as_mut() {
        if *q == 0 {
            return error(429, "QuotaExceededError", "Quota exceeded");
        }
        *q -= 1;
    }
    if let (Some(sha), "GET") = (path.strip_prefix("/api/v3/files/"), method) {
        return match st.files.get(sha) {
            Some(stats) => {
                let mut attributes = serde_json::json!({"sha256": sha, "size": 1234, "meaningful_name": "test", "type_tag": "elf"});
                if let Some(s) = stats {
                    attributes["last_analysis_stats"] = stats_json(s);
                    attributes["last_analysis_date"] = 1_700_000_000.into();
                }
                let doc = serde_json::json!({"data": {"type": "file", "id": sha, "links": {"self": format!("https://www.virustotal.com/api/v3/files/{sha}")}, "attributes": attributes}});
                (200, doc.to_string(), None)
            }
            None => error(404, "NotFoundError", &format!("File \"{sha}\" not found")),
        };
    }
    if path == "/api/v3/files" && method == "POST" {
        let Some(content) = multipart_file(headers.get("content-type").map(String::as_str).unwrap_or(""), body) else {
            return error(400, "BadRequestError", "no file in the request");
        };
        let sha = sha2::Sha256::digest(content).iter().map(|b| format!("{b:02x}")).collect::<String>();
        let id = format!("{}OjE3MDAwMDAwMDA=", st.analyses.len() + 1);
        st.analyses.insert(id.clone(), (0, sha.clone()));
        let doc = serde_json::json!({"data": {"type": "analysis", "id": id, "links": {"self": format!("https://www.virustotal.com/api/v3/analyses/{id}")}}});
        return (200, doc.to_string(), Some((sha, content.len())));
    }
    if let (Some(id), "GET") = (path.strip_prefix("/api/v3/analyses/"), method) {
        let verdict = st.upload_verdict;
        let Some((polls, sha)) = st.analyses.get_mut(id) else {
            return error(404, "NotFoundError", &format!("Analysis \"{id}\" not found"));
        };
        *polls += 1;
        let (status, stats) = if *polls == 1 { ("queued", Stats::default()) } else { ("completed", verdict) };
        let sha = sha.clone();
        if status == "completed" {
            st.files.insert(sha.clone(), Some(verdict));
        }
        let doc = serde_json::json!({"data": {"type": "analysis", "id": id, "attributes": {"date": 1_700_000_000, "status": status, "stats": stats_json(&stats), "results": {}}},
            "meta": {"file_info": {"sha256": sha}}});
        return (200, doc.to_string(), None);
    }
    error(400, "BadRequestError", &format!("{method} {path} is not part of this fake"))
}

/// The bytes of the `file` part of a multipart/form-data body.
fn multipart_file<'a>(content_type: &str, body: &'a [u8]) -> Option<&'a [u8]> {
    let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
    let open = format!("--{boundary}\r\n");
    let close = format!("\r\n--{boundary}--");
    let start = find(body, open.as_bytes())? + open.len();
    let headers_end = start + find(&body[start..], b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&body[start..headers_end]).ok()?;
    if !head.contains("name=\"file\"") {
        return None;
    }
    let end = headers_end + find(&body[headers_end..], close.as_bytes())?;
    Some(&body[headers_end..end])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
