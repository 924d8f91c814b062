//! `picosnitch top` rendered to a test backend.
mod common;

use common::*;
use jiff::tz::TimeZone;
use picosnitch_feed::{FeedClient, UpdateKind};
use picosnitch_tui::event_loop::{App, Msg};
use picosnitch_tui::keys::{keys_label, Key};
use picosnitch_tui::live::source::{FeedEvent, FeedProblem};
use picosnitch_tui::top::{TopApp, TOP_KEYS};

fn top() -> TopApp {
    TopApp::new("/run/picosnitch/events.sock".into(), TimeZone::UTC, NOW as f64)
}

fn feed(app: &mut TopApp, events: Vec<FeedEvent>) {
    for e in events {
        app.on_msg(Msg::Feed(e));
    }
}

fn traffic(app: &mut TopApp) {
    feed(app, vec![FeedEvent::Connected]);
    feed(app, live_updates().into_iter().map(|u| FeedEvent::Update(Box::new(u))).collect());
}

fn keys(app: &mut TopApp, keys: &[Key]) {
    for k in keys {
        app.on_key(*k);
    }
}

#[test]
fn executables_above_recent_events() {
    let mut app = top();
    traffic(&mut app);
    insta::assert_snapshot!("top_traffic", screen(&mut app, 120, 24));
}

#[test]
fn narrow_terminals_drop_columns_not_rows() {
    let mut app = top();
    traffic(&mut app);
    let s = screen(&mut app, 70, 20);
    assert!(s.contains("firefox") && s.contains("Received") && !s.contains("Send/s"), "{s}");
}

#[test]
fn sort_find_pause_reset_units() {
    let mut app = top();
    traffic(&mut app);
    keys(&mut app, &[Key::Char('s')]);
    let s = screen(&mut app, 120, 24);
    assert!(s.contains("by received"), "{s}");
    let firefox = s.find("/usr/lib/firefox/firefox").expect("firefox");
    let curl = s.find("/usr/bin/curl").expect("curl");
    assert!(firefox < curl, "firefox received more: {s}");
    keys(&mut app, &[Key::Char('S'), Key::Char('S')]);
    assert!(screen(&mut app, 120, 24).contains("by executable"));
    keys(&mut app, &[Key::Char('/')]);
    keys(&mut app, &chars("sshd"));
    keys(&mut app, &[Key::Enter]);
    let s = screen(&mut app, 120, 24);
    assert!(s.contains("Executables: 1 by executable matching \"sshd\"") && !s.contains("/usr/bin/curl"), "{s}");
    assert!(s.contains("203.0.113.7:48201"), "the events panel is found too: {s}");
    keys(&mut app, &[Key::Char('/'), Key::Esc, Key::Char('p')]);
    let mut late = update(UpdateKind::Open, 9, 0.5, "/usr/bin/wget", "wget", 10, 10);
    late.domain = "deb.debian.org".into();
    feed(&mut app, vec![FeedEvent::Update(Box::new(late))]);
    let s = screen(&mut app, 120, 24);
    assert!(s.contains("PAUSED") && !s.contains("wget"), "paused: {s}");
    keys(&mut app, &[Key::Char(' ')]);
    let s = screen(&mut app, 120, 24);
    assert!(s.contains("wget") && s.contains("7 updates"), "resumed: {s}");
    assert!(!s.contains("/usr/bin/ls "), "a program starting is an event, not a row: {s}");
    keys(&mut app, &[Key::Char('u'), Key::Char('u')]);
    assert!(screen(&mut app, 120, 24).contains("1228.8 kB"));
    keys(&mut app, &[Key::Char('r')]);
    let s = screen(&mut app, 120, 24);
    assert!(s.contains("0 updates") && s.contains("Waiting for network"), "{s}");
}

#[test]
fn tab_and_arrows_move_in_the_focused_panel() {
    let mut app = top();
    traffic(&mut app);
    keys(&mut app, &[Key::Down, Key::Down]);
    assert_eq!(app.live.executables.selected(), Some(2));
    keys(&mut app, &[Key::Tab, Key::End]);
    assert_eq!((app.live.executables.selected(), app.live.events.selected()), (Some(2), Some(5)));
    keys(&mut app, &[Key::PageUp]);
    assert_eq!(app.live.events.selected(), Some(0));
    keys(&mut app, &[Key::BackTab, Key::Home]);
    assert_eq!(app.live.executables.selected(), Some(0));
}

#[test]
fn no_daemon_says_how_to_start_one() {
    let mut app = top();
    // In /tmp whatever TMPDIR says, so the path, and how the message wraps, has one length.
    let dir = tempfile::tempdir_in("/tmp").expect("tmp");
    let e = FeedClient::connect(&dir.path().join("events.sock")).err().expect("no daemon");
    feed(&mut app, vec![FeedEvent::Problem(FeedProblem::NoDaemon(e.to_string()))]);
    let s = screen(&mut app, 100, 20);
    insta::assert_snapshot!("top_no_daemon", s.replace(&dir.path().display().to_string(), "/tmp/[dir]"));
}

#[test]
fn no_permission_says_which_group_to_join() {
    let mut app = top();
    let e = picosnitch_feed::ConnectError::PermissionDenied { path: "/run/picosnitch/events.sock".into(), group: "picosnitch".into() };
    feed(&mut app, vec![FeedEvent::Problem(FeedProblem::Permission(e.to_string()))]);
    insta::assert_snapshot!("top_no_permission", screen(&mut app, 100, 20));
}

#[test]
fn a_daemon_that_stops_keeps_the_numbers_and_says_so() {
    let mut app = top();
    traffic(&mut app);
    feed(&mut app, vec![FeedEvent::Problem(FeedProblem::Closed)]);
    let s = screen(&mut app, 120, 24);
    assert!(s.contains("no feed") && s.contains("firefox") && s.contains("the daemon closed the live feed"), "{s}");
    feed(&mut app, vec![FeedEvent::Connected]);
    assert!(screen(&mut app, 120, 24).contains("| live |"));
}

#[test]
fn help_lists_every_key_and_too_small_says_so() {
    let mut app = top();
    keys(&mut app, &[Key::Char('?')]);
    let s = screen(&mut app, 100, 24);
    for b in TOP_KEYS {
        assert!(s.contains(&keys_label(b)) && s.contains(b.help), "help lacks {}", keys_label(b));
    }
    insta::assert_snapshot!("top_help", s);
    keys(&mut app, &[Key::Char('q')]);
    assert!(!app.wants_quit(), "q closes help first");
    insta::assert_snapshot!("top_too_small", screen(&mut app, 50, 10));
    keys(&mut app, &[Key::Char('q')]);
    assert!(app.wants_quit());
}
