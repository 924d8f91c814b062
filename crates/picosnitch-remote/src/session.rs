//! One logged-in connection to the remote database: the schema checked, statements
//! prepared, and batches delivered exactly once, each group in one transaction.
use crate::error::{chain, RemoteError};
use crate::schema::Tables;
use crate::settings::Settings;
use crate::tls::Tls;
use async_io::Async;
use picosnitch_ipc::rows::RowBatch;
use picosnitch_store::ExeRecord;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::TcpStream;
use std::pin::Pin;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// What one call to [`Session::deliver`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    pub batches_new: u64,
    pub batches_duplicate: u64,
    pub rows: u64,
}

/// Polls the connection's I/O; it runs only while a call is in progress, which is all
/// it needs (between calls the server has nothing to say that cannot wait).
type Driver = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>>>>;

struct Statements {
    delivery: Statement,
    exe_insert: Statement,
    exe_select: Statement,
    addr_insert: Statement,
    addr_select: Statement,
    domain_insert: Statement,
    domain_select: Statement,
    rows_insert: Statement,
}

/// Ids already known to be on the server; rows there are never deleted, so they stay
/// valid for as long as the tables exist.
const ID_CACHE_LIMIT: usize = 100_000;

pub struct Session {
    client: Client,
    driver: Driver,
    st: Statements,
    exe_ids: HashMap<ExeRecord, i64>,
    addr_ids: HashMap<String, i64>,
    domain_ids: HashMap<String, i64>,
    /// Things that work but should be fixed (more privileges than needed).
    pub warnings: Vec<String>,
}

impl Session {
    /// Logs in over `stream` (already connected to the server), checks the schema and
    /// the login's privileges, and prepares the statements.
    pub async fn open(stream: TcpStream, s: &Settings) -> Result<Session, RemoteError> {
        let io = Async::new(stream).map_err(|e| RemoteError::Connection(format!("registering the socket: {e}")))?.compat();
        let mut pg = tokio_postgres::Config::new();
        pg.user(&s.user).dbname(&s.database).application_name("picosnitch");
        if let Some(p) = &s.password {
            pg.password(p);
        }
        let (client, driver): (Client, Driver) = match &s.tls {
            Tls::Disabled => {
                pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
                let (c, conn) = pg.connect_raw(io, tokio_postgres::NoTls).await.map_err(|e| login_error(&e, s))?;
                (c, Box::pin(conn))
            }
            Tls::Verified { config, .. } => {
                // Require: a server (or someone in between) that declines TLS is an
                // error, never a quiet fallback to plain text.
                pg.ssl_mode(tokio_postgres::config::SslMode::Require);
                let make = tokio_postgres_rustls::MakeRustlsConnect::new((**config).clone());
                let tls = tokio_postgres::tls::MakeTlsConnect::<tokio_util::compat::Compat<Async<TcpStream>>>::make_tls_connect(
                    &mut make.clone(),
                    &s.host,
                )
                .map_err(|e| RemoteError::Tls { server: s.server(), host: s.host.clone(), why: e.to_string() })?;
                let (c, conn) = pg.connect_raw(io, tls).await.map_err(|e| login_error(&e, s))?;
                (c, Box::pin(conn))
            }
        };
        let mut driver = driver;
        let tables = s.tables.clone();
        let user = s.user.clone();
        let setup = async {
            let warnings = check_schema(&client, &tables, &user).await?;
            let st = prepare(&client, &tables).await?;
            Ok::<_, RemoteError>((warnings, st))
        };
        let (warnings, st) = drive(&mut driver, setup).await?;
        Ok(Session { client, driver, st, exe_ids: HashMap::new(), addr_ids: HashMap::new(), domain_ids: HashMap::new(), warnings })
    }

