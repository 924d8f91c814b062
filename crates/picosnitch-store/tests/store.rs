use picosnitch_store::*;
use rusqlite::Connection;

/// 2026-11-22 10:00:00 UTC.
const T0: i64 = 1_795_341_600;

fn exe(path: &str) -> ExeRecord {
    ExeRecord { exe: path.into(), name: path.rsplit('/').next().unwrap_or("").into(), cmdline: format!("{path} -x"), sha256: "ab".repeat(32) }
}

fn row(contime: i64, path: &str, send: i64, recv: i64) -> ConnectionRecord {
    ConnectionRecord {
        contime,
        send,
        recv,
        events: 1,
        exe: exe(path),
        pexe: exe("/usr/bin/bash"),
        gpexe: ExeRecord::default(),
        uid: 1000,
        family: 2,
        protocol: 6,
        lport: 40000,
        rport: 443,
        laddr: "10.0.0.2".into(),
        raddr: "93.184.216.34".into(),
        domain: "www.example.com".into(),
        netns: 4026531840,
    }
}

fn fresh() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snitch.db");
    let (store, report) = Store::open(&path).expect("open");
    assert!(report.moved_aside.is_none());
    (dir, path, store)
}

#[test]
fn schema_is_the_picosnitch_2_schema() {
    let (_d, path, store) = fresh();
    drop(store);
    let c = Connection::open(&path).expect("open");
    let cols = |t: &str| -> Vec<(String, String)> {
        let mut s = c.prepare(&format!("PRAGMA table_info({t})")).expect("pragma");
        s.query_map([], |r| Ok((r.get(1)?, r.get(2)?))).expect("q").map(|r| r.expect("row")).collect()
    };
    let names = |t: &str| cols(t).into_iter().map(|(n, _)| n).collect::<Vec<_>>().join(",");
    assert_eq!(names("executables"), "id,exe,name,cmdline,sha256");
    assert_eq!(names("domains"), "id,domain");
    assert_eq!(names("addresses"), "id,addr");
    assert_eq!(
        names("connections"),
        "contime,send,recv,events,exe_id,pexe_id,gpexe_id,uid,family,protocol,lport,rport,laddr_id,raddr_id,domain_id,netns"
    );
    for t in ["executables", "domains", "addresses", "connections"] {
        let sql: String = c.query_row("SELECT sql FROM sqlite_master WHERE name = ?1", [t], |r| r.get(0)).expect("sql");
        assert!(sql.trim_end().ends_with("STRICT"), "{t} is not STRICT: {sql}");
    }
    let mut idx: Vec<String> = c
        .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        .expect("p")
        .query_map([], |r| r.get(0))
        .expect("q")
        .map(|r| r.expect("row"))
        .collect();
    idx.sort();
    assert_eq!(idx.len(), 4, "{idx:?}");
    assert!(idx.iter().any(|s| s.ends_with("ON connections (contime)")));
    for col in ["exe_id", "pexe_id", "gpexe_id"] {
        assert!(idx.iter().any(|s| s.ends_with(&format!("ON connections ({col}, contime)"))), "{col}: {idx:?}");
    }
    let zero: String = c.query_row("SELECT exe || name || cmdline || sha256 FROM executables WHERE id = 0", [], |r| r.get(0)).expect("id 0");
    assert_eq!(zero, "");
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
    assert_eq!(mode, "wal");
    let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("v");
    assert_eq!(v, SCHEMA_VERSION);
}

