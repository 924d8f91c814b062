//! VirusTotal's verdicts on executables, by sha256 (schema version 3): one row per hash,
//! the latest answer. Written by the writer with the row batches; read by
//! `picosnitch query` and the tui, which show it beside the executable.
use crate::error::StoreError;
use crate::store::Store;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// What VirusTotal said about one sha256.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub sha256: String,
    /// Unix seconds of the answer.
    pub checked: i64,
    pub result: VerdictResult,
    pub malicious: u32,
    pub suspicious: u32,
    pub undetected: u32,
    pub harmless: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerdictResult {
    /// VirusTotal has an analysis of the file: the counts are its engines'.
    #[default]
    Analysed,
    /// VirusTotal has never seen the file (and it was not uploaded).
    NotFound,
    /// VirusTotal knows the file but has no analysis yet.
    Unanalysed,
}

impl VerdictResult {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictResult::Analysed => "analysed",
            VerdictResult::NotFound => "not found",
            VerdictResult::Unanalysed => "unanalysed",
        }
    }

    fn parse(s: &str) -> VerdictResult {
        match s {
            "not found" => VerdictResult::NotFound,
            "unanalysed" => VerdictResult::Unanalysed,
            _ => VerdictResult::Analysed,
        }
    }
}

impl Verdict {
    /// Whether any engine called the file malicious or suspicious.
    pub fn flagged(&self) -> bool {
        self.result == VerdictResult::Analysed && self.malicious + self.suspicious > 0
    }

    /// "5/68 malicious", "2/68 suspicious", "clean (0/68)", "not on VirusTotal".
    pub fn summary(&self) -> String {
        let engines = self.malicious + self.suspicious + self.undetected + self.harmless;
        match self.result {
            VerdictResult::NotFound => "not on VirusTotal".into(),
            VerdictResult::Unanalysed => "not analysed yet".into(),
            VerdictResult::Analysed if self.malicious > 0 && self.suspicious > 0 => {
                format!("{}/{engines} malicious, {} suspicious", self.malicious, self.suspicious)
            }
            VerdictResult::Analysed if self.malicious > 0 => format!("{}/{engines} malicious", self.malicious),
            VerdictResult::Analysed if self.suspicious > 0 => format!("{}/{engines} suspicious", self.suspicious),
            VerdictResult::Analysed => format!("clean (0/{engines})"),
        }
    }
}

/// Inserts or replaces verdicts, inside the caller's transaction.
pub(crate) fn upsert(tx: &rusqlite::Transaction<'_>, verdicts: &[Verdict]) -> rusqlite::Result<()> {
    if verdicts.is_empty() {
        return Ok(());
    }
    let mut up = tx.prepare_cached(
        "INSERT INTO virustotal (sha256, checked, result, malicious, suspicious, undetected, harmless) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (sha256) DO UPDATE SET checked = excluded.checked, result = excluded.result, malicious = excluded.malicious,
           suspicious = excluded.suspicious, undetected = excluded.undetected, harmless = excluded.harmless",
    )?;
    for v in verdicts {
        up.execute(params![v.sha256, v.checked, v.result.as_str(), v.malicious, v.suspicious, v.undetected, v.harmless])?;
    }
    Ok(())
}

impl Store {
    /// Whether this database has the verdict table (schema version 3 or later); older
    /// ones opened read-only show no verdicts.
    pub fn has_verdicts(&self) -> bool {
        self.version() >= 3
    }

    /// The stored verdict for `sha256`, if any.
    pub fn verdict(&self, sha256: &str) -> Result<Option<Verdict>, StoreError> {
        if !self.has_verdicts() {
            return Ok(None);
        }
        self.conn()
            .query_row(
                "SELECT sha256, checked, result, malicious, suspicious, undetected, harmless FROM virustotal WHERE sha256 = ?1",
                params![sha256],
                |r| {
                    Ok(Verdict {
                        sha256: r.get(0)?,
                        checked: r.get(1)?,
                        result: VerdictResult::parse(&r.get::<_, String>(2)?),
                        malicious: r.get(3)?,
                        suspicious: r.get(4)?,
                        undetected: r.get(5)?,
                        harmless: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every sha256 with a stored verdict.
    pub fn verdict_hashes(&self) -> Result<Vec<String>, StoreError> {
        if !self.has_verdicts() {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn().prepare("SELECT sha256 FROM virustotal").map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }

    /// [`Verdict::summary`] of each of `shas` that has a verdict (the tui's
    /// connection details).
    pub fn verdict_summaries<'a>(&self, shas: impl IntoIterator<Item = &'a str>) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let mut out = std::collections::HashMap::new();
        for sha in shas {
            if sha.is_empty() || sha.starts_with('!') || out.contains_key(sha) {
                continue;
            }
            if let Some(v) = self.verdict(sha)? {
                out.insert(sha.to_string(), v.summary());
            }
        }
        Ok(out)
    }

    /// Stores verdicts in one transaction (the writer stores them with row batches;
    /// this is for tools and tests).
    pub fn record_verdicts(&mut self, verdicts: &[Verdict]) -> Result<(), StoreError> {
        let path = self.path().to_path_buf();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self.conn_mut().transaction().map_err(err)?;
        upsert(&tx, verdicts).map_err(err)?;
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_like_virustotal() {
        let v = |result, malicious, suspicious| Verdict { result, malicious, suspicious, undetected: 60, harmless: 2, ..Default::default() };
        assert_eq!(v(VerdictResult::Analysed, 5, 0).summary(), "5/67 malicious");
        assert_eq!(v(VerdictResult::Analysed, 5, 1).summary(), "5/68 malicious, 1 suspicious");
        assert_eq!(v(VerdictResult::Analysed, 0, 1).summary(), "1/63 suspicious");
        assert_eq!(v(VerdictResult::Analysed, 0, 0).summary(), "clean (0/62)");
        assert_eq!(v(VerdictResult::NotFound, 0, 0).summary(), "not on VirusTotal");
        assert!(v(VerdictResult::Analysed, 0, 1).flagged());
        assert!(!v(VerdictResult::NotFound, 0, 0).flagged());
    }
}
