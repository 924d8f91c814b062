//! What the remote crate's tests share: a database made the way the README says, and
//! batches whose rows can be compared with what arrived.
#![allow(dead_code)]

use picosnitch_config::TlsMode;
use picosnitch_ipc::rows::{PackedRow, RowBatch};
use picosnitch_remote::schema::{setup_sql, Tables};
use picosnitch_remote::tls::Tls;
use picosnitch_remote::Settings;
use picosnitch_store::{ConnectionRecord, ExeRecord};
use picosnitch_testpg::Postgres;

pub const DB: &str = "picosnitch";
pub const PASSWORD: &str = "s3cret 'quoted\" pass";

/// Creates the login `user` (with only the README's GRANTs) and the tables.
pub fn setup(pg: &Postgres, prefix: &str, user: &str) {
    if pg.psql("postgres", &format!("SELECT 1 FROM pg_database WHERE datname = '{DB}'")).expect("query") != "1" {
        pg.psql("postgres", &format!("CREATE DATABASE {DB} ENCODING 'UTF8'")).expect("create database");
    }
    pg.psql("postgres", &format!("CREATE ROLE \"{user}\" LOGIN PASSWORD '{}'", PASSWORD.replace('\'', "''"))).expect("create role");
    pg.psql(DB, &setup_sql(&Tables::new(prefix), user, DB)).expect("the README's setup SQL runs");
}

pub fn settings(pg: &Postgres, prefix: &str, user: &str, tls: Tls) -> Settings {
    Settings {
        host: "127.0.0.1".into(),
        port: pg.port,
        user: user.into(),
        database: DB.into(),
        password: Some(PASSWORD.into()),
        tables: Tables::new(prefix),
        tls,
        machine: "testhost".into(),
    }
}

pub fn no_tls() -> Tls {
    Tls::load(TlsMode::Disable, std::path::Path::new("")).expect("no tls")
}

/// A batch of `n` rows: several executables (one with a command line too long for a
/// plain unique index, one with a NUL), both address families and a domain.
pub fn batch(source: &str, seq: u64, n: usize) -> RowBatch {
    let mut b = RowBatch::new(source.into(), seq);
    b.exes = vec![
        ExeRecord::default(),
        ExeRecord { exe: "/usr/bin/curl".into(), name: "curl".into(), cmdline: format!("curl https://example.org/{seq}"), sha256: "a".repeat(64) },
        ExeRecord { exe: "/usr/bin/bash".into(), name: "bash".into(), cmdline: "bash".into(), sha256: "b".repeat(64) },
        ExeRecord { exe: "/opt/x y/long".into(), name: "long".into(), cmdline: format!("long {}", "z".repeat(4090)), sha256: "!unreadable".into() },
        ExeRecord { exe: "/tmp/nul".into(), name: "nul".into(), cmdline: "a\0b".into(), sha256: "c".repeat(64) },
    ];
    b.texts = vec![String::new(), "127.0.0.1".into(), "2001:db8::1".into(), "example.org".into(), format!("10.0.{}.{}", seq % 250, n % 250)];
    for i in 0..n {
        let i32_ = i as u32;
        b.rows.push(PackedRow {
            contime: 1_700_000_000 + seq as i64 * 10 + i as i64,
            send: i as u64 * 3,
            recv: u64::MAX - i as u64,
            events: 1,
            exe: 1 + i32_ % 4,
            pexe: 2,
            gpexe: if i % 2 == 0 { 0 } else { 2 },
            uid: 1000 + i32_,
            family: if i % 3 == 0 { 10 } else { 2 },
            protocol: 6,
            lport: 1024 + (i % 60000) as u16,
            rport: 443,
            laddr: 1,
            raddr: if i % 3 == 0 { 2 } else { 4 },
            domain: if i % 2 == 0 { 3 } else { 0 },
            netns: 4_026_531_840,
        });
    }
    b
}

fn line(r: &ConnectionRecord) -> String {
    let e = |x: &ExeRecord| format!("{}|{}|{}|{}", x.exe, x.name, x.cmdline.replace('\0', "\u{fffd}"), x.sha256);
    format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        r.contime,
        r.send,
        r.recv,
        r.events,
        e(&r.exe),
        e(&r.pexe),
        e(&r.gpexe),
        r.uid,
        r.family,
        r.protocol,
        r.lport,
        r.rport,
        r.laddr,
        r.raddr,
        r.domain,
        r.netns
    )
}

/// The rows of `batches` as the remote should hold them, one line each, sorted.
pub fn expected(batches: &[RowBatch]) -> Vec<String> {
    let mut out: Vec<String> = batches.iter().flat_map(|b| b.unpack().expect("unpack")).map(|r| line(&r)).collect();
    out.sort();
    out
}

/// What arrived, joined back through the side tables, in the same form.
pub fn arrived(pg: &Postgres, prefix: &str) -> Vec<String> {
    let p = prefix;
    let sql = format!(
        "SELECT c.contime, c.send, c.recv, c.events, e.exe, e.name, e.cmdline, e.sha256, pe.exe, pe.name, pe.cmdline, pe.sha256,
                g.exe, g.name, g.cmdline, g.sha256, c.uid, c.family, c.protocol, c.lport, c.rport, la.addr, ra.addr, d.domain, c.netns
         FROM {p}connections c JOIN {p}executables e ON e.id = c.exe_id JOIN {p}executables pe ON pe.id = c.pexe_id
         JOIN {p}executables g ON g.id = c.gpexe_id JOIN {p}addresses la ON la.id = c.laddr_id
         JOIN {p}addresses ra ON ra.id = c.raddr_id JOIN {p}domains d ON d.id = c.domain_id"
    );
    let text = pg.psql(DB, &sql).expect("reading what arrived");
    let mut out: Vec<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    out.sort();
    out
}

pub fn count(pg: &Postgres, sql: &str) -> i64 {
    pg.psql(DB, sql).expect("count").trim().parse().expect("a number")
}
