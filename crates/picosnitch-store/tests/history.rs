//! Summary tables and the history browser's queries, at a small scale.
mod common;

use common::*;
use picosnitch_store::*;
use rusqlite::Connection;

fn consistent(store: &Store) {
    assert_eq!(store.check_summaries().expect("check"), SummaryCheck { hour_mismatches: 0, day_mismatches: 0, week_mismatches: 0 });
}

fn count(path: &std::path::Path, sql: &str) -> i64 {
    Connection::open(path).expect("open").query_row(sql, [], |r| r.get(0)).expect(sql)
}

#[test]
fn summaries_equal_a_recount_after_inserts_and_prunes() {
    let (_d, path, mut store) = fresh();
    let all = rows(4, 7);
    for batch in all.chunks(37) {
        store.insert_batch(batch).expect("insert");
    }
    consistent(&store);
    let cells = count(&path, "SELECT count(*) FROM summary_hour");
    assert!(cells > 96 * 9, "every hour has cells for every dimension: {cells}");
    // Mid-hour and mid-day: partial buckets are subtracted, whole ones removed.
    let cutoff = DAY0 + D + 5 * H + 1_234;
    let report = store.prune(cutoff).expect("prune");
    let expected = all.iter().filter(|r| r.contime < cutoff).count() as u64;
    assert_eq!(report.connections, expected);
    consistent(&store);
    assert_eq!(count(&path, &format!("SELECT count(*) FROM summary_hour WHERE bucket < {}", cutoff - cutoff % H)), 0);
    let (day_rows, day_send): (i64, i64) = Connection::open(&path)
        .expect("o")
        .query_row(&format!("SELECT rows, send FROM summary_day WHERE dim = 9 AND bucket = {}", DAY0 + D), [], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("partial day");
    let left: Vec<_> = all.iter().filter(|r| r.contime >= cutoff && r.contime < DAY0 + 2 * D).collect();
    assert_eq!(day_rows, left.len() as i64);
    assert_eq!(day_send, left.iter().map(|r| r.send).sum::<i64>());
    // Inserting after a prune and pruning everything keep them equal too.
    store.insert_batch(&rows(1, 99)).expect("insert again");
    consistent(&store);
    store.prune(DAY0 + 100 * D).expect("prune all");
    consistent(&store);
    for t in ["summary_hour", "summary_day", "summary_week"] {
        assert_eq!(count(&path, &format!("SELECT count(*) FROM {t}")), 0, "{t}");
    }
}

#[test]
fn a_wrong_summary_is_detected_and_rebuilt() {
    let (_d, path, mut store) = fresh();
    store.insert_batch(&rows(1, 3)).expect("insert");
    Connection::open(&path).expect("o").execute("UPDATE summary_day SET send = send + 1 WHERE dim = 4", []).expect("corrupt");
    let check = store.check_summaries().expect("check");
    assert_eq!((check.hour_mismatches, check.week_mismatches), (0, 0));
    // Each changed cell shows up twice: once on each side of the comparison.
    let ports = count(&path, "SELECT count(*) FROM summary_day WHERE dim = 4");
    assert_eq!(check.day_mismatches, 2 * ports as u64);
    store.rebuild_summaries().expect("rebuild");
    consistent(&store);
}

#[test]
fn version_1_history_is_backfilled_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    {
        let (mut store, _) = Store::open(&path).expect("open");
        store.insert_batch(&rows(2, 5)).expect("insert");
    }
    // Make it look like a version 1 database: no summaries.
    let c = Connection::open(&path).expect("o");
    c.execute_batch("DROP TABLE summary_hour; DROP TABLE summary_day; DROP TABLE summary_week; DROP TABLE virustotal; PRAGMA user_version = 1;")
        .expect("downgrade");
    drop(c);
    // Read-only UIs on an old database read connections directly.
    let ro = Store::open_read_only(&path).expect("ro");
    let q = HistoryQuery { range: TimeRange::default(), group: Dimension::User, filters: vec![] };
    let old = ro.history(&q).expect("history on v1");
    assert!(!old.used_summaries);
    drop(ro);
    let (store, _) = Store::open(&path).expect("migrate");
    assert_eq!(count(&path, "PRAGMA user_version"), picosnitch_store::SCHEMA_VERSION);
    consistent(&store);
    let new = store.history(&q).expect("history on v2");
    assert!(new.used_summaries);
    assert_eq!(new.rows, old.rows);
}

