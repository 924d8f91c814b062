//! `picosnitch tui`: the history browser, with the live feed as one of its views.
use crate::widgets::HelpScreen;
use crate::error::TuiError;
use crate::event_loop::{self, App, Effect, Msg};
use crate::format::UserNames;
use crate::history::views::{ViewKind, LIVE, VIEWS};
use crate::history::windows::WINDOWS;
use crate::history::worker::{HistoryProblem, Worker};
use crate::history::{HistoryState, Panel, QueryState};
use crate::keys::{lookup, Binding, Key};
use crate::live::{self, LiveAction, LiveView};
use crate::terminal::TerminalGuard;
use crate::top::edit_find;
use jiff::tz::TimeZone;
use ratatui::Frame;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What `picosnitch tui` needs; the CLI fills it from the config (`[database] path`,
/// `[data] runtime_dir`) or `--db`/`--socket` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuiOptions {
    pub database: PathBuf,
    pub feed_socket: PathBuf,
}

impl TuiOptions {
    pub fn from_config(config: &picosnitch_config::Config) -> TuiOptions {
        TuiOptions { database: config.database.path.clone(), feed_socket: config.data.runtime_dir.join(picosnitch_feed::SOCKET_NAME) }
    }
}

/// Smallest terminal the layout works in.
pub const MIN_SIZE: (u16, u16) = (70, 15);

/// Seconds between attempts while the database is missing or unreadable.
const RETRY_SECONDS: f64 = 3.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TuiAction {
    Quit,
    Help,
    Find,
    Filter,
    Exclude,
    PopFilter,
    DrillDown,
    NextWindow,
    PrevWindow,
    StepBack,
    StepForward,
    UnitsNext,
    UnitsPrev,
    SortNext,
    SortPrev,
    PrevView,
    NextView,
    SwitchPanel,
    Live,
    Pause,
    Refresh,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
}

pub const TUI_KEYS: &[Binding<TuiAction>] = &[
    Binding { keys: &[Key::Char('q'), Key::Esc, Key::CtrlC], action: TuiAction::Quit, help: "quit" },
    Binding { keys: &[Key::Char('?')], action: TuiAction::Help, help: "this help; any key closes it" },
    Binding { keys: &[Key::Char('/')], action: TuiAction::Find, help: "find: type to show only matching rows, Enter keeps, Esc clears" },
    Binding { keys: &[Key::Char('f'), Key::Enter], action: TuiAction::Filter, help: "filter on the selected row (in the views list: open the view)" },
    Binding { keys: &[Key::Char('e')], action: TuiAction::Exclude, help: "exclude the selected row" },
    Binding { keys: &[Key::Char('F'), Key::Char('E'), Key::Backspace], action: TuiAction::PopFilter, help: "pop the last filter, back to its view" },
    Binding { keys: &[Key::Char('d')], action: TuiAction::DrillDown, help: "drill down: the connections behind the selected row" },
    Binding { keys: &[Key::Char('t')], action: TuiAction::NextWindow, help: "next time window (all, 1/5/15/30 min, 1/3/6/12 h, 1/3/7/30/365 days)" },
    Binding { keys: &[Key::Char('T')], action: TuiAction::PrevWindow, help: "previous time window" },
    Binding { keys: &[Key::Char('h')], action: TuiAction::StepBack, help: "back in history by one period" },
    Binding { keys: &[Key::Char('H')], action: TuiAction::StepForward, help: "forward in history by one period" },
    Binding { keys: &[Key::Char('u')], action: TuiAction::UnitsNext, help: "next byte units (auto, B, kB, MB, GB)" },
    Binding { keys: &[Key::Char('U')], action: TuiAction::UnitsPrev, help: "previous byte units" },
    Binding { keys: &[Key::Char('s')], action: TuiAction::SortNext, help: "sort by the next column" },
    Binding { keys: &[Key::Char('S')], action: TuiAction::SortPrev, help: "sort by the previous column" },
    Binding { keys: &[Key::Left], action: TuiAction::PrevView, help: "previous view" },
    Binding { keys: &[Key::Right], action: TuiAction::NextView, help: "next view" },
    Binding { keys: &[Key::Tab, Key::BackTab], action: TuiAction::SwitchPanel, help: "switch panel: views list / table (live: executables / events)" },
    Binding { keys: &[Key::Char('l')], action: TuiAction::Live, help: "live feed on / off" },
    Binding { keys: &[Key::Char('p'), Key::Char(' ')], action: TuiAction::Pause, help: "live feed: pause / resume the display" },
    Binding { keys: &[Key::Char('r')], action: TuiAction::Refresh, help: "reload the history (live feed: reset counters)" },
    Binding { keys: &[Key::Up], action: TuiAction::Up, help: "move up" },
    Binding { keys: &[Key::Down], action: TuiAction::Down, help: "move down" },
    Binding { keys: &[Key::PageUp], action: TuiAction::PageUp, help: "page up" },
    Binding { keys: &[Key::PageDown], action: TuiAction::PageDown, help: "page down" },
    Binding { keys: &[Key::Home], action: TuiAction::Home, help: "first row" },
    Binding { keys: &[Key::End], action: TuiAction::End, help: "last row" },
];