#[test]
fn insert_interns_and_round_trips() {
    let (_d, path, mut store) = fresh();
    let a = row(T0, "/usr/bin/curl", 100, 2000);
    let b = row(T0 + 10, "/usr/bin/curl", 5, 6);
    store.insert_batch(&[a.clone(), b.clone()]).expect("insert");
    store.insert_batch(std::slice::from_ref(&a)).expect("insert again");
    let c = Connection::open(&path).expect("open");
    let n: i64 = c.query_row("SELECT count(*) FROM executables", [], |r| r.get(0)).expect("n");
    assert_eq!(n, 3, "id 0, curl and bash, each once");
    let n: i64 = c.query_row("SELECT count(*) FROM addresses", [], |r| r.get(0)).expect("n");
    assert_eq!(n, 3);
    let gp: i64 = c.query_row("SELECT DISTINCT gpexe_id FROM connections", [], |r| r.get(0)).expect("gp");
    assert_eq!(gp, 0, "an empty grandparent is id 0");
    let view = store.connections_view(T0 - 36_000, 10).expect("view");
    assert_eq!(view.len(), 3);
    assert_eq!(view[0], b);
    assert!(view.contains(&a));
}

#[test]
fn aggregator_sums_equal_rows_only() {
    let mut agg = Aggregator::default();
    agg.add(row(T0, "/a", 1, 2));
    agg.add(row(T0, "/a", 10, 20));
    agg.add(row(T0, "/b", 7, 7));
    let mut rows = agg.drain();
    rows.sort_by(|x, y| x.exe.exe.cmp(&y.exe.exe));
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].send, rows[0].recv, rows[0].events), (11, 22, 2));
    assert_eq!((rows[1].send, rows[1].recv, rows[1].events), (7, 7, 1));
    assert!(agg.is_empty());
}

#[test]
fn prune_removes_old_rows_and_orphans_only() {
    let (_d, path, mut store) = fresh();
    store
        .insert_batch(&[row(T0 - 5 * 365 * 86_400, "/old", 1, 1), row(T0 - 36_000, "/new", 1, 1)])
        .expect("insert");
    let r = store.prune(T0 - 300 * 86_400).expect("prune");
    assert_eq!((r.connections, r.executables), (1, 1));
    let c = Connection::open(&path).expect("open");
    let exes: Vec<String> = c.prepare("SELECT exe FROM executables ORDER BY id").expect("p").query_map([], |r| r.get(0)).expect("q").map(|r| r.expect("r")).collect();
    assert_eq!(exes, vec!["", "/usr/bin/bash", "/new"]);
    // Still usable after pruning dropped cached ids.
    store.insert_batch(&[row(T0 - 35_999, "/old", 1, 1)]).expect("insert after prune");
}

#[test]
fn corrupt_database_is_moved_aside_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snitch.db");
    let garbage = b"this is not an sqlite database, just bytes ".repeat(200);
    std::fs::write(&path, &garbage).expect("write");
    let (mut store, report) = Store::open(&path).expect("open recovers");
    let aside = report.moved_aside.expect("moved aside");
    assert!(aside.display().to_string().starts_with(&format!("{}.corrupt-", path.display())));
    assert_eq!(std::fs::read(&aside).expect("kept"), garbage);
    store.insert_batch(&[row(T0 - 36_000, "/x", 1, 1)]).expect("new db works");
}

#[test]
fn newer_schema_is_refused() {
    let (_d, path, store) = fresh();
    drop(store);
    Connection::open(&path).expect("o").pragma_update(None, "user_version", 99).expect("set");
    match Store::open(&path) {
        Err(StoreError::TooNew { found: 99, .. }) => {}
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("opened a newer database"),
    }
}

#[test]
fn full_disk_is_reported_and_nothing_is_half_written() {
    let (_d, path, mut store) = fresh();
    let c = Connection::open(&path).expect("o");
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).expect("pages");
    drop(c);
    // max_page_count is per connection, so it is set on the store's own connection.
    let rows: Vec<_> = (0..20_000).map(|i| row(T0 - 36_000, &format!("/bin/p{i}"), i, i)).collect();
    store.set_max_page_count_for_tests(pages + 2).expect("limit");
    match store.insert_batch(&rows) {
        Err(StoreError::Full { .. }) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    assert!(store.connections_view(0, 10).expect("view").is_empty(), "rolled back");
    store.set_max_page_count_for_tests(1 << 30).expect("unlimit");
    assert_eq!(store.insert_batch(&rows).expect("retry succeeds"), rows.len());
}

