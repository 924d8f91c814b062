//! `picosnitch tui` rendered to a test backend: each view, the keys, and the conditions
//! that get a message instead of data.
mod common;

use common::*;
use picosnitch_tui::history::views::VIEWS;
use picosnitch_tui::history::worker::{self, HistoryReply};
use picosnitch_tui::event_loop::{App, Msg};
use picosnitch_tui::keys::{keys_label, Key};
use picosnitch_tui::live::source::{FeedEvent, FeedProblem};
use picosnitch_tui::tui::TUI_KEYS;
use std::time::Duration;

fn view(name: &str, section: &str) -> usize {
    VIEWS.iter().position(|v| v.name == name && v.section == section).expect("view")
}

/// Right presses from the first view to `to`.
fn go(d: &mut Driver, to: usize) {
    let from = d.app.history.view;
    d.keys(&vec![Key::Right; to - from]);
}

#[test]
fn opens_on_executables_over_all_history() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    insta::assert_snapshot!("tui_executables_all", d.screen(100, 24));
}

#[test]
fn filter_then_group_by_another_column_then_pop() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    go(&mut d, view("Name", "Process"));
    // Rows are in name order: curl first.
    d.keys(&[Key::Char('f')]);
    go(&mut d, view("Domain", "Network"));
    insta::assert_snapshot!("tui_domains_of_curl", d.screen(100, 16));
    d.keys(&[Key::Backspace]);
    let s = d.screen(100, 16);
    assert!(s.contains("Process name | all history") && s.contains("no filters"), "{s}");
    assert!(s.contains("systemd-resolve") && s.contains("wget"), "{s}");
}

#[test]
fn exclude_and_units_and_sort() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    go(&mut d, view("Name", "Process"));
    d.keys(&[Key::Char('e'), Key::Char('u'), Key::Char('u'), Key::Char('s')]);
    let s = d.screen(100, 16);
    assert!(s.contains("filters: name ≠ curl"), "{s}");
    assert_eq!(s.matches("curl").count(), 1, "curl only in the filter line: {s}");
    // kB, sorted by sent: firefox (1,848.2 kB) above wget (0.8 kB).
    assert!(s.contains("units kB") && s.contains("by sent"), "{s}");
    let firefox = s.find("firefox").expect("firefox row");
    let wget = s.find("wget").expect("wget row");
    assert!(firefox < wget, "{s}");
    assert!(s.contains("1848.2 kB"), "{s}");
    // E pops an exclusion too.
    d.keys(&[Key::Char('E')]);
    assert!(d.screen(100, 16).contains("curl"));
}

#[test]
fn time_view_of_the_last_day_and_a_step_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    d.keys(&[Key::Char('t'); 9]);
    go(&mut d, view("Time", "Time"));
    insta::assert_snapshot!("tui_time_last_day", d.screen(100, 16));
    // Back by local calendar days: today, yesterday (nothing recorded), the day before.
    d.keys(&[Key::Char('h')]);
    assert!(d.screen(100, 16).contains("2026-11-22 00:00 → 2026-11-23 00:00"));
    d.keys(&[Key::Char('h')]);
    assert!(d.screen(100, 16).contains("Nothing recorded in this time window"));
    d.keys(&[Key::Char('h')]);
    let s = d.screen(100, 16);
    assert!(s.contains("2026-11-20 00:00 → 2026-11-21 00:00"), "{s}");
    assert!(s.contains("2026-11-20 10:00") && s.contains("1 row,"), "firefox two days ago: {s}");
    d.keys(&[Key::Char('H'); 4]);
    assert!(d.screen(100, 16).contains("already at the present"));
    // A window of all history has no periods to step through.
    d.keys(&[Key::Char('T'); 9]);
    d.keys(&[Key::Char('h')]);
    assert!(d.screen(100, 16).contains("press t for a shorter window"));
}

#[test]
fn stepping_back_stops_at_the_oldest_history() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    d.keys(&[Key::Char('t'); 13]); // 365 days, by calendar year
    d.keys(&[Key::Char('h')]);
    assert!(d.screen(100, 16).contains("2026-01-01 00:00 → 2027-01-01 00:00"));
    d.keys(&[Key::Char('h')]);
    assert!(d.screen(100, 16).contains("no older history"));
}