pub struct TuiApp {
    pub history: HistoryState,
    pub live: LiveView,
    pub tz: TimeZone,
    pub names: UserNames,
    pub now: f64,
    pub database: PathBuf,
    pub help: HelpScreen,
    pub find_input: Option<String>,
    /// A short note for the status bar, until the given time.
    pub note: Option<(String, f64)>,
    /// The view to return to when `l` leaves the live feed.
    before_live: usize,
    /// Rows of the table at the last draw, for PgUp/PgDn.
    pub page: usize,
    quit: bool,
}

impl TuiApp {
    pub fn new(options: &TuiOptions, tz: TimeZone, names: UserNames, now: f64) -> TuiApp {
        TuiApp {
            history: HistoryState::default(),
            live: LiveView::new(options.feed_socket.clone()),
            tz,
            names,
            now,
            database: options.database.clone(),
            help: HelpScreen::default(),
            find_input: None,
            note: None,
            before_live: 0,
            page: 10,
            quit: false,
        }
    }

    /// The first query, for the default view.
    pub fn start(&mut self) -> Vec<Effect> {
        self.query()
    }

    fn query(&mut self) -> Vec<Effect> {
        match self.history.request(self.now, &self.tz) {
            Some((generation, request)) => vec![Effect::Query(generation, request)],
            None => vec![],
        }
    }

    fn note(&mut self, text: &str) {
        self.note = Some((text.to_string(), self.now + 4.0));
    }

    fn in_live(&self) -> bool {
        self.history.view_def().kind == ViewKind::Live
    }

    fn set_view(&mut self, view: usize) -> Vec<Effect> {
        if view == self.history.view {
            return vec![];
        }
        self.history.view = view;
        self.history.loaded = Default::default();
        self.history.table.select(Some(0));
        self.query()
    }

    fn step_view(&mut self, delta: isize) -> Vec<Effect> {
        let n = VIEWS.len() as isize;
        let next = (self.history.view as isize + delta).rem_euclid(n) as usize;
        self.set_view(next)
    }

    fn live_action(&mut self, action: TuiAction) -> Option<LiveAction> {
        Some(match action {
            TuiAction::Up => LiveAction::Up,
            TuiAction::Down => LiveAction::Down,
            TuiAction::PageUp => LiveAction::PageUp,
            TuiAction::PageDown => LiveAction::PageDown,
            TuiAction::Home => LiveAction::Home,
            TuiAction::End => LiveAction::End,
            TuiAction::SwitchPanel => LiveAction::SwitchPanel,
            TuiAction::SortNext => LiveAction::SortNext,
            TuiAction::SortPrev => LiveAction::SortPrev,
            TuiAction::Pause => LiveAction::Pause,
            TuiAction::Refresh => LiveAction::Reset,
            _ => return None,
        })
    }

    fn act(&mut self, action: TuiAction) -> Vec<Effect> {
        if self.in_live() {
            if let Some(a) = self.live_action(action) {
                self.live.act(a, self.now);
                return vec![];
            }
        }
        match action {
            TuiAction::Quit => self.quit = true,
            TuiAction::Help => self.help.open = true,
            TuiAction::Find => {
                let current = if self.in_live() { self.live.model.find.clone() } else { self.history.find.clone() };
                self.find_input = Some(current);
            }
            TuiAction::Live => {
                if self.in_live() {
                    return self.set_view(self.before_live);
                }
                self.before_live = self.history.view;
                return self.set_view(LIVE);
            }
            TuiAction::PrevView => return self.step_view(-1),
            TuiAction::NextView => return self.step_view(1),
            TuiAction::SwitchPanel => {
                self.history.focus = match self.history.focus {
                    Panel::Sidebar => Panel::Table,
                    Panel::Table => Panel::Sidebar,
                }
            }
            TuiAction::Up | TuiAction::Down if self.history.focus == Panel::Sidebar => {
                let delta = if action == TuiAction::Up { -1 } else { 1 };
                return self.step_view(delta);
            }
            TuiAction::Filter if self.history.focus == Panel::Sidebar => self.history.focus = Panel::Table,
            TuiAction::Up => self.history.move_selection(-1),
            TuiAction::Down => self.history.move_selection(1),
            TuiAction::PageUp => self.history.move_selection(-(self.page.max(1) as isize)),
            TuiAction::PageDown => self.history.move_selection(self.page.max(1) as isize),
            TuiAction::Home => self.history.move_selection(isize::MIN / 2),
            TuiAction::End => self.history.move_selection(isize::MAX / 2),
            TuiAction::UnitsNext => {
                self.history.units = self.history.units.next();
                self.live.units = self.history.units;
            }
            TuiAction::UnitsPrev => {
                self.history.units = self.history.units.prev();
                self.live.units = self.history.units;
            }
            TuiAction::SortNext => self.history.sort = self.history.sort.next(),
            TuiAction::SortPrev => self.history.sort = self.history.sort.prev(),
            TuiAction::NextWindow | TuiAction::PrevWindow => {
                let n = WINDOWS.len();
                let w = self.history.window;
                self.history.window = if action == TuiAction::NextWindow { (w + 1) % n } else { (w + n - 1) % n };
                self.history.step = 0;
                return self.query();
            }
            TuiAction::StepBack => {
                if self.history.window_def().secs == 0 {
                    self.note("the window is all history: press t for a shorter window to step through");
                } else if !self.history.can_step_back(self.now, &self.tz) {
                    self.note("no older history");
                } else {
                    self.history.step += 1;
                    return self.query();
                }
            }
            TuiAction::StepForward => {
                if self.history.step == 0 {
                    self.note("already at the present");
                } else {
                    self.history.step -= 1;
                    return self.query();
                }
            }
            TuiAction::Filter | TuiAction::Exclude | TuiAction::DrillDown => {
                let exclude = action == TuiAction::Exclude;
                match self.history.filter_for_selected(exclude, &self.tz) {
                    Some(f) => {
                        // Drilling into a row already filtered on adds nothing to pop.
                        if self.history.filters.iter().any(|g| g.filter == f.filter) {
                            if action != TuiAction::DrillDown {
                                self.note("already filtered on that");
                                return vec![];
                            }
                        } else {
                            self.history.filters.push(f);
                        }
                        self.history.find.clear();
                        if action == TuiAction::DrillDown {
                            self.history.view = crate::history::views::CONNECTIONS;
                            self.history.loaded = Default::default();
                            self.history.table.select(Some(0));
                        }
                        return self.query();
                    }
                    None => self.note("select a row of a grouped view first"),
                }
            }
            TuiAction::PopFilter => match self.history.filters.pop() {
                Some(f) => {
                    if f.view != self.history.view {
                        self.history.view = f.view;
                        self.history.loaded = Default::default();
                    }
                    return self.query();
                }
                None => self.note("no filter to pop"),
            },
            TuiAction::Refresh => return self.query(),
            TuiAction::Pause => self.note("pause applies to the live feed (l)"),
        }
        vec![]
    }
}