    /// Delivers `batches` in one transaction: those the server already has (by host,
    /// source and number) are skipped, the others are inserted with their rows. Any
    /// error rolls everything back; after one that is not [`RemoteError::is_data_error`]
    /// the session must be dropped.
    pub async fn deliver(&mut self, machine: &str, batches: &[RowBatch]) -> Result<Delivered, RemoteError> {
        let Session { client, driver, st, exe_ids, addr_ids, domain_ids, .. } = self;
        let mut learned = Learned::default();
        let work = deliver_in(client, st, Known { exe_ids, addr_ids, domain_ids }, &mut learned, machine, batches);
        let done = drive(driver, work).await?;
        // Only now committed: ids learned in a transaction that rolled back may not exist.
        for (map, new) in [(&mut *addr_ids, learned.addrs), (&mut *domain_ids, learned.domains)] {
            if map.len() > ID_CACHE_LIMIT {
                map.clear();
            }
            map.extend(new);
        }
        if exe_ids.len() > ID_CACHE_LIMIT {
            exe_ids.clear();
        }
        exe_ids.extend(learned.exes);
        Ok(done)
    }
}

/// Runs `work` while polling the connection; the connection ending first is an error.
async fn drive<T>(driver: &mut Driver, work: impl Future<Output = Result<T, RemoteError>>) -> Result<T, RemoteError> {
    futures_lite::future::or(work, async {
        Err(match driver.as_mut().await {
            Ok(()) => RemoteError::Connection("the server closed the connection".into()),
            Err(e) => runtime_error(&e),
        })
    })
    .await
}

fn login_error(e: &tokio_postgres::Error, s: &Settings) -> RemoteError {
    let server = s.server();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            return RemoteError::Login { server, user: s.user.clone(), message: db.message().to_string() };
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return RemoteError::Schema(format!("database {:?} does not exist on {server}", s.database));
        }
        return RemoteError::Connection(format!("{server}: {}", db.message()));
    }
    let text = chain(e);
    if text.contains("server does not support TLS") {
        return RemoteError::NoTls { server };
    }
    if let Some(why) = text.strip_prefix("error performing TLS handshake: ") {
        return RemoteError::Tls { server, host: s.host.clone(), why: why.to_string() };
    }
    if text.contains("password missing") {
        return RemoteError::Login { server, user: s.user.clone(), message: "the server asks for a password and [database.remote] password_file is not set".into() };
    }
    RemoteError::Connection(format!("{server}: {text}"))
}

/// An error while working: the server's verdict on the data, on the schema, or the
/// connection's end.
fn runtime_error(e: &tokio_postgres::Error) -> RemoteError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let text = match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        };
        return match &code[..2] {
            // Data exception, integrity constraint violation: the batch itself.
            "22" | "23" => RemoteError::Refused(text),
            // Undefined table, function or column; permission denied.
            "42" => RemoteError::Schema(text),
            _ => RemoteError::Connection(text),
        };
    }
    RemoteError::Connection(chain(e))
}

