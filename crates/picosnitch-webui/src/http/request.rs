//! One request's head, parsed by httparse within fixed limits. The web UI only reads,
//! so a request with a body is refused rather than read.
use super::response::Response;

/// A request head longer than this is refused (431): ours are a path and a few
/// filters.
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The path without the query, as sent (our paths need no decoding).
    pub path: String,
    /// Decoded query parameters in order; a key may repeat (filters).
    pub query: Vec<(String, String)>,
    pub host: Option<String>,
    /// The entity tag of a copy the browser already has.
    pub if_none_match: Option<String>,
    /// Whether the client keeps the connection open for another request.
    pub keep_alive: bool,
}

impl Request {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated query parameter.
    pub fn params<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub enum Parsed {
    /// A whole head, and how many bytes of the buffer it took.
    Complete(Request, usize),
    /// More bytes are needed.
    Partial,
    /// The request cannot be served: answer this and close the connection.
    Refused(Response),
}

/// Parses the head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Parsed::Refused(Response::error(431, "request header too large", "the request line and headers must fit in 16 KiB"));
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Refused(Response::error(431, "too many headers", "at most 48 request headers"));
        }
        Err(e) => return Parsed::Refused(Response::error(400, "malformed request", &format!("the request could not be parsed: {e}"))),
    };
    if consumed > MAX_HEAD {
        return Parsed::Refused(Response::error(431, "request header too large", "the request line and headers must fit in 16 KiB"));
    }
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some(other) => {
            let mut r = Response::error(405, "method not allowed", &format!("{other} is not served: the web UI only reads (GET, HEAD)"));
            r.header("Allow", "GET, HEAD");
            return Parsed::Refused(r);
        }
        None => return Parsed::Refused(Response::error(400, "malformed request", "no method")),
    };
    let target = req.path.unwrap_or("/");
    if !target.starts_with('/') {
        return Parsed::Refused(Response::error(400, "malformed request", "the request target must be a path starting with /"));
    }
    let http10 = req.version == Some(0);
    let mut host = None;
    let mut if_none_match = None;
    let mut connection = String::new();
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value).trim().to_string();
        if h.name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Parsed::Refused(Response::error(400, "malformed request", "more than one Host header"));
            }
            host = Some(value);
        } else if h.name.eq_ignore_ascii_case("if-none-match") {
            if_none_match = Some(value);
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection = value.to_ascii_lowercase();
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") || (h.name.eq_ignore_ascii_case("content-length") && value != "0") {
            return Parsed::Refused(Response::error(413, "request body not accepted", "the web UI takes no request bodies"));
        }
    }
    let keep_alive = if http10 { connection.contains("keep-alive") } else { !connection.contains("close") };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, form_urlencoded::parse(q.as_bytes()).into_owned().collect()),
        None => (target, Vec::new()),
    };
    Parsed::Complete(Request { method, path: path.to_string(), query, host, if_none_match, keep_alive }, consumed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(raw: &str) -> (Request, usize) {
        match parse(raw.as_bytes()) {
            Parsed::Complete(r, n) => (r, n),
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    fn refused(raw: &[u8]) -> u16 {
        match parse(raw) {
            Parsed::Refused(r) => r.status,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_get_with_repeated_parameters() {
        let raw = "GET /api/explore?group=exe&f=name%3Acurl&f=rport:443&q=a+b HTTP/1.1\r\nHost: 127.0.0.1:5100\r\n\r\nGET / HTTP/1.1\r\n";
        let (r, n) = complete(raw);
        assert_eq!(&raw[n..n + 5], "GET /", "the next request is left in the buffer");
        assert_eq!((r.method, r.path.as_str(), r.host.as_deref(), r.keep_alive), (Method::Get, "/api/explore", Some("127.0.0.1:5100"), true));
        assert_eq!(r.params("f").collect::<Vec<_>>(), vec!["name:curl", "rport:443"]);
        assert_eq!(r.param("q"), Some("a b"));
        assert_eq!(r.param("missing"), None);
    }

    #[test]
    fn connection_persistence_follows_the_version() {
        assert!(!complete("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").0.keep_alive);
        assert!(complete("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").0.keep_alive);
        assert!(!complete("HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n").0.keep_alive);
    }

    #[test]
    fn what_is_refused() {
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Parsed::Partial));
        assert_eq!(refused(b"POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"), 405);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"), 413);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 413);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(refused(b"GET http://evil/ HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(refused(b"\x01\x02 nonsense\r\n\r\n"), 400);
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(refused(long.as_bytes()), 431);
        let many: String = (0..60).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(refused(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), 431);
    }
}
