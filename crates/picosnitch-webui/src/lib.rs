//! `picosnitch webui`: the history and the live feed in the browser.
//!
//! An unprivileged process that serves a page, its script and a JSON API on loopback
//! (and optionally on a Unix socket for a reverse proxy). It reads the SQLite history
//! through read-only connections on query threads of its own and the live feed through
//! one reader, and never writes anything. The `picosnitch` binary binds the sockets,
//! confines the process and then calls [`WebUi::start`] and [`run`]; tests do the same
//! without confinement.
//!
//! Requests are answered only when their Host header is a loopback name or one the
//! administrator allowed (DNS rebinding), and every response carries a strict
//! Content-Security-Policy; the page loads nothing from anywhere else.
pub mod api;
mod assets;
pub mod db;
pub mod host;
pub mod http;
pub mod live;
pub mod users;

use api::{Api, PageSettings};
use async_executor::LocalExecutor;
use db::Database;
use host::HostCheck;
use http::{Limits, Listener, Reply, Request, Response, Service};
use live::Live;
use std::path::PathBuf;
use std::rc::Rc;
use users::UserNames;

/// What the web UI serves, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: PathBuf,
    pub feed_socket: PathBuf,
    /// `[webui] allowed_hosts`.
    pub allowed_hosts: Vec<String>,
    pub page: PageSettings,
    /// Threads running queries, each with its own connection.
    pub query_threads: usize,
}

pub struct WebUi {
    api: Api,
    host: HostCheck,
}

impl WebUi {
    /// Starts the query threads and the live feed reader. Threads: call it after the
    /// process has confined itself (Landlock applies to the threads that exist then).
    pub fn start(settings: Settings, users: UserNames) -> WebUi {
        let db = Database::start(settings.database, settings.query_threads, 64);
        let live = Live::default();
        live.start(settings.feed_socket);
        WebUi { api: Api::new(db, live, users, settings.page), host: HostCheck::new(&settings.allowed_hosts) }
    }

    /// Like [`WebUi::start`] with a live state fed by the caller (tests).
    pub fn with_live(settings: Settings, users: UserNames, live: Live) -> WebUi {
        let db = Database::start(settings.database, settings.query_threads, 64);
        WebUi { api: Api::new(db, live, users, settings.page), host: HostCheck::new(&settings.allowed_hosts) }
    }

    async fn route(&self, req: &Request) -> Response {
        if let Err(why) = self.host.check(req.host.as_deref()) {
            tracing::debug!(host = ?req.host, "refused a request for another host");
            return Response::error(403, "host-refused", &why);
        }
        if req.path.starts_with("/api/") {
            return self.api.handle(req).await;
        }
        assets::serve(req).unwrap_or_else(|| Response::error(404, "not-found", &format!("no page {}", req.path)))
    }
}

impl Service for WebUi {
    fn call<'a>(&'a self, req: &'a Request) -> Reply<'a> {
        Box::pin(self.route(req))
    }
}

/// Serves `listeners` on the calling thread until `stop` receives or closes.
pub fn run(web: WebUi, listeners: Vec<Listener>, limits: Limits, stop: async_channel::Receiver<()>) -> std::io::Result<()> {
    let ex = Rc::new(LocalExecutor::new());
    let service: Rc<dyn Service> = Rc::new(web);
    async_io::block_on(ex.run(http::serve(ex.clone(), listeners, service, limits, stop)))
}