async fn check_schema(client: &Client, t: &Tables, user: &str) -> Result<Vec<String>, RemoteError> {
    let encoding: String = client
        .query_one("SELECT current_setting('server_encoding')", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| runtime_error(&e))?;
    if encoding != "UTF8" {
        return Err(RemoteError::Schema(format!("the database's encoding is {encoding}, not UTF8 (CREATE DATABASE ... ENCODING 'UTF8')")));
    }
    let needs = t.needs();
    let names: Vec<&str> = needs.iter().map(|(n, _)| *n).collect();
    let rows = client
        .query(
            "SELECT t, to_regclass(t) IS NOT NULL,
                    coalesce(has_table_privilege(to_regclass(t)::oid, 'INSERT'), false),
                    coalesce(has_table_privilege(to_regclass(t)::oid, 'SELECT'), false),
                    coalesce(has_table_privilege(to_regclass(t)::oid, 'UPDATE'), false),
                    coalesce(has_table_privilege(to_regclass(t)::oid, 'DELETE'), false),
                    coalesce(has_table_privilege(to_regclass(t)::oid, 'TRUNCATE'), false)
             FROM unnest($1::text[]) AS t",
            &[&names],
        )
        .await
        .map_err(|e| runtime_error(&e))?;
    let mut missing: Vec<String> = Vec::new();
    let mut excess: Vec<String> = Vec::new();
    let bad = |e: tokio_postgres::Error| RemoteError::Connection(format!("reading the privilege check: {e}"));
    for row in &rows {
        let name: String = row.try_get(0).map_err(bad)?;
        let present: bool = row.try_get(1).map_err(bad)?;
        let have: [bool; 5] = [
            row.try_get(2).map_err(bad)?,
            row.try_get(3).map_err(bad)?,
            row.try_get(4).map_err(bad)?,
            row.try_get(5).map_err(bad)?,
            row.try_get(6).map_err(bad)?,
        ];
        if !present {
            missing.push(format!("table {name} does not exist"));
            continue;
        }
        let need = needs.iter().find(|(n, _)| *n == name).map_or(&[][..], |(_, p)| *p);
        for (i, p) in ["INSERT", "SELECT"].iter().enumerate() {
            if need.contains(p) && !have[i] {
                missing.push(format!("{user} may not {p} on {name}"));
            }
        }
        let extra: Vec<&str> = ["UPDATE", "DELETE", "TRUNCATE"].iter().zip(&have[2..]).filter(|(_, h)| **h).map(|(p, _)| *p).collect();
        if !extra.is_empty() {
            excess.push(format!("{user} may also {} on {name}", extra.join(", ")));
        }
    }
    let f = client
        .query_one(
            "SELECT to_regprocedure($1) IS NOT NULL, coalesce(has_function_privilege(to_regprocedure($1)::oid, 'EXECUTE'), false)",
            &[&t.exe_key_signature()],
        )
        .await
        .map_err(|e| runtime_error(&e))?;
    match (f.try_get::<_, bool>(0).map_err(bad)?, f.try_get::<_, bool>(1).map_err(bad)?) {
        (false, _) => missing.push(format!("function {} does not exist", t.exe_key_signature())),
        (true, false) => missing.push(format!("{user} may not EXECUTE {}", t.exe_key_signature())),
        (true, true) => {}
    }
    if !missing.is_empty() {
        return Err(RemoteError::Schema(missing.join("; ")));
    }
    Ok(excess
        .into_iter()
        .map(|e| format!("{e}: a root attacker on this host could rewrite what already arrived; give the login only the GRANTs of `picosnitch remote-schema`"))
        .collect())
}

async fn prepare(client: &Client, t: &Tables) -> Result<Statements, RemoteError> {
    let p = |sql: String| async move { client.prepare(&sql).await.map_err(|e| runtime_error(&e)) };
    let (e, d, a, c, dl, k) = (&t.executables, &t.domains, &t.addresses, &t.connections, &t.delivery, &t.exe_key);
    Ok(Statements {
        delivery: p(format!(
            "INSERT INTO {dl} (host, source, seq, rows) SELECT $1, s, q, n FROM unnest($2::text[], $3::bigint[], $4::integer[]) AS b(s, q, n)
             ON CONFLICT DO NOTHING RETURNING source, seq"
        ))
        .await?,
        exe_insert: p(format!(
            "INSERT INTO {e} (exe, name, cmdline, sha256) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING"
        ))
        .await?,
        // The digest finds the row through the unique index; the columns rule out a
        // digest collision.
        exe_select: p(format!(
            "SELECT x.id, x.exe, x.name, x.cmdline, x.sha256 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS v(exe, name, cmdline, sha256)
             JOIN {e} x ON {k}(x.exe, x.name, x.cmdline, x.sha256) = {k}(v.exe, v.name, v.cmdline, v.sha256)
              AND x.exe = v.exe AND x.name = v.name AND x.cmdline = v.cmdline AND x.sha256 = v.sha256"
        ))
        .await?,
        addr_insert: p(format!("INSERT INTO {a} (addr) SELECT * FROM unnest($1::text[]) ON CONFLICT DO NOTHING")).await?,
        addr_select: p(format!("SELECT id, addr FROM {a} WHERE addr = ANY($1::text[])")).await?,
        domain_insert: p(format!("INSERT INTO {d} (domain) SELECT * FROM unnest($1::text[]) ON CONFLICT DO NOTHING")).await?,
        domain_select: p(format!("SELECT id, domain FROM {d} WHERE domain = ANY($1::text[])")).await?,
        rows_insert: p(format!(
            "INSERT INTO {c} (contime, send, recv, events, exe_id, pexe_id, gpexe_id, uid, family, protocol, lport, rport, laddr_id, raddr_id, domain_id, netns)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
                                  $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[])"
        ))
        .await?,
    })
}