/// The same query through the summaries and through `connections` (an exclusion that
/// matches nothing forces the raw path) gives the same rows.
#[test]
fn summary_answers_equal_raw_answers_for_every_dimension_and_range() {
    let (_d, _path, mut store) = fresh();
    store.insert_batch(&rows(23, 11)).expect("insert");
    let mut dims = vec![
        Dimension::User,
        Dimension::LocalPort,
        Dimension::RemotePort,
        Dimension::LocalAddress,
        Dimension::RemoteAddress,
        Dimension::Domain,
        Dimension::Netns,
        Dimension::Time { width: 60 },
        Dimension::Time { width: 3_600 },
        Dimension::Time { width: 86_400 },
    ];
    for role in [Role::Process, Role::Parent, Role::Grandparent] {
        for field in [ExeField::Executable, ExeField::Name, ExeField::Command, ExeField::Sha256] {
            dims.push(Dimension::Exe(role, field));
        }
    }
    let ranges = [
        TimeRange::default(),
        TimeRange { start: Some(DAY0 + 2 * D + 7 * H + 59), end: None },
        TimeRange { start: Some(DAY0 + D), end: Some(DAY0 + 3 * D) },
        TimeRange { start: Some(DAY0 + D - 1), end: Some(DAY0 + 6 * D + 3 * H + 17) },
        TimeRange { start: Some(DAY0 + 5 * H + 100), end: Some(DAY0 + 5 * H + 2_000) },
        TimeRange { start: None, end: Some(DAY0 + 4 * D + 30 * 60) },
        TimeRange { start: Some(DAY0 + 2 * D + 3 * H + 1), end: Some(DAY0 + 21 * D + 30 * 60) },
    ];
    let nothing = Filter { dim: Dimension::User, key: GroupKey::Int(-1), exclude: true };
    for group in dims {
        for range in ranges {
            let fast = store.history(&HistoryQuery { range, group, filters: vec![] }).expect("summary");
            let slow = store.history(&HistoryQuery { range, group, filters: vec![nothing.clone()] }).expect("raw");
            assert!(fast.used_summaries && !slow.used_summaries);
            assert_eq!(fast.rows, slow.rows, "{group:?} over {range:?}");
            assert!(!fast.rows.is_empty(), "{group:?} over {range:?} is empty");
        }
    }
}

