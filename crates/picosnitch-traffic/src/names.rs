//! Traffic that names its peer: a DNS server answering with a CNAME chain, a client
//! that resolves a name through it and then connects to the answer, and a TLS client
//! whose first packet is a ClientHello naming a server.
use crate::report::{announce_port, Report, IO_TIMEOUT};
use anyhow::{bail, Context};
use picosnitch_domains::dns::build::{query, response, Rr};
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};

/// Answers `count` queries (over UDP, or TCP with `tcp`) for any name: the question,
/// then each of `chain` as a CNAME of the one before, then `a` (for A queries) or
/// `aaaa` (for AAAA queries) as the last name's address.
pub fn dns_server(bind: SocketAddr, count: usize, tcp: bool, chain: &[String], a: IpAddr, aaaa: IpAddr, ttl: u32) -> anyhow::Result<Report> {
    let mut r = Report::default();
    let answer_to = |q: &[u8]| -> anyhow::Result<Vec<u8>> {
        if q.len() < 17 {
            bail!("a query of {} bytes", q.len());
        }
        let id = u16::from_be_bytes([q[0], q[1]]);
        // The question name, uncompressed, then QTYPE.
        let mut p = 12;
        let mut labels = Vec::new();
        while p < q.len() && q[p] != 0 {
            let l = usize::from(q[p]);
            labels.push(String::from_utf8_lossy(q.get(p + 1..p + 1 + l).context("a cut query")?).into_owned());
            p += 1 + l;
        }
        let qtype = u16::from_be_bytes([*q.get(p + 1).context("cut")?, *q.get(p + 2).context("cut")?]);
        let question = labels.join(".");
        let v6 = qtype == 28;
        let mut names = vec![question.as_str()];
        names.extend(chain.iter().map(String::as_str));
        let mut rrs: Vec<Rr> = names.windows(2).map(|w| Rr::Cname(w[0], w[1], ttl)).collect();
        let last = names.last().copied().unwrap_or(question.as_str());
        rrs.push(Rr::Addr(last, if v6 { aaaa } else { a }, ttl));
        Ok(response(id, &question, v6, &rrs))
    };
    if tcp {
        let listener = TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
        announce_port(listener.local_addr()?.port());
        for _ in 0..count {
            let (mut s, _) = listener.accept().context("accepting")?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len).context("query length")?;
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut q).context("query")?;
            let a = answer_to(&q)?;
            let mut framed = (a.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&a);
            s.write_all(&framed).context("answering")?;
            r.received += q.len() as u64 + 2;
            r.sent += framed.len() as u64;
        }
    } else {
        let sock = UdpSocket::bind(bind).with_context(|| format!("binding {bind}"))?;
        announce_port(sock.local_addr()?.port());
        let mut buf = [0u8; 512];
        for _ in 0..count {
            let (n, from) = sock.recv_from(&mut buf).context("receiving a query")?;
            let a = answer_to(&buf[..n])?;
            sock.send_to(&a, from).context("answering")?;
            r.received += n as u64;
            r.sent += a.len() as u64;
        }
    }
    Ok(r)
}

/// Looks `name` up at `dns` (A, or AAAA with `v6`; over TCP with `tcp_dns`), connects
/// to the first address of the answer at `port`, sends `send` bytes and reads the
/// answer to EOF. Reports the connection's bytes only.
pub fn resolve_connect(dns: SocketAddr, name: &str, v6: bool, tcp_dns: bool, port: u16, send: usize) -> anyhow::Result<Report> {
    let q = query(0x2a2a, name, v6);
    let answer = if tcp_dns {
        let mut s = TcpStream::connect_timeout(&dns, IO_TIMEOUT).with_context(|| format!("connecting to {dns}"))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        s.write_all(&framed)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).context("answer length")?;
        let mut a = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut a).context("answer")?;
        a
    } else {
        let sock = UdpSocket::bind(if dns.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
        sock.set_read_timeout(Some(IO_TIMEOUT))?;
        sock.connect(dns)?;
        sock.send(&q).context("sending the query")?;
        let mut buf = [0u8; 1500];
        let n = sock.recv(&mut buf).context("receiving the answer")?;
        buf[..n].to_vec()
    };
    let parsed = picosnitch_domains::parse_answer(&answer).context("parsing the answer")?;
    let addr = parsed.resolved.first().map(|r| r.addr).context("the answer has no address")?;
    let mut s = TcpStream::connect_timeout(&SocketAddr::new(addr, port), IO_TIMEOUT).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut r = Report::default();
    r.local_ports.push(s.local_addr()?.port());
    s.write_all(&vec![b'c'; send]).context("sending")?;
    s.shutdown(Shutdown::Write)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).context("reading the answer")?;
    r.sent = send as u64;
    r.received = buf.len() as u64;
    Ok(r)
}

/// A server that speaks first (as SMTP or IMAP before STARTTLS do): each of `accepts`
/// connections gets `greet` bytes at once, then is read to EOF.
pub fn greeting_server(bind: SocketAddr, accepts: usize, greet: usize) -> anyhow::Result<Report> {
    let listener = TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
    announce_port(listener.local_addr()?.port());
    let mut r = Report::default();
    for _ in 0..accepts {
        let (mut s, _) = listener.accept().context("accepting")?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.write_all(&vec![b'g'; greet]).context("greeting")?;
        r.sent += greet as u64;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).context("reading")?;
        r.received += buf.len() as u64;
        r.local_ports.push(s.local_addr()?.port());
    }
    Ok(r)
}

/// Connects to `to` and sends a TLS ClientHello naming `sni` as its first packet, then
/// `send` more bytes; reads the answer to EOF. With `greeting`, first reads that many
/// bytes from the server and waits `pause_ms` (so the connection is recorded before
/// its hello goes out).
pub fn tls_hello(to: SocketAddr, sni: &str, send: usize, greeting: usize, pause_ms: u64) -> anyhow::Result<Report> {
    let mut s = TcpStream::connect_timeout(&to, IO_TIMEOUT).with_context(|| format!("connecting to {to}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    let mut r = Report::default();
    r.local_ports.push(s.local_addr()?.port());
    if greeting > 0 {
        let mut g = vec![0u8; greeting];
        s.read_exact(&mut g).context("reading the greeting")?;
        r.received += greeting as u64;
        std::thread::sleep(std::time::Duration::from_millis(pause_ms));
    }
    let hello = picosnitch_domains::tls::build::client_hello(Some(sni), 0);
    s.write_all(&hello).context("sending the ClientHello")?;
    s.write_all(&vec![b'c'; send]).context("sending")?;
    s.shutdown(Shutdown::Write)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).context("reading the answer")?;
    r.sent = (hello.len() + send) as u64;
    r.received += buf.len() as u64;
    Ok(r)
}
