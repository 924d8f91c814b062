//! The web UI's queries: time series of the top values, several groupings in one pass,
//! a period's totals, and filters on an address or domain by its text. Each is checked
//! against sums computed here from the rows inserted.
mod common;

use common::*;
use picosnitch_store::*;
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};

fn in_range(r: &ConnectionRecord, start: i64, end: i64) -> bool {
    r.contime >= start && r.contime < end
}

/// The (send, recv, events) per bucket of the rows `keep` selects.
fn expected_line(all: &[ConnectionRecord], start: i64, end: i64, width: i64, keep: impl Fn(&ConnectionRecord) -> bool) -> Vec<(i64, i64, i64)> {
    let first = start - start.rem_euclid(width);
    let n = Store::series_buckets(start, end, width);
    let mut out = vec![(0, 0, 0); n];
    for r in all.iter().filter(|r| in_range(r, start, end) && keep(r)) {
        let i = ((r.contime - first) / width) as usize;
        out[i].0 += r.send;
        out[i].1 += r.recv;
        out[i].2 += r.events;
    }
    out
}

fn line(l: &SeriesLine) -> Vec<(i64, i64, i64)> {
    (0..l.send.len()).map(|i| (l.send[i], l.recv[i], l.events[i])).collect()
}

#[test]
fn series_of_the_top_values_equal_the_rows_whatever_the_width_and_range() {
    let (_d, _path, mut store) = fresh();
    let all = rows(23, 11);
    store.insert_batch(&all).expect("insert");
    let name = Dimension::Exe(Role::Process, ExeField::Name);
    let nothing = Filter { dim: Dimension::User, key: GroupKey::Int(-1), exclude: true };
    let ranges = [
        (DAY0, DAY0 + 23 * D),
        (DAY0 + 2 * D + 7 * H + 59, DAY0 + 20 * D + 5),
        (DAY0 + D - 1, DAY0 + 6 * D + 3 * H + 17),
        (DAY0 + 5 * H + 100, DAY0 + 5 * H + 2_000),
    ];
    for width in [60, 600, 3_600, 7_200, 86_400, 7 * 86_400] {
        for (start, end) in ranges {
            if Store::series_buckets(start, end, width) > 2_000 {
                continue;
            }
            let keys = vec![GroupKey::Text("curl".into()), GroupKey::Text("sshd".into())];
            let q = SeriesQuery { start, end, width, group: name, keys, filters: vec![] };
            let fast = store.series(&q).expect("series");
            let slow = store.series(&SeriesQuery { filters: vec![nothing.clone()], ..q.clone() }).expect("raw series");
            assert_eq!(fast.used_summaries, width % 3_600 == 0, "width {width}");
            assert!(!slow.used_summaries);
            assert_eq!(fast, SeriesAnswer { used_summaries: fast.used_summaries, ..slow }, "width {width} over {start}..{end}");
            assert_eq!(line(&fast.lines[0]), expected_line(&all, start, end, width, |r| r.exe.name == "curl"), "curl, width {width}");
            assert_eq!(line(&fast.lines[1]), expected_line(&all, start, end, width, |r| r.exe.name == "sshd"));
            let rest = expected_line(&all, start, end, width, |r| r.exe.name != "curl" && r.exe.name != "sshd");
            assert_eq!(line(&fast.rest), rest, "the rest, width {width}");
            assert!(rest.iter().any(|x| x.0 > 0), "the rest holds firefox");
        }
    }
}

#[test]
fn series_keys_may_be_ids_or_text_and_a_single_value_is_a_sparkline() {
    let (_d, _path, mut store) = fresh();
    let all = rows(5, 3);
    store.insert_batch(&all).expect("insert");
    let domains = store.history(&HistoryQuery { range: TimeRange::default(), group: Dimension::Domain, filters: vec![] }).expect("domains").rows;
    let github = domains.iter().find(|r| r.label == "github.com").expect("github.com");
    let (start, end) = (DAY0 + 3 * H, DAY0 + 4 * D);
    let by_id = SeriesQuery { start, end, width: 3_600, group: Dimension::Domain, keys: vec![github.key.clone()], filters: vec![] };
    let by_text = SeriesQuery { keys: vec![GroupKey::Text("github.com".into())], ..by_id.clone() };
    let a = store.series(&by_id).expect("by id");
    let b = store.series(&by_text).expect("by text");
    assert_eq!(a, b);
    assert_eq!(line(&a.lines[0]), expected_line(&all, start, end, 3_600, |r| r.domain == "github.com"));
    // Under a filter, the same line comes from the rows themselves (and no keys: the total).
    let only = Filter { dim: Dimension::Domain, key: GroupKey::Text("github.com".into()), exclude: false };
    let filtered = store.series(&SeriesQuery { keys: vec![], filters: vec![only], ..by_id }).expect("filtered");
    assert_eq!(line(&filtered.rest), line(&a.lines[0]));
    assert_eq!(filtered.first, start - start % 3_600);
}

#[test]
fn several_groupings_in_one_pass_equal_one_query_each() {
    let (_d, _path, mut store) = fresh();
    store.insert_batch(&rows(9, 5)).expect("insert");
    let groups = [Dimension::User, Dimension::Domain, Dimension::RemoteAddress, Dimension::Time { width: 3_600 }, Dimension::Netns];
    let range = TimeRange { start: Some(DAY0 + D + 17), end: Some(DAY0 + 8 * D + 5 * H) };
    let curl = Filter { dim: Dimension::Exe(Role::Process, ExeField::Name), key: GroupKey::Text("curl".into()), exclude: false };
    let not_443 = Filter { dim: Dimension::RemotePort, key: GroupKey::Int(443), exclude: true };
    for filters in [vec![], vec![curl.clone()], vec![curl, not_443]] {
        let many = store.history_many(range, &filters, &groups).expect("many");
        for (g, answer) in groups.iter().zip(&many) {
            let one = store.history(&HistoryQuery { range, group: *g, filters: filters.clone() }).expect("one");
            assert_eq!(answer.rows, one.rows, "{g:?} under {filters:?}");
            assert!(!one.rows.is_empty());
        }
    }
}