struct Known<'a> {
    exe_ids: &'a HashMap<ExeRecord, i64>,
    addr_ids: &'a HashMap<String, i64>,
    domain_ids: &'a HashMap<String, i64>,
}

#[derive(Default)]
struct Learned {
    exes: HashMap<ExeRecord, i64>,
    addrs: HashMap<String, i64>,
    domains: HashMap<String, i64>,
}

/// PostgreSQL's text cannot hold NUL; a value with one would be refused forever.
fn clean(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{fffd}")
    } else {
        s.to_string()
    }
}

fn clean_exe(e: &ExeRecord) -> ExeRecord {
    ExeRecord { exe: clean(&e.exe), name: clean(&e.name), cmdline: clean(&e.cmdline), sha256: clean(&e.sha256) }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

async fn deliver_in(
    client: &mut Client,
    st: &Statements,
    known: Known<'_>,
    learned: &mut Learned,
    machine: &str,
    batches: &[RowBatch],
) -> Result<Delivered, RemoteError> {
    let db = |e: tokio_postgres::Error| runtime_error(&e);
    let tx = client.transaction().await.map_err(db)?;
    let sources: Vec<&str> = batches.iter().map(|b| b.source.as_str()).collect();
    let seqs: Vec<i64> = batches.iter().map(|b| clamp(b.seq)).collect();
    let counts: Vec<i32> = batches.iter().map(|b| i32::try_from(b.rows.len()).unwrap_or(i32::MAX)).collect();
    let mut fresh: HashSet<(String, i64)> = HashSet::new();
    for r in tx.query(&st.delivery, &[&machine, &sources, &seqs, &counts]).await.map_err(db)? {
        fresh.insert((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?));
    }
    // Each (source, seq) once, even when the spool held a batch twice in a row.
    let new: Vec<&RowBatch> = batches.iter().filter(|b| fresh.remove(&(b.source.clone(), clamp(b.seq)))).collect();
    let duplicate = (batches.len() - new.len()) as u64;
    if new.is_empty() {
        tx.rollback().await.map_err(db)?;
        return Ok(Delivered { batches_new: 0, batches_duplicate: duplicate, rows: 0 });
    }

    // Executables the server may not have yet: inserted unless there, then looked up.
    let mut wanted: Vec<ExeRecord> = Vec::new();
    let mut seen: HashSet<ExeRecord> = HashSet::new();
    for b in &new {
        for e in &b.exes {
            let e = clean_exe(e);
            if e != ExeRecord::default() && !known.exe_ids.contains_key(&e) && seen.insert(e.clone()) {
                wanted.push(e);
            }
        }
    }
    if !wanted.is_empty() {
        let cols: [Vec<&str>; 4] = [
            wanted.iter().map(|e| e.exe.as_str()).collect(),
            wanted.iter().map(|e| e.name.as_str()).collect(),
            wanted.iter().map(|e| e.cmdline.as_str()).collect(),
            wanted.iter().map(|e| e.sha256.as_str()).collect(),
        ];
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&cols[0], &cols[1], &cols[2], &cols[3]];
        tx.execute(&st.exe_insert, &params).await.map_err(db)?;
        for r in tx.query(&st.exe_select, &params).await.map_err(db)? {
            let e = ExeRecord { exe: r.try_get(1).map_err(db)?, name: r.try_get(2).map_err(db)?, cmdline: r.try_get(3).map_err(db)?, sha256: r.try_get(4).map_err(db)? };
            learned.exes.insert(e, r.try_get(0).map_err(db)?);
        }
        if let Some(m) = wanted.iter().find(|e| !learned.exes.contains_key(*e)) {
            return Err(RemoteError::Schema(format!("the executable {:?} has no id after it was inserted (is the unique index on {}'s digest missing?)", m.exe, "executables")));
        }
    }

    // Addresses and domains, the same way.
    let mut want_addr: Vec<String> = Vec::new();
    let mut want_domain: Vec<String> = Vec::new();
    let (mut seen_a, mut seen_d) = (HashSet::new(), HashSet::new());
    for b in &new {
        for r in &b.rows {
            for (i, is_domain) in [(r.laddr, false), (r.raddr, false), (r.domain, true)] {
                let Some(t) = b.texts.get(i as usize) else { continue };
                let t = clean(t);
                if t.is_empty() {
                    continue;
                }
                if is_domain {
                    if !known.domain_ids.contains_key(&t) && seen_d.insert(t.clone()) {
                        want_domain.push(t);
                    }
                } else if !known.addr_ids.contains_key(&t) && seen_a.insert(t.clone()) {
                    want_addr.push(t);
                }
            }
        }
    }
    for (want, insert, select, into) in [
        (&want_addr, &st.addr_insert, &st.addr_select, &mut learned.addrs),
        (&want_domain, &st.domain_insert, &st.domain_select, &mut learned.domains),
    ] {
        if want.is_empty() {
            continue;
        }
        tx.execute(insert, &[want]).await.map_err(db)?;
        for r in tx.query(select, &[want]).await.map_err(db)? {
            into.insert(r.try_get(1).map_err(db)?, r.try_get(0).map_err(db)?);
        }
        if let Some(m) = want.iter().find(|t| !into.contains_key(*t)) {
            return Err(RemoteError::Schema(format!("{m:?} has no id after it was inserted")));
        }
    }

    // The rows, by id, in one statement.
    let mut cols: [Vec<i64>; 16] = Default::default();
    let mut rows = 0u64;
    for b in &new {
        let exe_id = |i: u32| -> Result<i64, RemoteError> {
            let e = b.exes.get(i as usize).ok_or_else(|| malformed(b, "executable", i))?;
            let e = clean_exe(e);
            if e == ExeRecord::default() {
                return Ok(0);
            }
            known.exe_ids.get(&e).or_else(|| learned.exes.get(&e)).copied().ok_or_else(|| malformed(b, "unknown executable", i))
        };
        let text_id = |i: u32, ids: &HashMap<String, i64>, more: &HashMap<String, i64>| -> Result<i64, RemoteError> {
            let t = clean(b.texts.get(i as usize).ok_or_else(|| malformed(b, "text", i))?);
            if t.is_empty() {
                return Ok(0);
            }
            ids.get(&t).or_else(|| more.get(&t)).copied().ok_or_else(|| malformed(b, "unknown text", i))
        };
        for r in &b.rows {
            let values = [
                r.contime,
                clamp(r.send),
                clamp(r.recv),
                clamp(r.events),
                exe_id(r.exe)?,
                exe_id(r.pexe)?,
                exe_id(r.gpexe)?,
                i64::from(r.uid),
                i64::from(r.family),
                i64::from(r.protocol),
                i64::from(r.lport),
                i64::from(r.rport),
                text_id(r.laddr, known.addr_ids, &learned.addrs)?,
                text_id(r.raddr, known.addr_ids, &learned.addrs)?,
                text_id(r.domain, known.domain_ids, &learned.domains)?,
                i64::from(r.netns),
            ];
            for (c, v) in cols.iter_mut().zip(values) {
                c.push(v);
            }
            rows += 1;
        }
    }
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = cols.iter().map(|c| c as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
    tx.execute(&st.rows_insert, &params).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Delivered { batches_new: new.len() as u64, batches_duplicate: duplicate, rows })
}

fn malformed(b: &RowBatch, what: &str, index: u32) -> RemoteError {
    RemoteError::Refused(format!("batch {} of {} refers to {what} {index}, which it does not hold", b.seq, b.source))
}
