//! How numbers, times, users and protocols read on screen.
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::collections::HashMap;

/// Byte units, decimal as in picosnitch 2.x (1 kB = 1000 B); `u` cycles them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Units {
    /// The largest unit that keeps the number at or above 1.
    #[default]
    Auto,
    Bytes,
    Kilo,
    Mega,
    Giga,
}

impl Units {
    const ORDER: [Units; 5] = [Units::Auto, Units::Bytes, Units::Kilo, Units::Mega, Units::Giga];

    pub fn next(self) -> Units {
        let i = Self::ORDER.iter().position(|u| *u == self).unwrap_or(0);
        Self::ORDER[(i + 1) % Self::ORDER.len()]
    }

    pub fn prev(self) -> Units {
        let i = Self::ORDER.iter().position(|u| *u == self).unwrap_or(0);
        Self::ORDER[(i + Self::ORDER.len() - 1) % Self::ORDER.len()]
    }

    pub fn label(self) -> &'static str {
        match self {
            Units::Auto => "auto",
            Units::Bytes => "B",
            Units::Kilo => "kB",
            Units::Mega => "MB",
            Units::Giga => "GB",
        }
    }

    pub fn bytes(self, n: i64) -> String {
        let scaled = |div: f64, unit: &str| format!("{:.1} {unit}", n as f64 / div);
        match self {
            Units::Bytes => format!("{n} B"),
            Units::Kilo => scaled(1e3, "kB"),
            Units::Mega => scaled(1e6, "MB"),
            Units::Giga => scaled(1e9, "GB"),
            Units::Auto => {
                let a = n.unsigned_abs();
                if a < 1_000 {
                    format!("{n} B")
                } else if a < 1_000_000 {
                    scaled(1e3, "kB")
                } else if a < 1_000_000_000 {
                    scaled(1e6, "MB")
                } else if a < 1_000_000_000_000 {
                    scaled(1e9, "GB")
                } else {
                    scaled(1e12, "TB")
                }
            }
        }
    }

    pub fn rate(self, bytes_per_second: f64) -> String {
        format!("{}/s", self.bytes(bytes_per_second.round() as i64))
    }
}

/// Counts with thousands separators: 1234567 -> "1,234,567".
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Local wall-clock time of a unix time, in `format` (strftime-like).
pub fn local(unix: f64, tz: &TimeZone, format: &str) -> String {
    let secs = unix.floor() as i64;
    match Timestamp::from_second(secs) {
        Ok(ts) => ts.to_zoned_datetime(tz.clone()).strftime(format).to_string(),
        Err(_) => format!("@{secs}"),
    }
}

/// "2026-11-22 10:00:00".
pub fn date_time(unix: i64, tz: &TimeZone) -> String {
    local(unix as f64, tz, "%Y-%m-%d %H:%M:%S")
}

/// "10:00:00".
pub fn clock(unix: f64, tz: &TimeZone) -> String {
    local(unix, tz, "%H:%M:%S")
}

/// User names by uid, read once from /etc/passwd (users only NSS knows show as numbers).
#[derive(Debug, Clone, Default)]
pub struct UserNames(HashMap<i64, String>);

impl UserNames {
    pub fn from_system() -> UserNames {
        std::fs::read_to_string("/etc/passwd").map(|t| Self::parse(&t)).unwrap_or_default()
    }

    pub fn parse(passwd: &str) -> UserNames {
        UserNames(
            passwd
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let _password = f.next()?;
                    Some((f.next()?.parse().ok()?, name.to_string()))
                })
                .collect(),
        )
    }

    /// "alice (1000)", or "1000" for a uid without a name.
    pub fn label(&self, uid: i64) -> String {
        match self.0.get(&uid) {
            Some(name) => format!("{name} ({uid})"),
            None => uid.to_string(),
        }
    }
}

pub fn protocol(p: i64) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmp6".into(),
        136 => "udplite".into(),
        132 => "sctp".into(),
        262 => "mptcp".into(),
        0 => "-".into(),
        other => other.to_string(),
    }
}

/// "addr:port", with brackets around IPv6 addresses; just the address without a port.
pub fn endpoint(addr: &str, port: i64) -> String {
    match (addr.is_empty(), port > 0, addr.contains(':')) {
        (true, true, _) => format!(":{port}"),
        (true, false, _) => String::new(),
        (false, true, true) => format!("[{addr}]:{port}"),
        (false, true, false) => format!("{addr}:{port}"),
        (false, false, _) => addr.to_string(),
    }
}

/// What to show for an empty executable field, address or domain.
pub fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "(none)"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_format_and_cycle() {
        assert_eq!(Units::Auto.bytes(999), "999 B");
        assert_eq!(Units::Auto.bytes(1_500), "1.5 kB");
        assert_eq!(Units::Auto.bytes(30_100_000), "30.1 MB");
        assert_eq!(Units::Auto.bytes(2_000_000_000_000), "2.0 TB");
        assert_eq!(Units::Kilo.bytes(20), "0.0 kB");
        assert_eq!(Units::Mega.bytes(123_456_789), "123.5 MB");
        assert_eq!(Units::Bytes.bytes(123_456_789), "123456789 B");
        assert_eq!(Units::Auto.rate(2_048.4), "2.0 kB/s");
        let mut u = Units::Auto;
        let mut seen = vec![];
        for _ in 0..5 {
            u = u.next();
            seen.push(u.label());
        }
        assert_eq!(seen, ["B", "kB", "MB", "GB", "auto"]);
        assert_eq!(Units::Auto.prev(), Units::Giga);
    }

    #[test]
    fn counts_times_users_endpoints() {
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(count(-1_000), "-1,000");
        assert_eq!(date_time(1_795_341_600, &TimeZone::UTC), "2026-11-22 10:00:00");
        let names = UserNames::parse("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbroken line\n");
        assert_eq!((names.label(0), names.label(1000), names.label(7)), ("root (0)".into(), "alice (1000)".into(), "7".into()));
        assert_eq!(endpoint("2001:db8::1", 443), "[2001:db8::1]:443");
        assert_eq!(endpoint("10.0.0.1", 0), "10.0.0.1");
        assert_eq!(protocol(6), "tcp");
        assert_eq!(or_none(""), "(none)");
    }
}