#[test]
fn totals_count_bytes_connections_executables_and_namespaces() {
    let (_d, _path, mut store) = fresh();
    let all = rows(6, 21);
    store.insert_batch(&all).expect("insert");
    for (start, end) in [(DAY0, DAY0 + 6 * D), (DAY0 + D + 3 * H + 7, DAY0 + 2 * D + 600), (DAY0 + 5 * H, DAY0 + 5 * H + 900)] {
        let range = TimeRange { start: Some(start), end: Some(end) };
        let inside: Vec<_> = all.iter().filter(|r| in_range(r, start, end)).collect();
        let want = Totals {
            send: inside.iter().map(|r| r.send).sum(),
            recv: inside.iter().map(|r| r.recv).sum(),
            events: inside.iter().map(|r| r.events).sum(),
            executables: inside.iter().map(|r| r.exe.exe.as_str()).collect::<BTreeSet<_>>().len() as i64,
            namespaces: inside.iter().map(|r| r.netns).collect::<BTreeSet<_>>().len() as i64,
        };
        assert_eq!(store.totals(range, &[]).expect("totals"), want, "{start}..{end}");
        assert!(want.namespaces == 2 || inside.len() < 20, "both namespaces appear");
        let ssh = Filter { dim: Dimension::Exe(Role::Process, ExeField::Executable), key: GroupKey::Text("/usr/sbin/sshd".into()), exclude: true };
        let t = store.totals(range, &[ssh]).expect("filtered totals");
        let rest: Vec<_> = inside.iter().filter(|r| r.exe.exe != "/usr/sbin/sshd").collect();
        assert_eq!((t.send, t.events), (rest.iter().map(|r| r.send).sum(), rest.iter().map(|r| r.events).sum()));
        assert_eq!(t.executables, rest.iter().map(|r| r.exe.exe.as_str()).collect::<BTreeSet<_>>().len() as i64);
    }
}

#[test]
fn addresses_and_domains_filter_by_their_text() {
    let (_d, _path, mut store) = fresh();
    let all = rows(3, 8);
    store.insert_batch(&all).expect("insert");
    let by_user = |filters: Vec<Filter>| -> BTreeMap<i64, i64> {
        let q = HistoryQuery { range: TimeRange::default(), group: Dimension::User, filters };
        store.history(&q).expect("history").rows.into_iter().map(|r| (match r.key { GroupKey::Int(u) => u, GroupKey::Text(_) => -1 }, r.send)).collect()
    };
    let want = |keep: &dyn Fn(&ConnectionRecord) -> bool| -> BTreeMap<i64, i64> {
        let mut m = BTreeMap::new();
        for r in all.iter().filter(|r| keep(r)) {
            *m.entry(r.uid).or_default() += r.send;
        }
        m
    };
    let f = |dim, text: &str, exclude| Filter { dim, key: GroupKey::Text(text.into()), exclude };
    assert_eq!(by_user(vec![f(Dimension::Domain, "example.com", false)]), want(&|r| r.domain == "example.com"));
    assert_eq!(by_user(vec![f(Dimension::Domain, "example.com", true)]), want(&|r| r.domain != "example.com"));
    assert_eq!(by_user(vec![f(Dimension::RemoteAddress, "1.1.1.1", false)]), want(&|r| r.raddr == "1.1.1.1"));
    assert_eq!(by_user(vec![f(Dimension::LocalAddress, "10.0.0.2", true)]), want(&|r| r.laddr != "10.0.0.2"));
    // A text nobody used matches nothing, and excluding it keeps everything.
    assert!(by_user(vec![f(Dimension::Domain, "nowhere.invalid", false)]).is_empty());
    assert_eq!(by_user(vec![f(Dimension::Domain, "nowhere.invalid", true)]), want(&|_| true));
}

#[test]
fn a_version_2_history_gets_its_namespaces_counted_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v2.db");
    let all = rows(2, 13);
    {
        let (mut store, _) = Store::open(&path).expect("open");
        store.insert_batch(&all).expect("insert");
    }
    let c = Connection::open(&path).expect("o");
    c.execute_batch("DELETE FROM summary_hour WHERE dim = 10; DELETE FROM summary_day WHERE dim = 10; DELETE FROM summary_week WHERE dim = 10; PRAGMA user_version = 3;")
        .expect("downgrade");
    drop(c);
    // A reader of the version 3 file counts namespaces from the rows.
    let ro = Store::open_read_only(&path).expect("ro");
    let q = HistoryQuery { range: TimeRange::default(), group: Dimension::Netns, filters: vec![] };
    let old = ro.history(&q).expect("v2");
    assert!(!old.used_summaries);
    drop(ro);
    let (store, _) = Store::open(&path).expect("migrate");
    assert_eq!(store.check_summaries().expect("check"), SummaryCheck::default());
    let new = store.history(&q).expect("v3");
    assert!(new.used_summaries);
    assert_eq!(new.rows, old.rows);
    assert_eq!(new.rows.len(), 2);
}
