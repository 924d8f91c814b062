//! `picosnitch query`: top executables by bytes over a period, from the database,
//! opened read-only.
use anyhow::Context;
use picosnitch_store::{Store, TopQuery};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub since_seconds: Option<u64>,
    pub exe: Option<String>,
    pub name: Option<String>,
    pub domain: Option<String>,
    pub port: Option<u16>,
    pub limit: usize,
}

/// "90", "90s", "15m", "3h", "7d" to seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, unit) = t.find(|c: char| !c.is_ascii_digit()).map_or((t, "s"), |i| t.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("{text:?} is not a duration such as 90s, 15m, 3h or 7d"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}; use s, m, h or d")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{text:?} is too long"))
}

pub fn run(db: &Path, filters: &Filters, format: Format) -> anyhow::Result<String> {
    if !db.exists() {
        anyhow::bail!(
            "there is no database at {} yet: the daemon creates it (`sudo picosnitch daemon` or `systemctl start picosnitch`), or name another with --db",
            db.display()
        );
    }
    let store = Store::open_read_only(db).with_context(|| format!("opening {} read-only", db.display()))?;
    let q = TopQuery {
        since: filters
            .since_seconds
            .map(|s| picosnitch_store::unix_now().saturating_sub(i64::try_from(s).unwrap_or(i64::MAX))),
        until: None,
        exe: filters.exe.clone(),
        name: filters.name.clone(),
        domain: filters.domain.clone(),
        port: filters.port.map(i64::from),
        limit: filters.limit,
    };
    let rows = store.top_executables(&q).context("querying the top executables")?;
    Ok(match format {
        Format::Table => picosnitch_store::render_table(&rows),
        Format::Csv => picosnitch_store::render_csv(&rows),
        Format::Json => picosnitch_store::render_json(&rows),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
