//! Output formats of `picosnitch query`.
use crate::query::TopRow;

/// 1536 -> "1.5 KiB".
pub fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub fn render_table(rows: &[TopRow]) -> String {
    let header = ["SENT", "RECEIVED", "CONNS", "NAME", "EXECUTABLE", "SHA256", "VIRUSTOTAL"];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                human_bytes(r.send),
                human_bytes(r.recv),
                r.connections.to_string(),
                r.name.clone(),
                r.exe.clone(),
                r.sha256.chars().take(12).collect(),
                r.virustotal.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i < 3 {
                s.push_str(&format!("{c:>w$}  "));
            } else if i == cols.len() - 1 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header.map(String::from));
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn render_csv(rows: &[TopRow]) -> String {
    let mut out = String::from("exe,name,sha256,connections,send,recv,virustotal\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            csv_field(&r.exe),
            csv_field(&r.name),
            csv_field(&r.sha256),
            r.connections,
            r.send,
            r.recv,
            csv_field(&r.virustotal)
        ));
    }
    out
}

pub fn render_json(rows: &[TopRow]) -> String {
    let mut s = serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}