#[test]
fn drill_down_into_the_connections_behind_a_row() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    // Executables in path order: /usr/bin/curl is the first.
    d.keys(&[Key::Char('d')]);
    insta::assert_snapshot!("tui_connections_of_curl", d.screen(130, 20));
    d.keys(&[Key::Down]);
    assert!(d.screen(130, 20).contains("row 2/2"));
    d.keys(&[Key::Backspace]);
    assert!(d.screen(130, 20).contains("Process executable"));
}

#[test]
fn find_narrows_the_rows() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    d.keys(&[Key::Char('/')]);
    d.keys(&chars("FIRE"));
    assert!(d.screen(100, 16).contains("/FIRE_"));
    d.keys(&[Key::Enter]);
    let s = d.screen(100, 16);
    assert!(s.contains("/usr/lib/firefox/firefox") && !s.contains("/usr/bin/curl") && s.contains("find \"fire\""), "{s}");
    d.keys(&[Key::Char('/'), Key::Esc]);
    assert!(d.screen(100, 16).contains("/usr/bin/curl"));
}

#[test]
fn users_ports_and_hashes_read_as_people_expect() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    go(&mut d, view("User", "Network"));
    let s = d.screen(100, 16);
    assert!(s.contains("root (0)") && s.contains("alice (1000)") && s.contains("systemd-resolve (102)"), "{s}");
    d.keys(&[Key::Left; 9]);
    let s = d.screen(100, 16);
    assert!(s.contains("Process sha256"), "{s}");
    assert!(s.contains("!replaced") && s.contains("!unreadable"), "hash failures show as such: {s}");
    d.keys(&[Key::Right; 5]);
    let s = d.screen(100, 16);
    assert!(s.contains("Grandparent executable") && s.contains("(none)"), "{s}");
}

#[test]
fn the_views_list_takes_focus_with_tab() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    d.keys(&[Key::Tab, Key::Down, Key::Down, Key::Down]);
    assert_eq!(d.app.history.view, 3);
    d.keys(&[Key::Enter]);
    let s = d.screen(100, 16);
    assert!(s.contains("Process sha256") && s.contains("!replaced"), "{s}");
    assert!(d.app.history.filters.is_empty(), "Enter in the views list opens the view, it does not filter");
}

#[test]
fn help_lists_every_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    d.keys(&[Key::Char('?')]);
    let s = d.screen(140, 40);
    for b in TUI_KEYS {
        let line = format!("{:<17}   {}", keys_label(b), b.help);
        assert!(s.contains(&line), "help lacks `{line}`:\n{s}");
    }
    insta::assert_snapshot!("tui_help", s);
    let mut seen = Vec::new();
    for b in TUI_KEYS {
        for k in b.keys {
            assert!(!seen.contains(k), "{k:?} is bound twice");
            seen.push(*k);
        }
    }
    d.keys(&[Key::Char('x')]);
    assert!(!d.screen(140, 40).contains("picosnitch tui: keys"), "any key closes help");
}

#[test]
fn help_scrolls_on_a_short_terminal() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    d.keys(&[Key::Char('?')]);
    let s = d.screen(80, 20);
    assert!(s.contains("Up/Down scroll") && !s.contains("last row"), "{s}");
    d.keys(&[Key::Down; 40]);
    let s = d.screen(80, 20);
    assert!(s.contains("last row") && !s.contains("q / Esc / Ctrl-C"), "{s}");
}

#[test]
fn a_missing_database_says_the_daemon_creates_it_then_fills_in() {
    // In /tmp whatever TMPDIR says, so the path, and how the message wraps, has one length.
    let dir = tempfile::tempdir_in("/tmp").expect("tmp");
    let db = dir.path().join("picosnitch.db");
    let mut d = Driver::new(&db);
    insta::assert_snapshot!("tui_no_database", d.screen(100, 20).replace(&dir.path().display().to_string(), "/tmp/[dir]"));
    // The daemon starts and writes its first rows; the view retries on its own.
    history_db(dir.path());
    d.tick(NOW as f64 + 1.0);
    assert!(d.screen(100, 20).contains("No history yet"), "not before the retry interval");
    d.tick(NOW as f64 + 4.0);
    let s = d.screen(100, 20);
    assert!(s.contains("/usr/bin/curl") && !s.contains("No history yet"), "{s}");
}

