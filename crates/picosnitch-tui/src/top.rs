//! `picosnitch top`: the live feed as htop shows processes, per executable, with the
//! latest events below.
use crate::error::TuiError;
use crate::event_loop::{self, App, Effect, Msg};
use crate::format::count;
use crate::keys::{keys_label, lookup, Binding, Key};
use crate::live::{self, FeedState, LiveAction, LiveView};
use crate::terminal::TerminalGuard;
use crate::widgets::{bar, problem_style, too_small, HelpScreen};
use jiff::tz::TimeZone;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::Span;
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What `picosnitch top` needs; the CLI fills it from the config (`[data] runtime_dir`)
/// or a `--socket` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopOptions {
    pub feed_socket: PathBuf,
}

impl TopOptions {
    pub fn from_config(config: &picosnitch_config::Config) -> TopOptions {
        TopOptions { feed_socket: config.data.runtime_dir.join(picosnitch_feed::SOCKET_NAME) }
    }
}

/// Smallest terminal the layout works in.
pub const MIN_SIZE: (u16, u16) = (60, 12);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopAction {
    Quit,
    Help,
    Find,
    Live(LiveAction),
    UnitsNext,
    UnitsPrev,
}

pub const TOP_KEYS: &[Binding<TopAction>] = &[
    Binding { keys: &[Key::Char('q'), Key::Esc, Key::CtrlC], action: TopAction::Quit, help: "quit" },
    Binding { keys: &[Key::Char('?')], action: TopAction::Help, help: "this help; any key closes it" },
    Binding { keys: &[Key::Char('/')], action: TopAction::Find, help: "find: type to show only matching rows, Enter keeps, Esc clears" },
    Binding { keys: &[Key::Char('s')], action: TopAction::Live(LiveAction::SortNext), help: "sort executables by the next column" },
    Binding { keys: &[Key::Char('S')], action: TopAction::Live(LiveAction::SortPrev), help: "sort executables by the previous column" },
    Binding { keys: &[Key::Char('p'), Key::Char(' ')], action: TopAction::Live(LiveAction::Pause), help: "pause / resume the display (counting goes on)" },
    Binding { keys: &[Key::Char('r')], action: TopAction::Live(LiveAction::Reset), help: "reset all counters and clear the events" },
    Binding { keys: &[Key::Char('u')], action: TopAction::UnitsNext, help: "next byte units (auto, B, kB, MB, GB)" },
    Binding { keys: &[Key::Char('U')], action: TopAction::UnitsPrev, help: "previous byte units" },
    Binding { keys: &[Key::Tab, Key::BackTab], action: TopAction::Live(LiveAction::SwitchPanel), help: "switch panel: executables / recent events" },
    Binding { keys: &[Key::Up], action: TopAction::Live(LiveAction::Up), help: "move up" },
    Binding { keys: &[Key::Down], action: TopAction::Live(LiveAction::Down), help: "move down" },
    Binding { keys: &[Key::PageUp], action: TopAction::Live(LiveAction::PageUp), help: "page up" },
    Binding { keys: &[Key::PageDown], action: TopAction::Live(LiveAction::PageDown), help: "page down" },
    Binding { keys: &[Key::Home], action: TopAction::Live(LiveAction::Home), help: "first row" },
    Binding { keys: &[Key::End], action: TopAction::Live(LiveAction::End), help: "last row" },
];

/// Text being typed after `/`; each key narrows the rows at once.
pub(crate) fn edit_find(input: &mut String, key: Key) -> Option<bool> {
    match key {
        Key::Char(c) => input.push(c),
        Key::Backspace => {
            input.pop();
        }
        Key::Enter => return Some(true),
        Key::Esc | Key::CtrlC => {
            input.clear();
            return Some(false);
        }
        _ => {}
    }
    None
}

pub struct TopApp {
    pub live: LiveView,
    pub tz: TimeZone,
    pub now: f64,
    pub help: HelpScreen,
    /// While typing a find, the text so far.
    pub find_input: Option<String>,
    quit: bool,
}

