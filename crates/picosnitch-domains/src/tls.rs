//! The server name (SNI, RFC 6066) in a TLS ClientHello, the first bytes a TLS client
//! sends: record header, handshake header, then the hello's fields up to its
//! extensions. Only what the kernel copied is read (at most 2 KiB of the first packet);
//! a name beyond that is reported as cut.
use crate::name::host_name;

const RECORD_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST: u8 = 0;
/// Extensions looked at before giving up.
const MAX_EXTENSIONS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("not a TLS handshake record")]
    NotHandshake,
    #[error("not a ClientHello")]
    NotClientHello,
    #[error("the hello ends at byte {0}, before its server name")]
    Truncated(usize),
    #[error("a length field at byte {0} points past its enclosing field")]
    BadLength(usize),
    #[error("the server name is not a DNS host name")]
    BadName,
}

/// A bounds-checked reader over the hello; every length is checked against `end`, the
/// end of the enclosing field, and against the bytes actually copied.
struct Reader<'a> {
    b: &'a [u8],
    p: usize,
}

impl Reader<'_> {
    fn need(&self, n: usize) -> Result<(), TlsError> {
        if self.p + n > self.b.len() {
            Err(TlsError::Truncated(self.b.len()))
        } else {
            Ok(())
        }
    }
    fn u8(&mut self) -> Result<u8, TlsError> {
        self.need(1)?;
        self.p += 1;
        Ok(self.b[self.p - 1])
    }
    fn u16(&mut self) -> Result<u16, TlsError> {
        self.need(2)?;
        self.p += 2;
        Ok(u16::from_be_bytes([self.b[self.p - 2], self.b[self.p - 1]]))
    }
    fn u24(&mut self) -> Result<usize, TlsError> {
        self.need(3)?;
        self.p += 3;
        Ok(usize::from(self.b[self.p - 3]) << 16 | usize::from(self.b[self.p - 2]) << 8 | usize::from(self.b[self.p - 1]))
    }
    /// Skips `n` bytes that must end within `end`; past the copied bytes is a cut.
    fn skip(&mut self, n: usize, end: usize) -> Result<(), TlsError> {
        if self.p + n > end {
            return Err(TlsError::BadLength(self.p));
        }
        self.need(n)?;
        self.p += n;
        Ok(())
    }
}

/// The server name in a ClientHello, None when the hello has none (a connection to an
/// address, or ECH hiding it).
pub fn server_name(hello: &[u8]) -> Result<Option<String>, TlsError> {
    let mut r = Reader { b: hello, p: 0 };
    if r.u8()? != RECORD_HANDSHAKE || r.u8()? != 3 {
        return Err(TlsError::NotHandshake);
    }
    r.u8()?; // minor version
    let record_len = usize::from(r.u16()?);
    let record_end = r.p + record_len;
    if r.u8()? != HANDSHAKE_CLIENT_HELLO {
        return Err(TlsError::NotClientHello);
    }
    let hello_len = r.u24()?;
    let hello_end = r.p + hello_len;
    // The hello may continue in a second record; this reads the first one only.
    let end = hello_end.min(record_end);
    r.skip(2 + 32, end)?; // client version, random
    let session = usize::from(r.u8()?);
    r.skip(session, end)?;
    let suites = usize::from(r.u16()?);
    r.skip(suites, end)?;
    let compression = usize::from(r.u8()?);
    r.skip(compression, end)?;
    if r.p == end {
        return Ok(None); // no extensions at all
    }
    let ext_len = usize::from(r.u16()?);
    let ext_end = r.p + ext_len;
    if ext_end > end {
        return Err(TlsError::BadLength(r.p - 2));
    }
    for _ in 0..MAX_EXTENSIONS {
        if r.p >= ext_end {
            return Ok(None);
        }
        let kind = r.u16()?;
        let len = usize::from(r.u16()?);
        if kind != EXT_SERVER_NAME {
            r.skip(len, ext_end)?;
            continue;
        }
        let sni_end = r.p + len;
        if sni_end > ext_end {
            return Err(TlsError::BadLength(r.p - 2));
        }
        let list_end = r.p + 2 + usize::from(r.u16()?);
        if list_end > sni_end {
            return Err(TlsError::BadLength(r.p - 2));
        }
        while r.p < list_end {
            let name_type = r.u8()?;
            let name_len = usize::from(r.u16()?);
            let start = r.p;
            r.skip(name_len, list_end)?;
            if name_type == NAME_TYPE_HOST {
                return host_name(&hello[start..start + name_len]).map(Some).ok_or(TlsError::BadName);
            }
        }
        return Ok(None);
    }
    Ok(None)
}

/// Builds ClientHellos, for tests here and in the daemon's end-to-end tests.
pub mod build {
    /// A TLS 1.2-style ClientHello naming `sni` (if any), with `padding` bytes of an
    /// unknown extension before the server name (as browsers that shuffle extensions
    /// or send large key shares do).
    pub fn client_hello(sni: Option<&str>, padding: usize) -> Vec<u8> {
        let mut ext = Vec::new();
        if padding > 0 {
            ext.extend_from_slice(&0x0015u16.to_be_bytes()); // padding extension
            ext.extend_from_slice(&(padding as u16).to_be_bytes());
            ext.extend(std::iter::repeat_n(0u8, padding));
        }
        if let Some(name) = sni {
            let n = name.as_bytes();
            ext.extend_from_slice(&0u16.to_be_bytes());
            ext.extend_from_slice(&((n.len() + 5) as u16).to_be_bytes());
            ext.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes());
            ext.push(0);
            ext.extend_from_slice(&(n.len() as u16).to_be_bytes());
            ext.extend_from_slice(n);
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x42; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::build::client_hello;
    use super::*;

    #[test]
    fn finds_the_server_name() {
        assert_eq!(server_name(&client_hello(Some("Www.Example.ORG"), 0)), Ok(Some("www.example.org".into())));
        assert_eq!(server_name(&client_hello(Some("a.example"), 1500)), Ok(Some("a.example".into())));
        assert_eq!(server_name(&client_hello(None, 10)), Ok(None));
    }

    #[test]
    fn refuses_what_is_not_a_hello_or_is_cut() {
        assert_eq!(server_name(b"GET / HTTP/1.1\r\n"), Err(TlsError::NotHandshake));
        let h = client_hello(Some("a.example"), 1500);
        assert!(matches!(server_name(&h[..1000]), Err(TlsError::Truncated(1000))));
        assert_eq!(server_name(&client_hello(Some("bad\u{1b}name"), 0)), Err(TlsError::BadName));
        let mut h = client_hello(Some("a.example"), 0);
        h[5] = 2; // ServerHello
        assert_eq!(server_name(&h), Err(TlsError::NotClientHello));
    }
}
