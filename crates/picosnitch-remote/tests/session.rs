//! Delivery against a real PostgreSQL server that the test starts itself (a throwaway
//! cluster on a loopback port), with a login that has only the README's GRANTs.
mod common;

use common::*;
use picosnitch_config::TlsMode;
use picosnitch_remote::drain::{Connector, DirectConnector};
use picosnitch_remote::tls::Tls;
use picosnitch_remote::{RemoteError, Session, Settings};
use picosnitch_testpg::{start_or_skip, Options};

fn open(s: &Settings, connect_to_port: u16) -> Result<Session, RemoteError> {
    smol::block_on(async {
        let (stream, _) = DirectConnector { host: "127.0.0.1".into(), port: connect_to_port }.connect().await.expect("tcp connect");
        Session::open(stream, s).await
    })
}

#[test]
fn batches_arrive_exactly_once_with_nothing_but_insert_and_select() {
    let Some(pg) = start_or_skip("batches_arrive_exactly_once_with_nothing_but_insert_and_select", Options { tls: false }) else { return };
    setup(&pg, "", "appender");
    // The login can do nothing else.
    for (table, privilege) in [("connections", "UPDATE"), ("connections", "DELETE"), ("connections", "SELECT"), ("executables", "UPDATE"), ("delivery", "DELETE"), ("addresses", "TRUNCATE")] {
        let sql = format!("SELECT has_table_privilege('appender', '{table}', '{privilege}')");
        assert_eq!(pg.psql(DB, &sql).expect("privilege"), "f", "appender may {privilege} {table}");
    }
    let s = settings(&pg, "", "appender", no_tls());
    let batches: Vec<_> = (1..=4).map(|seq| batch("primary-1-2", seq, 50 + seq as usize)).collect();
    let mut session = open(&s, pg.port).expect("login with only INSERT and SELECT");
    assert!(session.warnings.is_empty(), "{:?}", session.warnings);
    let d = smol::block_on(session.deliver("testhost", &batches[..2])).expect("deliver 1-2");
    assert_eq!((d.batches_new, d.batches_duplicate, d.rows), (2, 0, 51 + 52));
    // 2 again (its answer lost, say), in the same group as 3 and twice in a row.
    let again = [batches[1].clone(), batches[2].clone(), batches[2].clone()];
    let d = smol::block_on(session.deliver("testhost", &again)).expect("deliver 2, 3, 3");
    assert_eq!((d.batches_new, d.batches_duplicate, d.rows), (1, 2, 53));
    drop(session);
    // A new connection (nothing cached) interns the same executables to the same ids.
    let mut session = open(&s, pg.port).expect("login again");
    let d = smol::block_on(session.deliver("testhost", &batches[1..])).expect("deliver 2-4");
    assert_eq!((d.batches_new, d.batches_duplicate, d.rows), (1, 2, 54));
    assert_eq!(arrived(&pg, ""), expected(&batches));
    assert_eq!(count(&pg, "SELECT count(*) FROM executables"), 8, "the empty one, curl per batch, bash, long, nul: once each");
    assert_eq!(count(&pg, "SELECT count(*) FROM delivery WHERE host = 'testhost'"), 4);
    assert_eq!(pg.psql(DB, "SELECT cmdline FROM executables WHERE name = 'nul'").expect("nul"), "a\u{fffd}b");
    // Another machine with the same source and numbers is another batch.
    let d = smol::block_on(session.deliver("otherhost", &batches[..1])).expect("other host");
    assert_eq!(d.batches_new, 1);
}