impl TopApp {
    pub fn new(feed_socket: PathBuf, tz: TimeZone, now: f64) -> TopApp {
        TopApp { live: LiveView::new(feed_socket), tz, now, help: HelpScreen::default(), find_input: None, quit: false }
    }
}

impl App for TopApp {
    fn on_key(&mut self, key: Key) -> Vec<Effect> {
        if self.help.open {
            self.help.on_key(key);
            return vec![];
        }
        if let Some(input) = &mut self.find_input {
            let done = edit_find(input, key);
            self.live.model.find = input.to_lowercase();
            if done.is_some() {
                self.find_input = None;
            }
            return vec![];
        }
        match lookup(TOP_KEYS, key) {
            Some(TopAction::Quit) => self.quit = true,
            Some(TopAction::Help) => self.help.open = true,
            Some(TopAction::Find) => self.find_input = Some(self.live.model.find.clone()),
            Some(TopAction::Live(a)) => self.live.act(a, self.now),
            Some(TopAction::UnitsNext) => self.live.units = self.live.units.next(),
            Some(TopAction::UnitsPrev) => self.live.units = self.live.units.prev(),
            None => {}
        }
        vec![]
    }

    fn on_msg(&mut self, msg: Msg) -> Vec<Effect> {
        if let Msg::Feed(e) = msg {
            self.live.on_feed(e, self.now);
        }
        vec![]
    }

    fn on_tick(&mut self, now: f64) -> Vec<Effect> {
        self.now = now;
        vec![]
    }

    fn render(&mut self, f: &mut Frame) {
        let area = f.area();
        if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
            too_small(f, "picosnitch top", MIN_SIZE);
            return;
        }
        let [head, body, status] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(1)]).areas(area);
        let model = &self.live.model;
        let since = model.since.map(|t| format!(" since {}", crate::format::clock(t, &self.tz))).unwrap_or_default();
        let state = match self.live.feed {
            FeedState::Connected => "live",
            FeedState::Connecting => "connecting",
            FeedState::Down { .. } => "no feed",
        };
        let mut left = vec![Span::raw(format!(" picosnitch top | {state} | {} updates{since} | units {}", count(model.updates as i64), self.live.units.label()))];
        if model.paused() {
            left.push(Span::raw(" | PAUSED"));
        }
        bar(f, head, left, "? help  q quit ");
        let rows: Vec<(String, &'static str)> = TOP_KEYS.iter().map(|b| (keys_label(b), b.help)).collect();
        if !self.help.draw(f, body, "picosnitch top: keys", &rows) {
            live::render::render(&mut self.live, f, body, self.now, &self.tz);
        }
        let line = match (&self.find_input, &self.live.feed) {
            (Some(input), _) => Paragraph::new(format!("/{input}_  (Enter keeps, Esc clears)")),
            (None, FeedState::Down { .. }) => Paragraph::new(self.live.feed_line()).style(problem_style()),
            (None, _) => Paragraph::new(self.live.feed_line()),
        };
        f.render_widget(line, status);
    }

    fn wants_quit(&self) -> bool {
        self.quit
    }
}

/// Runs `picosnitch top` on the terminal until the user quits or a signal arrives.
/// Works for any user who may open the feed socket (root or its group); problems with
/// the feed are shown on screen and retried, not returned.
///
/// `confine` runs once the time zone is read and the terminal is set up, while this is
/// the only thread: the caller's sandbox then covers every thread the UI starts.
pub fn run(options: TopOptions, confine: impl FnOnce() -> Result<(), TuiError>) -> Result<(), TuiError> {
    let tz = TimeZone::system();
    let mut guard = TerminalGuard::enter()?;
    // INVARIANT: no thread has been started yet (see `confine` above).
    confine()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(8_192);
    let stop = Arc::new(AtomicBool::new(false));
    let feed = live::source::spawn(options.feed_socket.clone(), tx.clone(), stop.clone());
    let mut app = TopApp::new(options.feed_socket, tz, event_loop::unix_now());
    let result = event_loop::run(&mut app, &mut guard, &rx, tx, None, vec![]);
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    drop(guard);
    let _ = feed.join();
    result
}