#[test]
fn grouping_filtering_and_excluding_give_the_expected_sums() {
    let (_d, _path, mut store) = fresh();
    let base = |contime, path: &str, sha: &str, rport, send, recv| ConnectionRecord {
        contime,
        send,
        recv,
        events: 1,
        exe: exe(path, sha),
        pexe: exe("/usr/bin/bash", "cc"),
        gpexe: ExeRecord::default(),
        uid: 1000,
        family: 2,
        protocol: 6,
        lport: 40_000,
        rport,
        laddr: "10.0.0.2".into(),
        raddr: "93.184.216.34".into(),
        domain: "example.com".into(),
        netns: 1,
    };
    store
        .insert_batch(&[
            base(DAY0 + 10, "/usr/bin/curl", "aa", 443, 100, 1_000),
            base(DAY0 + 20, "/usr/bin/curl", "!replaced", 80, 10, 20),
            base(DAY0 + 30, "/opt/curl", "bb", 443, 1, 2),
            base(DAY0 + 2 * D, "/usr/bin/wget", "cc", 443, 5, 5),
        ])
        .expect("insert");
    let q = |group, filters: Vec<Filter>, range| store.history(&HistoryQuery { range, group, filters }).expect("query").rows;
    let by_name = q(Dimension::Exe(Role::Process, ExeField::Name), vec![], TimeRange::default());
    let got: Vec<(GroupKey, i64, i64, i64)> = by_name.iter().map(|r| (r.key.clone(), r.send, r.recv, r.events)).collect();
    assert_eq!(got, vec![(GroupKey::Text("curl".into()), 111, 1_022, 3), (GroupKey::Text("wget".into()), 5, 5, 1)]);
    let by_sha = q(Dimension::Exe(Role::Process, ExeField::Sha256), vec![], TimeRange::default());
    assert_eq!(by_sha.iter().map(|r| r.label.as_str()).collect::<Vec<_>>(), vec!["!replaced", "aa", "bb", "cc"]);
    let curl = Filter { dim: Dimension::Exe(Role::Process, ExeField::Name), key: GroupKey::Text("curl".into()), exclude: false };
    let ports = q(Dimension::RemotePort, vec![curl.clone()], TimeRange::default());
    assert_eq!(ports.iter().map(|r| (r.key.clone(), r.send)).collect::<Vec<_>>(), vec![(GroupKey::Int(80), 10), (GroupKey::Int(443), 101)]);
    let not_443 = Filter { dim: Dimension::RemotePort, key: GroupKey::Int(443), exclude: true };
    let paths = q(Dimension::Exe(Role::Process, ExeField::Executable), vec![curl.clone(), not_443.clone()], TimeRange::default());
    assert_eq!(paths.len(), 1);
    assert_eq!((paths[0].label.as_str(), paths[0].send), ("/usr/bin/curl", 10));
    // The parent of everything is bash; the grandparent is empty (id 0), shown as "".
    let gp = q(Dimension::Exe(Role::Grandparent, ExeField::Executable), vec![], TimeRange::default());
    assert_eq!(gp.iter().map(|r| (r.label.as_str(), r.events)).collect::<Vec<_>>(), vec![("", 4)]);
    let window = TimeRange { start: Some(DAY0 + D), end: None };
    let recent = q(Dimension::Exe(Role::Process, ExeField::Name), vec![], window);
    assert_eq!(recent.iter().map(|r| r.label.as_str()).collect::<Vec<_>>(), vec!["wget"]);
    let domains = q(Dimension::Domain, vec![], TimeRange::default());
    assert_eq!(domains[0].label, "example.com");
    let by_domain_id = Filter { dim: Dimension::Domain, key: domains[0].key.clone(), exclude: false };
    assert_eq!(q(Dimension::User, vec![by_domain_id], TimeRange::default())[0].send, 116);
    let hours = q(Dimension::Time { width: 3_600 }, vec![], TimeRange::default());
    assert_eq!(hours.iter().map(|r| r.key.clone()).collect::<Vec<_>>(), vec![GroupKey::Int(DAY0), GroupKey::Int(DAY0 + 2 * D)]);
    let first_hour = Filter { dim: Dimension::Time { width: 3_600 }, key: GroupKey::Int(DAY0), exclude: false };
    let conns = store.history_connections(TimeRange::default(), &[first_hour, not_443], 10).expect("connections");
    assert_eq!(conns.len(), 1);
    assert_eq!((conns[0].contime, conns[0].exe.sha256.as_str(), conns[0].rport), (DAY0 + 20, "!replaced", 80));
    let newest_first = store.history_connections(TimeRange::default(), &[curl], 2).expect("connections");
    assert_eq!(newest_first.iter().map(|c| c.contime).collect::<Vec<_>>(), vec![DAY0 + 30, DAY0 + 20]);
    assert_eq!(store.history_bounds().expect("bounds"), Some((DAY0 + 10, DAY0 + 2 * D)));
}

#[test]
fn a_query_can_be_interrupted_from_another_thread() {
    let (_d, path, mut store) = fresh();
    store.insert_batch(&rows(3, 1)).expect("insert");
    let ro = Store::open_read_only(&path).expect("ro");
    let handle = ro.interrupt_handle();
    // Interrupt before the query starts: SQLite reports it at the first step.
    let stop = std::thread::spawn(move || {
        for _ in 0..200 {
            handle.interrupt();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
    let mut interrupted = false;
    for _ in 0..200 {
        let nothing = Filter { dim: Dimension::User, key: GroupKey::Int(-1), exclude: true };
        match ro.history(&HistoryQuery { range: TimeRange::default(), group: Dimension::LocalPort, filters: vec![nothing] }) {
            Err(StoreError::Interrupted { .. }) => {
                interrupted = true;
                break;
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => {}
        }
    }
    stop.join().expect("join");
    assert!(interrupted, "no query was interrupted");
}