#[test]
fn a_login_that_may_do_more_is_warned_about_and_one_that_may_do_less_is_refused() {
    let Some(pg) = start_or_skip("a_login_that_may_do_more_is_warned_about_and_one_that_may_do_less_is_refused", Options { tls: false }) else { return };
    setup(&pg, "h1_", "strong");
    pg.psql(DB, "GRANT UPDATE, DELETE ON h1_connections TO strong").expect("grant more");
    let session = open(&settings(&pg, "h1_", "strong", no_tls()), pg.port).expect("login");
    assert_eq!(session.warnings.len(), 1, "{:?}", session.warnings);
    assert!(session.warnings[0].contains("strong may also UPDATE, DELETE on h1_connections"), "{:?}", session.warnings);

    setup(&pg, "h2_", "weak");
    pg.psql(DB, "REVOKE SELECT ON h2_executables FROM weak; REVOKE INSERT ON h2_connections FROM weak").expect("revoke");
    let err = open(&settings(&pg, "h2_", "weak", no_tls()), pg.port).err().expect("refused");
    let text = err.to_string();
    assert!(matches!(err, RemoteError::Schema(_)), "{text}");
    assert!(text.contains("weak may not SELECT on h2_executables") && text.contains("weak may not INSERT on h2_connections"), "{text}");
    assert!(text.contains("picosnitch remote-schema"), "{text}");

    // No tables at all for this prefix.
    let err = open(&settings(&pg, "h3_", "weak", no_tls()), pg.port).err().expect("refused");
    assert!(err.to_string().contains("table h3_connections does not exist"), "{err}");
}

#[test]
fn a_wrong_password_is_a_clear_login_error() {
    let Some(pg) = start_or_skip("a_wrong_password_is_a_clear_login_error", Options { tls: false }) else { return };
    setup(&pg, "", "appender");
    let mut s = settings(&pg, "", "appender", no_tls());
    s.password = Some("wrong".into());
    let err = open(&s, pg.port).err().expect("refused");
    assert!(matches!(err, RemoteError::Login { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("password authentication failed for user \"appender\""), "{text}");
    assert!(text.contains("check [database.remote] user and password_file"), "{text}");
    s.password = None;
    let err = open(&s, pg.port).err().expect("refused");
    assert!(err.to_string().contains("password_file is not set"), "{err}");
}

#[test]
fn tls_is_verified_against_the_ca_and_the_host_name() {
    let Some(pg) = start_or_skip("tls_is_verified_against_the_ca_and_the_host_name", Options { tls: true }) else { return };
    setup(&pg, "", "appender");
    let ca = pg.ca_file();
    let verified = Tls::load(TlsMode::VerifyFull, &ca).expect("ca file");
    assert!(verified.description().contains(&ca.display().to_string()));
    let mut s = settings(&pg, "", "appender", verified.clone());
    let mut session = open(&s, pg.port).expect("verified TLS login");
    smol::block_on(session.deliver("testhost", &[batch("p", 1, 3)])).expect("deliver over TLS");
    let ssl = pg.psql(DB, "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'appender'").expect("pg_stat_ssl");
    assert_eq!(ssl, "t", "the connection is encrypted");
    drop(session);

    // The certificate names localhost and 127.0.0.1, not this name.
    s.host = "db.example.org".into();
    let err = open(&s, pg.port).err().expect("wrong name");
    assert!(matches!(err, RemoteError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("certificate not valid for name \"db.example.org\""), "{err}");

    // The system's roots do not know the test CA.
    if let Ok(system) = Tls::load(TlsMode::VerifyFull, std::path::Path::new("")) {
        let s = settings(&pg, "", "appender", system);
        let err = open(&s, pg.port).err().expect("unknown issuer");
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    }

    // A CA file that is not one.
    let bogus = pg.scratch().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").expect("write");
    let err = Tls::load(TlsMode::VerifyFull, &bogus).err().expect("bogus ca");
    assert!(err.to_string().contains("no usable CA certificate"), "{err}");
}

#[test]
fn verify_full_refuses_a_server_without_tls() {
    let Some(pg) = start_or_skip("verify_full_refuses_a_server_without_tls", Options { tls: false }) else { return };
    setup(&pg, "", "appender");
    let any_ca = Tls::load(TlsMode::VerifyFull, std::path::Path::new(""));
    let Ok(tls) = any_ca else { return };
    let err = open(&settings(&pg, "", "appender", tls), pg.port).err().expect("no TLS offered");
    assert!(matches!(err, RemoteError::NoTls { .. }), "{err}");
}
