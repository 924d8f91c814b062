//! Responses, and the headers every one of them carries.
use std::borrow::Cow;

/// Scripts, styles and images from this server only, nothing inline, no frames, no
/// forms, no plugins; `connect-src 'self'` for the API.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Cow<'static, [u8]>,
    pub headers: Vec<(&'static str, String)>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    status: u16,
    error: &'a str,
    /// A stable name for what went wrong, for the page to act on.
    kind: &'a str,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Cow<'static, [u8]>>) -> Response {
        Response { status, content_type, body: body.into(), headers: Vec::new() }
    }

    /// A JSON body; the API's answers are never cached.
    pub fn json(value: &impl serde::Serialize) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => {
                let mut r = Response::new(200, "application/json", body);
                r.header("Cache-Control", "no-store");
                r
            }
            Err(e) => Response::error(500, "internal", &format!("encoding the answer: {e}")),
        }
    }

    /// `{"status", "error", "kind"}` with `detail` as the sentence shown to the user.
    pub fn error(status: u16, kind: &str, detail: &str) -> Response {
        let body = serde_json::to_vec(&ErrorBody { status, error: detail, kind }).unwrap_or_else(|_| detail.as_bytes().to_vec());
        let mut r = Response::new(status, "application/json", body);
        r.header("Cache-Control", "no-store");
        r
    }

    pub fn header(&mut self, name: &'static str, value: impl Into<String>) {
        self.headers.push((name, value.into()));
    }

    /// The bytes on the wire; `head_only` leaves the body out (HEAD).
    pub fn to_bytes(&self, head_only: bool, keep_alive: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        out.push_str(&format!("Content-Type: {}\r\nContent-Length: {}\r\n", self.content_type, self.body.len()));
        for (k, v) in SECURITY_HEADERS {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(if keep_alive { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_response_carries_the_policy() {
        let r = Response::error(404, "not-found", "no such page: /x");
        let text = String::from_utf8(r.to_bytes(false, true)).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains(&format!("Content-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n")));
        assert!(text.contains("X-Content-Type-Options: nosniff\r\n"));
        assert!(text.contains("Connection: keep-alive\r\n\r\n{\"status\":404,\"error\":\"no such page: /x\",\"kind\":\"not-found\"}"), "{text}");
        let head = String::from_utf8(r.to_bytes(true, false)).expect("utf-8");
        assert!(head.ends_with("Connection: close\r\n\r\n") && head.contains(&format!("Content-Length: {}\r\n", r.body.len())), "{head}");
    }
}
