//! A small HTTP/1.1 server on smol's reactor: GET and HEAD only, no request bodies,
//! keep-alive, bounded in connections, header size and time, so one client (or a
//! slow one on purpose) cannot hold the web UI.
pub mod request;
pub mod response;

pub use request::{Method, Request};
pub use response::Response;

use async_executor::LocalExecutor;
use async_io::{Async, Timer};
use futures_lite::future;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use request::Parsed;
use std::cell::Cell;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// An answer being prepared.
pub type Reply<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + 'a>>;

/// What answers requests.
pub trait Service {
    fn call<'a>(&'a self, req: &'a Request) -> Reply<'a>;
}

/// A socket bound before confinement: the TCP port on loopback, or a reverse proxy's
/// Unix socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; one more is told 503 and closed.
    pub connections: usize,
    /// From the first byte of a request head to its end.
    pub head: Duration,
    /// An open connection with no request in flight.
    pub idle: Duration,
    /// Writing one response.
    pub write: Duration,
    /// Requests on one connection before it is closed.
    pub requests_per_connection: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 64,
            head: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            write: Duration::from_secs(30),
            requests_per_connection: 1_000,
        }
    }
}

/// `fut`, or `None` once `after` has passed.
async fn within<T>(after: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(fut.await) }, async {
        Timer::after(after).await;
        None
    })
    .await
}

/// Serves every listener on `ex` until `stop` receives or closes. Connections run as
/// tasks of `ex`, so the caller runs the executor (`ex.run(serve(..))`).
pub async fn serve(ex: Rc<LocalExecutor<'static>>, listeners: Vec<Listener>, service: Rc<dyn Service>, limits: Limits, stop: async_channel::Receiver<()>) -> std::io::Result<()> {
    let open = Rc::new(Cell::new(0usize));
    let mut loops = Vec::new();
    for l in listeners {
        let gate = Gate { ex: ex.clone(), service: service.clone(), limits, open: open.clone() };
        match l {
            Listener::Tcp(l) => {
                let l = Async::new(l)?;
                loops.push(ex.spawn(async move {
                    loop {
                        match l.accept().await {
                            Ok((s, _)) => gate.admit(s),
                            Err(e) => pause_after(&e).await,
                        }
                    }
                }));
            }
            Listener::Unix(l) => {
                let l = Async::new(l)?;
                loops.push(ex.spawn(async move {
                    loop {
                        match l.accept().await {
                            Ok((s, _)) => gate.admit(s),
                            Err(e) => pause_after(&e).await,
                        }
                    }
                }));
            }
        }
    }
    let _ = stop.recv().await;
    // Dropping the accept loops closes the listeners; connections in flight end with
    // the executor.
    drop(loops);
    Ok(())
}

/// EMFILE and friends: keep serving those connected, try again shortly.
async fn pause_after(e: &std::io::Error) {
    tracing::warn!(error = %e, "accepting a web UI connection");
    Timer::after(Duration::from_millis(100)).await;
}

/// Admits connections up to the limit.
struct Gate {
    ex: Rc<LocalExecutor<'static>>,
    service: Rc<dyn Service>,
    limits: Limits,
    open: Rc<Cell<usize>>,
}

impl Gate {
    fn admit<S: AsyncRead + AsyncWrite + Unpin + 'static>(&self, mut stream: S) {
        let limits = self.limits;
        if self.open.get() >= limits.connections {
            let resp = Response::error(503, "busy", &format!("the web UI serves at most {} connections at once; try again", limits.connections));
            self.ex
                .spawn(async move {
                    let _ = within(Duration::from_secs(2), stream.write_all(&resp.to_bytes(false, false))).await;
                })
                .detach();
            return;
        }
        self.open.set(self.open.get() + 1);
        let (service, open) = (self.service.clone(), self.open.clone());
        self.ex
            .spawn(async move {
                connection(stream, &*service, limits).await;
                open.set(open.get().saturating_sub(1));
            })
            .detach();
    }
}

/// Reads requests from one connection and writes their answers, in order.
pub async fn connection<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, service: &dyn Service, limits: Limits) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut served = 0u32;
    loop {
        let mut deadline: Option<Instant> = None;
        let req = loop {
            match request::parse(&buf) {
                Parsed::Complete(r, n) => {
                    buf.drain(..n);
                    break r;
                }
                Parsed::Refused(resp) => {
                    let _ = within(limits.write, stream.write_all(&resp.to_bytes(false, false))).await;
                    return;
                }
                Parsed::Partial => {}
            }
            if !buf.is_empty() && deadline.is_none() {
                deadline = Some(Instant::now() + limits.head);
            }
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => limits.idle,
            };
            let mut chunk = [0u8; 4096];
            match within(wait, stream.read(&mut chunk)).await {
                Some(Ok(0)) | Some(Err(_)) => return,
                Some(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                None => {
                    if deadline.is_some() {
                        let resp = Response::error(408, "timeout", "the request head did not arrive in time");
                        let _ = within(limits.write, stream.write_all(&resp.to_bytes(false, false))).await;
                    }
                    return;
                }
            }
        };
        served += 1;
        let keep_alive = req.keep_alive && served < limits.requests_per_connection;
        let resp = service.call(&req).await;
        let bytes = resp.to_bytes(req.method == Method::Head, keep_alive);
        match within(limits.write, async {
            stream.write_all(&bytes).await?;
            stream.flush().await
        })
        .await
        {
            Some(Ok(())) if keep_alive => {}
            _ => return,
        }
    }
}