#[test]
fn read_only_cannot_write_and_queries_top() {
    let (_d, path, mut store) = fresh();
    store
        .insert_batch(&[
            row(T0, "/usr/bin/curl", 100, 2000),
            row(T0, "/usr/bin/wget", 1, 1),
        ])
        .expect("insert");
    let mut ro = Store::open_read_only(&path).expect("ro");
    assert!(ro.insert_batch(&[row(T0, "/x", 1, 1)]).is_err());
    let top = ro.top_executables(&TopQuery { limit: 10, ..Default::default() }).expect("top");
    assert_eq!(top[0].exe, "/usr/bin/curl");
    assert_eq!((top[0].send, top[0].recv, top[0].connections), (100, 2000, 1));
    let q = |f: TopQuery| ro.top_executables(&TopQuery { limit: 10, ..f }).expect("q").len();
    assert_eq!(q(TopQuery { exe: Some("wget".into()), ..Default::default() }), 1);
    assert_eq!(q(TopQuery { domain: Some("example.com".into()), ..Default::default() }), 2);
    assert_eq!(q(TopQuery { domain: Some("ample.com".into()), ..Default::default() }), 0);
    assert_eq!(q(TopQuery { port: Some(443), ..Default::default() }), 2);
    assert_eq!(q(TopQuery { port: Some(444), ..Default::default() }), 0);
    assert_eq!(q(TopQuery { since: Some(T0 + 86_400), ..Default::default() }), 0);
    let table = render_table(&top);
    assert!(table.contains("1.0 KiB") || table.contains("2000 B") || table.contains("2.0 KiB"), "{table}");
    assert!(render_csv(&top).starts_with("exe,name,sha256,connections,send,recv,virustotal\n/usr/bin/curl,curl,"));
    let json: serde_json::Value = serde_json::from_str(&render_json(&top)).expect("json");
    assert_eq!(json[0]["recv"], 2000);
}

#[test]
fn a_batch_is_inserted_once_per_source_and_sequence() {
    let (_d, path, mut store) = fresh();
    let rows = [row(T0, "/usr/bin/curl", 1, 2)];
    assert_eq!(store.insert_batch_once("primary-1", 1, &rows).expect("first"), Delivery::Inserted(1));
    assert_eq!(store.insert_batch_once("primary-1", 1, &rows).expect("again"), Delivery::AlreadyDelivered);
    assert_eq!(store.insert_batch_once("primary-1", 2, &rows).expect("next"), Delivery::Inserted(1));
    assert_eq!(store.insert_batch_once("primary-2", 1, &rows).expect("other source"), Delivery::Inserted(1));
    assert_eq!(store.delivered_seq("primary-1").expect("seq"), Some(2));
    assert_eq!(store.delivered_seq("nobody").expect("seq"), None);
    let n: i64 = Connection::open(&path).expect("o").query_row("SELECT count(*) FROM connections", [], |r| r.get(0)).expect("n");
    assert_eq!(n, 3);
}

