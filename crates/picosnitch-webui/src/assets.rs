//! The page, its script, style and icon, built into the binary: the web UI loads
//! nothing from anywhere else, and the Content-Security-Policy says so to the browser.
use crate::http::{Request, Response};

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset { path: "/", content_type: "text/html; charset=utf-8", body: include_bytes!("../assets/index.html") },
    Asset { path: "/app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../assets/app.js") },
    Asset { path: "/app.css", content_type: "text/css; charset=utf-8", body: include_bytes!("../assets/app.css") },
    Asset { path: "/favicon.svg", content_type: "image/svg+xml", body: include_bytes!("../assets/favicon.svg") },
];

/// FNV-1a: an entity tag that changes when a file does; not a security boundary.
fn tag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// The asset at `req.path`, `None` if there is none.
pub fn serve(req: &Request) -> Option<Response> {
    let path = if req.path == "/index.html" { "/" } else { req.path.as_str() };
    let asset = ASSETS.iter().find(|a| a.path == path)?;
    let etag = tag(asset.body);
    let mut r = if req.if_none_match.as_deref() == Some(etag.as_str()) {
        Response::new(304, asset.content_type, &[][..])
    } else {
        Response::new(200, asset.content_type, asset.body)
    };
    // Revalidated on every load, so a new binary's page is never mixed with an old
    // script.
    r.header("Cache-Control", "no-cache");
    r.header("ETag", etag);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_external_is_referenced() {
        for a in ASSETS {
            let text = String::from_utf8_lossy(a.body);
            for bad in ["http://", "https://", "//cdn", "<script>", "style=", "onclick=", "onload=", "javascript:", "eval(", "new Function", "innerHTML"] {
                // The SVG namespace URI is a name, not a load.
                let hits = text.matches(bad).count() - if bad == "http://" { text.matches("http://www.w3.org/2000/svg").count() } else { 0 };
                assert_eq!(hits, 0, "{} contains {bad:?}", a.path);
            }
        }
    }
}
