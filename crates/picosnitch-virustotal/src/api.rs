//! The JSON VirusTotal v3 answers with, as far as picosnitch reads it. Unknown fields
//! are ignored (VirusTotal adds fields), missing counters count as 0.
use crate::error::VtError;
use serde::{Deserialize, Serialize};

/// How many engines said what: `last_analysis_stats` of a file, `stats` of an analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub malicious: u32,
    pub suspicious: u32,
    pub undetected: u32,
    pub harmless: u32,
    pub timeout: u32,
    #[serde(rename = "confirmed-timeout")]
    pub confirmed_timeout: u32,
    pub failure: u32,
    #[serde(rename = "type-unsupported")]
    pub type_unsupported: u32,
}

impl Stats {
    /// Engines that gave a verdict on the file.
    pub fn engines(&self) -> u32 {
        self.malicious + self.suspicious + self.undetected + self.harmless
    }

    /// At least one engine called it malicious or suspicious.
    pub fn flagged(&self) -> bool {
        self.malicious + self.suspicious > 0
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct FileObject {
    #[serde(default)]
    attributes: FileAttributes,
}

#[derive(Deserialize, Default)]
struct FileAttributes {
    #[serde(default)]
    last_analysis_stats: Option<Stats>,
}

#[derive(Deserialize)]
struct Descriptor {
    id: String,
}

#[derive(Deserialize)]
struct AnalysisObject {
    attributes: AnalysisAttributes,
}

#[derive(Deserialize)]
struct AnalysisAttributes {
    status: String,
    #[serde(default)]
    stats: Stats,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

/// `{"error": {"code": "NotFoundError", "message": "..."}}`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// Where an uploaded file's analysis stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalysisState {
    /// "queued" or "in-progress": ask again later.
    Pending,
    Completed(Stats),
}

fn malformed(what: &'static str) -> impl Fn(serde_json::Error) -> VtError {
    move |e| VtError::Malformed { what, why: e.to_string() }
}

/// A file object (`GET /api/v3/files/{id}`): its `last_analysis_stats`. A file VirusTotal
/// knows but has not analysed yet has none: `None`.
pub fn parse_file(body: &str) -> Result<Option<Stats>, VtError> {
    let env: Envelope<FileObject> = serde_json::from_str(body).map_err(malformed("a file lookup"))?;
    Ok(env.data.attributes.last_analysis_stats)
}

/// The answer to an upload: the analysis's id.
pub fn parse_upload(body: &str) -> Result<String, VtError> {
    let env: Envelope<Descriptor> = serde_json::from_str(body).map_err(malformed("an upload"))?;
    if env.data.id.is_empty() {
        return Err(VtError::Malformed { what: "an upload", why: "empty analysis id".into() });
    }
    Ok(env.data.id)
}

/// An analysis object (`GET /api/v3/analyses/{id}`).
pub fn parse_analysis(body: &str) -> Result<AnalysisState, VtError> {
    let env: Envelope<AnalysisObject> = serde_json::from_str(body).map_err(malformed("an analysis"))?;
    match env.data.attributes.status.as_str() {
        "completed" => Ok(AnalysisState::Completed(env.data.attributes.stats)),
        "queued" | "in-progress" => Ok(AnalysisState::Pending),
        other => Err(VtError::Malformed { what: "an analysis", why: format!("unknown status {other:?}") }),
    }
}

/// An error answer's code and message; a body that is not VirusTotal's error JSON (a
/// proxy's HTML page) gives the HTTP status as the code.
pub fn parse_error(status: u16, body: &str) -> ErrorBody {
    match serde_json::from_str::<ErrorEnvelope>(body) {
        Ok(e) => e.error,
        Err(_) => ErrorBody {
            code: format!("HTTP {status}"),
            message: body.chars().take(200).collect::<String>().trim().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_report_gives_its_last_analysis_stats() {
        let body = r#"{"data": {"type": "file", "id": "ab", "links": {"self": "x"}, "attributes": {
            "last_analysis_date": 1700000000, "meaningful_name": "curl",
            "last_analysis_stats": {"harmless": 0, "type-unsupported": 4, "suspicious": 1,
              "confirmed-timeout": 0, "timeout": 0, "failure": 0, "malicious": 3, "undetected": 62}}}}"#;
        let s = parse_file(body).expect("parse").expect("stats");
        assert_eq!((s.malicious, s.suspicious, s.undetected, s.type_unsupported), (3, 1, 62, 4));
        assert_eq!(s.engines(), 66);
        assert!(s.flagged());
        assert_eq!(parse_file(r#"{"data": {"id": "ab", "attributes": {}}}"#).expect("parse"), None);
        assert!(matches!(parse_file("<html>"), Err(VtError::Malformed { .. })));
    }

    #[test]
    fn uploads_analyses_and_errors() {
        assert_eq!(parse_upload(r#"{"data": {"type": "analysis", "id": "NjY0M==", "links": {"self": "y"}}}"#).expect("id"), "NjY0M==");
        assert!(parse_upload(r#"{"data": {"type": "analysis", "id": ""}}"#).is_err());
        let done = r#"{"data": {"type": "analysis", "id": "a", "attributes": {"date": 1, "status": "completed",
            "stats": {"harmless": 0, "malicious": 0, "suspicious": 0, "undetected": 60, "timeout": 1}, "results": {}}},
            "meta": {"file_info": {"sha256": "ab", "size": 5}}}"#;
        assert_eq!(parse_analysis(done).expect("parse"), AnalysisState::Completed(Stats { undetected: 60, timeout: 1, ..Default::default() }));
        let queued = r#"{"data": {"type": "analysis", "id": "a", "attributes": {"status": "queued", "stats": {}}}}"#;
        assert_eq!(parse_analysis(queued).expect("parse"), AnalysisState::Pending);
        let e = parse_error(404, r#"{"error": {"code": "NotFoundError", "message": "File \"ab\" not found"}}"#);
        assert_eq!(e.code, "NotFoundError");
        assert_eq!(parse_error(502, "<html>bad gateway</html>").code, "HTTP 502");
    }
}