#[test]
fn a_database_without_permission_says_whom_to_ask() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("picosnitch.db");
    let mut d = Driver::new(&history_db(dir.path()));
    let generation = d.app.history.generation;
    d.app.on_msg(Msg::History(HistoryReply { generation, result: Err(worker::permission(&db)), elapsed: Duration::ZERO, bounds: None }));
    let s = d.screen(100, 20);
    assert!(s.contains("No permission") && s.contains("Permission denied reading"), "{s}");
    assert!(s.contains("[data]") || s.contains("group"), "{s}");
}

#[test]
fn too_small_a_terminal_gets_a_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    insta::assert_snapshot!("tui_too_small", d.screen(60, 12));
}

#[test]
fn live_tab_shows_the_feed() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    d.feed(vec![FeedEvent::Connected]);
    d.feed(live_updates().into_iter().map(|u| FeedEvent::Update(Box::new(u))).collect());
    d.keys(&[Key::Char('l')]);
    insta::assert_snapshot!("tui_live", d.screen(120, 26));
    d.keys(&[Key::Char('l')]);
    assert!(d.screen(120, 26).contains("Process executable"), "l again goes back");
}

#[test]
fn live_tab_when_the_daemon_stops_and_when_there_is_none() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = Driver::new(&history_db(dir.path()));
    d.keys(&[Key::Char('l')]);
    let no_daemon = picosnitch_feed::FeedClient::connect(&dir.path().join("events.sock")).err().expect("no socket").to_string();
    d.feed(vec![FeedEvent::Problem(FeedProblem::NoDaemon(no_daemon.clone()))]);
    let s = d.screen(100, 20);
    assert!(s.contains("Live feed unavailable") && s.contains("sudo picosnitch daemon"), "{s}");
    d.feed(vec![FeedEvent::Connected]);
    d.feed(live_updates().into_iter().map(|u| FeedEvent::Update(Box::new(u))).collect());
    d.feed(vec![FeedEvent::Problem(FeedProblem::Closed)]);
    let s = d.screen(100, 20);
    assert!(s.contains("firefox") && s.contains("the daemon closed the live feed"), "data stays, the status says why it stopped: {s}");
    d.feed(vec![FeedEvent::Problem(FeedProblem::NoDaemon(no_daemon))]);
    let s = d.screen(100, 20);
    assert!(s.contains("no picosnitch daemon is running"), "{s}");
}

/// README.md lists the keys of both UIs; it must say what the code does.
#[test]
fn the_readme_lists_every_key_of_both_uis() {
    let readme = include_str!("../../../README.md");
    for b in TUI_KEYS {
        let row = format!("| {} | {} |", keys_label(b), b.help);
        assert!(readme.contains(&row), "README.md lacks the tui row `{row}`");
    }
    for b in picosnitch_tui::top::TOP_KEYS {
        let row = format!("| {} | {} |", keys_label(b), b.help);
        assert!(readme.contains(&row), "README.md lacks the top row `{row}`");
    }
}

#[test]
fn the_drill_down_shows_virustotals_verdict() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = history_db(dir.path());
    let curl = "9f2c3a0e5b1d7c4f8e6a2b0d3c5e7f9a1b3d5f7e9c1a3e5b7d9f1c3e5a7b9d1f";
    let (mut store, _) = picosnitch_store::Store::open(&db).expect("open");
    let verdict = picosnitch_store::Verdict { sha256: curl.into(), checked: 1, malicious: 3, undetected: 60, ..Default::default() };
    store.record_verdicts(&[verdict]).expect("verdict");
    drop(store);
    let mut d = Driver::new(&db);
    d.keys(&[Key::Char('d')]);
    let s = d.screen(200, 20);
    assert!(s.contains(&format!("process: /usr/bin/curl (curl) sha256 {curl}, VirusTotal: 3/63 malicious")), "{s}");
    assert!(s.contains("parent: /usr/bin/bash (bash) sha256 5f3c0b1e9a7d2c4e6f8a0b2d4c6e8f0a1b3d5f7e9c1a3e5b7d9f1c3e5a7b9d1f "), "no verdict, nothing added: {s}");
}
