//! Domain names as they are stored and shown: lowercase, without the root's trailing
//! dot, and safe to print. DNS labels may hold any byte; a name with bytes outside
//! letters, digits, `-`, `_` and `*` keeps them as `\DDD` (as dig prints them), so no
//! name can carry terminal escapes into `picosnitch top` or `tui`.

/// Longest name in presentation form: 255 bytes on the wire, each byte escaped.
pub const MAX_NAME_TEXT: usize = 255 * 4;

/// Appends one label to `out` in presentation form, with a separating dot.
pub fn push_label(out: &mut String, label: &[u8]) {
    if !out.is_empty() {
        out.push('.');
    }
    for &b in label {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'*' => out.push(b as char),
            b'A'..=b'Z' => out.push(b.to_ascii_lowercase() as char),
            _ => {
                out.push('\\');
                out.push_str(&format!("{b:03}"));
            }
        }
    }
}

/// A host name from another source (a TLS server name), checked and normalised:
/// None if it is empty, too long, or holds anything but letters, digits, `-`, `_`
/// and dots (RFC 6066 allows only a DNS host name there).
pub fn host_name(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
    if bytes.is_empty() || bytes.len() > 253 {
        return None;
    }
    if !bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return None;
    }
    if bytes.split(|&b| b == b'.').any(|l| l.is_empty() || l.len() > 63) {
        return None;
    }
    Some(String::from_utf8_lossy(bytes).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_lowercased_and_escaped() {
        let mut s = String::new();
        push_label(&mut s, b"WWW");
        push_label(&mut s, b"ex\x1b[31mample");
        push_label(&mut s, b"a.b");
        assert_eq!(s, "www.ex\\027\\09131mample.a\\046b");
    }

    #[test]
    fn host_names_are_checked() {
        assert_eq!(host_name(b"Example.COM."), Some("example.com".into()));
        assert_eq!(host_name(b"a..b"), None);
        assert_eq!(host_name(b""), None);
        assert_eq!(host_name(b"bad name"), None);
        assert_eq!(host_name(&[b'a'; 254]), None);
        assert_eq!(host_name(&[b'a'; 64]), None);
    }
}
