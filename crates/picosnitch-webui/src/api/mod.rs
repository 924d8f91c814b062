//! The JSON API behind the views (documented in the README's Web UI section).
mod budget;
mod dims;
mod history;
pub mod params;

pub use dims::DIMS;

use crate::db::Database;
use crate::http::{Request, Response};
use crate::live::Live;
use crate::users::UserNames;
use params::{ApiError, MAX_BUCKETS, MAX_CONNECTIONS, MAX_FILTERS, MAX_LIVE_EVENTS, MAX_LIVE_PROCESSES, MAX_ROWS, MAX_SERIES};

/// What the page may show before it asks anything else.
#[derive(Debug, Clone, Default)]
pub struct PageSettings {
    /// `[dash] theme`: "" follows the browser, "light" or "dark".
    pub theme: String,
    /// `[dash] scroll_zoom`: the wheel zooms the overview chart's time range.
    pub scroll_zoom: bool,
}

pub struct Api {
    pub(crate) db: Database,
    pub(crate) live: Live,
    pub(crate) users: UserNames,
    pub(crate) page: PageSettings,
}

impl Api {
    pub fn new(db: Database, live: Live, users: UserNames, page: PageSettings) -> Api {
        Api { db, live, users, page }
    }

    pub async fn handle(&self, req: &Request) -> Response {
        let answer = match req.path.as_str() {
            "/api/meta" => self.meta().await,
            "/api/overview" => self.overview(req).await,
            "/api/explore" => self.explore(req).await,
            "/api/drilldown" => self.drilldown(req).await,
            "/api/connections" => self.connections(req).await,
            "/api/live" => self.live(req),
            other => Err(ApiError { status: 404, kind: "not-found", message: format!("no API endpoint {other}; see the README's Web UI section") }),
        };
        answer.unwrap_or_else(|e| Response::error(e.status, e.kind, &e.message))
    }

    async fn meta(&self) -> Result<Response, ApiError> {
        let bounds = self.db.query(|store| store.history_bounds()).await;
        let database = match bounds {
            Ok(b) => serde_json::json!({ "state": "ok", "message": "", "oldest": b.map(|x| x.0), "newest": b.map(|x| x.1) }),
            Err(p) => serde_json::json!({ "state": p.kind(), "message": p.message(), "oldest": null, "newest": null }),
        };
        let feed = self.live.snapshot(u64::MAX, 0, 0, "").status;
        Ok(Response::json(&serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "now": picosnitch_store::unix_now(),
            "theme": self.page.theme,
            "scroll_zoom": self.page.scroll_zoom,
            "database": { "path": self.db.path().display().to_string(), "state": database["state"], "message": database["message"], "oldest": database["oldest"], "newest": database["newest"] },
            "feed": feed,
            "dimensions": DIMS,
            "ranges": params::RANGES.iter().map(|(n, s)| serde_json::json!({ "name": n, "seconds": s })).collect::<Vec<_>>(),
            "limits": {
                "series": MAX_SERIES, "buckets": MAX_BUCKETS, "rows": MAX_ROWS, "connections": MAX_CONNECTIONS,
                "filters": MAX_FILTERS, "live_events": MAX_LIVE_EVENTS, "live_processes": MAX_LIVE_PROCESSES,
                "query_seconds": crate::db::QUERY_LIMIT.as_secs(),
            },
        })))
    }

    fn live(&self, req: &Request) -> Result<Response, ApiError> {
        let after = match req.param("after") {
            None => 0,
            Some(v) => v.trim().parse::<u64>().map_err(|_| params::bad(format!("after: {v:?} is not a sequence number")))?,
        };
        let limit = params::count(req, "limit", 300, 0, MAX_LIVE_EVENTS)?;
        let top = params::count(req, "top", 100, 0, MAX_LIVE_PROCESSES)?;
        let find = req.param("q").unwrap_or_default();
        if find.len() > 200 {
            return Err(params::bad("q: longer than 200 characters"));
        }
        Ok(Response::json(&self.live.snapshot(after, limit, top, find)))
    }
}