#[test]
fn picosnitch_documented_queries_work() {
    let (_d, path, mut store) = fresh();
    let now = unix_now();
    store.insert_batch(&[row(now - 60, "/usr/bin/curl", 10, 2000), row(now - 3 * 86_400, "/usr/bin/wget", 1, 1)]).expect("insert");
    let c = Connection::open(&path).expect("o");
    // From picosnitch's docs/schema.md: top executables by bytes received in the last day.
    let top: Vec<(String, i64)> = c
        .prepare(
            "SELECT e.name, SUM(c.recv) AS bytes_in FROM connections c JOIN executables e ON e.id = c.exe_id
             WHERE c.contime >= unixepoch('now', '-1 day') GROUP BY c.exe_id ORDER BY bytes_in DESC LIMIT 10",
        )
        .expect("p")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("q")
        .map(|r| r.expect("r"))
        .collect();
    assert_eq!(top, vec![("curl".to_string(), 2000)]);
    let week: i64 = c
        .query_row(
            "SELECT count(*) FROM (SELECT DISTINCT e.name, d.domain FROM connections c JOIN executables e ON e.id = c.exe_id
             JOIN domains d ON d.id = c.domain_id WHERE c.contime >= unixepoch('now', '-7 days'))",
            [],
            |r| r.get(0),
        )
        .expect("week");
    assert_eq!(week, 2);
}

#[test]
fn verdicts_commit_with_their_batch_and_show_in_top() {
    let (_d, path, mut store) = fresh();
    let sha = "ab".repeat(32);
    let flagged = Verdict { sha256: sha.clone(), checked: T0, result: VerdictResult::Analysed, malicious: 3, undetected: 60, ..Default::default() };
    let rows = [row(T0, "/usr/bin/curl", 1, 2)];
    assert_eq!(store.insert_delivery("p", 1, &rows, std::slice::from_ref(&flagged)).expect("batch"), Delivery::Inserted(1));
    // A resent batch changes nothing, verdicts included.
    let later = Verdict { checked: T0 + 1, malicious: 0, ..flagged.clone() };
    assert_eq!(store.insert_delivery("p", 1, &[], std::slice::from_ref(&later)).expect("again"), Delivery::AlreadyDelivered);
    assert_eq!(store.verdict(&sha).expect("verdict"), Some(flagged.clone()));
    let ro = Store::open_read_only(&path).expect("ro");
    let top = ro.top_executables(&TopQuery { limit: 10, ..Default::default() }).expect("top");
    assert_eq!(top[0].virustotal, "3/63 malicious");
    assert!(render_table(&top).lines().nth(1).is_some_and(|l| l.ends_with("3/63 malicious")), "{}", render_table(&top));
    assert!(render_csv(&top).lines().nth(1).is_some_and(|l| l.ends_with(",3/63 malicious")));
    // A newer answer replaces the old one.
    store.record_verdicts(&[Verdict { checked: T0 + 5, result: VerdictResult::NotFound, malicious: 0, undetected: 0, ..flagged }]).expect("replace");
    assert_eq!(ro.top_executables(&TopQuery { limit: 10, ..Default::default() }).expect("top")[0].virustotal, "not on VirusTotal");
    // Verdicts go with the last executable that had the hash.
    store.prune(T0 + 1).expect("prune");
    let n: i64 = Connection::open(&path).expect("o").query_row("SELECT count(*) FROM virustotal", [], |r| r.get(0)).expect("n");
    assert_eq!(n, 0);
}

#[test]
fn a_version_2_history_gains_the_verdict_table_and_reads_without_it() {
    let (_d, path, mut store) = fresh();
    store.insert_batch(&[row(T0, "/usr/bin/curl", 1, 2)]).expect("insert");
    drop(store);
    Connection::open(&path).expect("o").execute_batch("DROP TABLE virustotal; PRAGMA user_version = 2;").expect("downgrade");
    let ro = Store::open_read_only(&path).expect("ro on v2");
    assert!(!ro.has_verdicts());
    let top = ro.top_executables(&TopQuery { limit: 10, ..Default::default() }).expect("top on v2");
    assert_eq!((top.len(), top[0].virustotal.as_str()), (1, ""));
    drop(ro);
    let (store, _) = Store::open(&path).expect("migrate");
    assert!(store.has_verdicts());
    assert_eq!(store.top_executables(&TopQuery { limit: 10, ..Default::default() }).expect("top").len(), 1, "rows kept");
    assert_eq!(store.verdict(&"ab".repeat(32)).expect("verdict"), None);
}