impl App for TuiApp {
    fn on_key(&mut self, key: Key) -> Vec<Effect> {
        if self.help.open {
            self.help.on_key(key);
            return vec![];
        }
        if let Some(input) = &mut self.find_input {
            let done = edit_find(input, key);
            let text = input.to_lowercase();
            if self.in_live() {
                self.live.model.find = text;
            } else {
                self.history.find = text;
                self.history.reselect(None);
            }
            if done.is_some() {
                self.find_input = None;
            }
            return vec![];
        }
        match lookup(TUI_KEYS, key) {
            Some(action) => self.act(action),
            None => vec![],
        }
    }

    fn on_msg(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Feed(e) => self.live.on_feed(e, self.now),
            Msg::History(r) => self.history.receive(r, self.now, &self.names, &self.tz),
            // Terminal input goes to on_key; the loop does not pass it here.
            Msg::Input(_) => {}
        }
        vec![]
    }

    fn on_tick(&mut self, now: f64) -> Vec<Effect> {
        self.now = now;
        if self.note.as_ref().is_some_and(|(_, until)| *until < now) {
            self.note = None;
        }
        // No database yet, or no permission: try again, so the view fills in once the
        // daemon has created it or the user's group changed.
        if let QueryState::Problem(HistoryProblem::Missing(_) | HistoryProblem::Permission(_)) = self.history.state {
            if now - self.history.problem_at >= RETRY_SECONDS {
                self.history.problem_at = now;
                return self.query();
            }
        }
        vec![]
    }

    fn render(&mut self, f: &mut Frame) {
        crate::history::render::render(self, f);
    }

    fn wants_quit(&self) -> bool {
        self.quit
    }
}

/// Runs `picosnitch tui` on the terminal until the user quits or a signal arrives.
/// The database is opened read-only on a query thread; a missing database, missing
/// permissions or a stopped daemon are shown on screen and retried, not returned.
///
/// `confine` runs once the time zone and user names are read and the terminal is set
/// up, while this is the only thread: the caller's sandbox then covers every thread
/// the UI starts.
pub fn run(options: TuiOptions, confine: impl FnOnce() -> Result<(), TuiError>) -> Result<(), TuiError> {
    let tz = TimeZone::system();
    let names = UserNames::from_system();
    let mut guard = TerminalGuard::enter()?;
    // INVARIANT: no thread has been started yet (see `confine` above).
    confine()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(8_192);
    let stop = Arc::new(AtomicBool::new(false));
    let worker = Worker::spawn(options.database.clone(), tz.clone(), tx.clone());
    let feed = live::source::spawn(options.feed_socket.clone(), tx.clone(), stop.clone());
    let mut app = TuiApp::new(&options, tz, names, event_loop::unix_now());
    let first = app.start();
    let result = event_loop::run(&mut app, &mut guard, &rx, tx, Some(&worker), first);
    stop.store(true, Ordering::Relaxed);
    drop(worker);
    drop(rx);
    drop(guard);
    let _ = feed.join();
    result
}
