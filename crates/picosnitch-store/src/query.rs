//! Top executables by bytes, for `picosnitch query`.
use crate::error::StoreError;
use crate::store::Store;
use rusqlite::types::Value;
use serde::Serialize;

#[derive(Debug, Clone, Default)]
pub struct TopQuery {
    /// contime lower bound (unix seconds), inclusive.
    pub since: Option<i64>,
    /// contime upper bound (unix seconds), exclusive.
    pub until: Option<i64>,
    /// Executable path contains this.
    pub exe: Option<String>,
    /// Process name contains this.
    pub name: Option<String>,
    /// Domain equals this or ends with "." + this.
    pub domain: Option<String>,
    /// Local or remote port.
    pub port: Option<i64>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopRow {
    pub exe: String,
    pub name: String,
    pub sha256: String,
    pub connections: i64,
    pub send: i64,
    pub recv: i64,
    /// VirusTotal's verdict on the sha256 ("3/70 malicious", "clean (0/70)"); empty
    /// when there is none.
    pub virustotal: String,
}

impl Store {
    pub fn top_executables(&self, q: &TopQuery) -> Result<Vec<TopRow>, StoreError> {
        let mut filters = vec!["1 = 1".to_string()];
        let mut args: Vec<Value> = Vec::new();
        // Each value is bound once and referred to by number, so a filter may use it twice.
        let mut arg = |v: Value| {
            args.push(v);
            format!("?{}", args.len())
        };
        if let Some(s) = q.since {
            filters.push(format!("c.contime >= {}", arg(Value::Integer(s))));
        }
        if let Some(u) = q.until {
            filters.push(format!("c.contime < {}", arg(Value::Integer(u))));
        }
        if let Some(e) = &q.exe {
            filters.push(format!("instr(e.exe, {}) > 0", arg(Value::Text(e.clone()))));
        }
        if let Some(n) = &q.name {
            filters.push(format!("instr(e.name, {}) > 0", arg(Value::Text(n.clone()))));
        }
        if let Some(d) = &q.domain {
            let n = arg(Value::Text(d.trim_end_matches('.').to_ascii_lowercase()));
            filters.push(format!("(d.domain = {n} OR substr(d.domain, -length({n}) - 1) = '.' || {n})"));
        }
        if let Some(p) = q.port {
            let n = arg(Value::Integer(p));
            filters.push(format!("(c.lport = {n} OR c.rport = {n})"));
        }
        let sql = format!(
            "SELECT e.exe, e.name, e.sha256, SUM(c.events), SUM(c.send), SUM(c.recv)
             FROM connections c JOIN executables e ON e.id = c.exe_id JOIN domains d ON d.id = c.domain_id
             WHERE {} GROUP BY c.exe_id ORDER BY SUM(c.send) + SUM(c.recv) DESC, e.exe LIMIT {}",
            filters.join(" AND "),
            q.limit.max(1)
        );
        let mut stmt = self.conn().prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok(TopRow {
                    exe: r.get(0)?,
                    name: r.get(1)?,
                    sha256: r.get(2)?,
                    connections: r.get(3)?,
                    send: r.get(4)?,
                    recv: r.get(5)?,
                    virustotal: String::new(),
                })
            })
            .map_err(|e| self.err(e))?;
        let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))?;
        // A few dozen rows: one indexed lookup each (a v2 history has no verdicts).
        for row in &mut rows {
            if let Some(v) = self.verdict(&row.sha256)? {
                row.virustotal = v.summary();
            }
        }
        Ok(rows)
    }
}
