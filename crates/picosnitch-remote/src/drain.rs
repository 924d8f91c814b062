//! The delivery loop: the spool's batches, oldest first, to the remote database, in
//! groups of one transaction each; through outages it keeps trying (1 s, doubling, at
//! most every 10 s) while the writer keeps spooling. A record is consumed from the
//! spool only after the transaction holding it committed, and the server skips batches
//! it already has, so every row arrives exactly once whatever is interrupted when.
use crate::error::RemoteError;
use crate::session::Session;
use crate::settings::Settings;
use async_io::Timer;
use picosnitch_ipc::rows::RowBatch;
use picosnitch_ipc::status::RemoteStatus;
use picosnitch_spool::Reader;
use std::cell::RefCell;
use std::future::Future;
use std::net::TcpStream;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How the loop gets a TCP connection to the server: from the supervisor in the
/// daemon (the role may not connect itself), directly in tests and the benchmark.
pub trait Connector {
    /// A stream connected to the configured server, and the address it reached.
    fn connect(&mut self) -> impl Future<Output = Result<(TcpStream, String), String>>;
}

/// Batches per transaction while catching up: fewer commits, and still small enough
/// that one transaction stays well under a second.
pub const GROUP_BATCHES: usize = 64;
const GROUP_BYTES: usize = 8 << 20;
const IDLE_POLL: Duration = Duration::from_millis(500);
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Delivered (or skipped) something; there may be more.
    Progress,
    /// The spool is empty.
    Idle,
    /// Not connected; the next attempt is due then.
    Waiting(Instant),
}

pub struct Drain<C: Connector> {
    settings: Settings,
    connector: C,
    reader: Reader,
    session: Option<Session>,
    status: Rc<RefCell<RemoteStatus>>,
    retry_at: Instant,
    retry_wait: Duration,
    /// After the server refused a group as invalid data: one batch at a time, to find it.
    one_at_a_time: bool,
    usage_at: Instant,
}

async fn within<T>(limit: Duration, f: impl Future<Output = Result<T, RemoteError>>) -> Result<T, RemoteError> {
    futures_lite::future::or(f, async {
        Timer::after(limit).await;
        Err(RemoteError::Timeout(limit.as_secs()))
    })
    .await
}

impl<C: Connector> Drain<C> {
    pub fn new(settings: Settings, connector: C, spool: &Path, status: Rc<RefCell<RemoteStatus>>) -> Drain<C> {
        {
            let mut st = status.borrow_mut();
            st.server = settings.server();
            st.tls = settings.tls.description();
        }
        Drain {
            settings,
            connector,
            reader: Reader::new(spool),
            session: None,
            status,
            retry_at: Instant::now(),
            retry_wait: FIRST_RETRY,
            one_at_a_time: false,
            usage_at: Instant::now(),
        }
    }

    /// Steps forever, sleeping while idle or waiting to retry.
    pub async fn run(&mut self) {
        loop {
            match self.step().await {
                Step::Progress => {}
                Step::Idle => {
                    Timer::after(IDLE_POLL).await;
                }
                Step::Waiting(at) => {
                    Timer::at(at.min(Instant::now() + IDLE_POLL)).await;
                }
            }
        }
    }

    /// One piece of work: connect if needed, then deliver one group.
    pub async fn step(&mut self) -> Step {
        if self.usage_at <= Instant::now() {
            self.note_usage();
        }
        if self.session.is_none() {
            if Instant::now() < self.retry_at {
                return Step::Waiting(self.retry_at);
            }
            match self.login().await {
                Ok(session) => {
                    let mut st = self.status.borrow_mut();
                    st.connected = true;
                    st.connects += 1;
                    st.warnings = session.warnings.clone();
                    for w in &session.warnings {
                        tracing::warn!(warning = %w, "remote database");
                    }
                    if let Some(was) = st.last_error.take() {
                        tracing::info!(server = %st.server, peer = st.peer.as_deref().unwrap_or(""), %was, "remote database reachable again; delivering the spool");
                    } else {
                        tracing::info!(server = %st.server, peer = st.peer.as_deref().unwrap_or(""), tls = %st.tls, "connected to the remote database");
                    }
                    self.retry_wait = FIRST_RETRY;
                    drop(st);
                    self.session = Some(session);
                }
                Err(e) => {
                    self.fail(&e);
                    return Step::Waiting(self.retry_at);
                }
            }
        }
        let max = if self.one_at_a_time { 1 } else { GROUP_BATCHES };
        let records = match self.reader.peek(max, GROUP_BYTES) {
            Ok(r) => r,
            Err(e) => {
                let text = format!("reading the spool: {e}");
                self.note_error(&text);
                self.retry_at = Instant::now() + MAX_RETRY;
                return Step::Waiting(self.retry_at);
            }
        };
        if records.is_empty() {
            self.one_at_a_time = false;
            self.note_usage();
            return Step::Idle;
        }
        let mut batches: Vec<RowBatch> = Vec::with_capacity(records.len());
        for r in &records {
            match decode_batch(&r.payload) {
                Ok(b) => batches.push(b),
                Err(e) if batches.is_empty() => {
                    // Nothing before it waits: consume it, counted, or it blocks the rest.
                    self.status.borrow_mut().records_undecodable += 1;
                    tracing::error!(error = %e, bytes = r.payload.len(), "a spooled record cannot be decoded (written by another version?); skipping it");
                    self.consume(r.end);
                    return Step::Progress;
                }
                Err(_) => break,
            }
        }
        let end = records[batches.len() - 1].end;
        let Some(session) = self.session.as_mut() else { return Step::Idle };
        match within(DELIVERY_TIMEOUT, session.deliver(&self.settings.machine, &batches)).await {
            Ok(d) => {
                self.consume(end);
                self.one_at_a_time = false;
                let mut st = self.status.borrow_mut();
                st.rows_delivered += d.rows;
                st.batches_delivered += d.batches_new;
                st.batches_duplicate += d.batches_duplicate;
                st.last_delivery_unix = picosnitch_store::unix_now();
                Step::Progress
            }
            Err(e) if e.is_data_error() && batches.len() > 1 => {
                tracing::warn!(error = %e, batches = batches.len(), "the remote database refused a group of batches; retrying them one at a time");
                self.one_at_a_time = true;
                Step::Progress
            }
            Err(e) if e.is_data_error() => {
                let rows = batches[0].rows.len() as u64;
                tracing::error!(error = %e, rows, seq = batches[0].seq, "the remote database refused a batch; its rows are in the local history only");
                {
                    let mut st = self.status.borrow_mut();
                    st.batches_rejected += 1;
                    st.rows_rejected += rows;
                }
                self.consume(end);
                Step::Progress
            }
            Err(e) => {
                self.fail(&e);
                Step::Waiting(self.retry_at)
            }
        }
    }

    async fn login(&mut self) -> Result<Session, RemoteError> {
        let (stream, peer) = match within(LOGIN_TIMEOUT, async {
            self.connector.connect().await.map_err(|why| RemoteError::Unreachable { server: self.settings.server(), why })
        })
        .await
        {
            Ok(c) => c,
            Err(RemoteError::Timeout(s)) => {
                return Err(RemoteError::Unreachable { server: self.settings.server(), why: format!("no connection within {s} s") })
            }
            Err(e) => return Err(e),
        };
        self.status.borrow_mut().peer = Some(peer);
        within(LOGIN_TIMEOUT, Session::open(stream, &self.settings)).await
    }

    fn fail(&mut self, e: &RemoteError) {
        self.session = None;
        {
            let mut st = self.status.borrow_mut();
            st.connected = false;
        }
        self.note_error(&e.to_string());
        self.retry_at = Instant::now() + self.retry_wait;
        self.retry_wait = (self.retry_wait * 2).min(MAX_RETRY);
    }

    fn note_error(&self, text: &str) {
        let mut st = self.status.borrow_mut();
        if st.last_error.as_deref() != Some(text) {
            tracing::error!(error = %text, "remote database: not delivering; rows wait in the spool and the local history goes on");
        } else {
            tracing::debug!(error = %text, "remote database still failing");
        }
        st.last_error = Some(text.to_string());
    }

    fn consume(&mut self, end: picosnitch_spool::Position) {
        if let Err(e) = self.reader.consume(end) {
            self.note_error(&format!("removing delivered spool segments: {e}"));
        }
        self.note_usage();
    }

    fn note_usage(&mut self) {
        self.usage_at = Instant::now() + Duration::from_secs(1);
        let mut st = self.status.borrow_mut();
        st.torn_tails = self.reader.torn_tails;
        if let Ok(u) = picosnitch_spool::usage(self.reader.dir()) {
            st.spool_bytes = u.bytes;
            st.spool_segments = u.segments;
        }
    }
}

/// A spooled record as the batch the writer spooled.
pub fn decode_batch(payload: &[u8]) -> Result<RowBatch, postcard::Error> {
    postcard::from_bytes(payload)
}

/// Resolves `host` and connects to the first of its addresses that answers on
/// `port`, each given `timeout`. The socket gets keepalives and a user timeout, so a
/// server that vanished is noticed within about a minute even mid-transaction.
pub async fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<(TcpStream, String), String> {
    use std::net::ToSocketAddrs;
    let target = (host.to_string(), port);
    let addrs: Vec<std::net::SocketAddr> = blocking::unblock(move || target.to_socket_addrs().map(Iterator::collect))
        .await
        .map_err(|e| format!("resolving {host}: {e}"))?;
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    let mut errors = Vec::new();
    for addr in addrs {
        let attempt = futures_lite::future::or(async { async_io::Async::<TcpStream>::connect(addr).await.map_err(|e| e.to_string()) }, async {
            Timer::after(timeout).await;
            Err(format!("no answer within {} s", timeout.as_secs()))
        })
        .await;
        match attempt.and_then(|s| s.into_inner().map_err(|e| e.to_string())) {
            Ok(stream) => {
                tune(&stream);
                return Ok((stream, addr.to_string()));
            }
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Err(errors.join("; "))
}

fn tune(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let set = |level: i32, name: i32, value: i32| {
        // SAFETY: setsockopt with a pointer to an int that lives for the call.
        unsafe { libc::setsockopt(fd, level, name, (&value as *const i32).cast(), std::mem::size_of::<i32>() as u32) };
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 60_000);
}

/// Connects directly (tests and the benchmark; the daemon's role asks the supervisor).
pub struct DirectConnector {
    pub host: String,
    pub port: u16,
}

impl Connector for DirectConnector {
    async fn connect(&mut self) -> Result<(TcpStream, String), String> {
        connect_tcp(&self.host, self.port, Duration::from_secs(10)).await
    }
}
