//! The live view shared by `picosnitch top` and the tui's live tab: the feed's state,
//! the totals it adds up to, and the two panels that show them.
pub mod model;
pub mod render;
pub mod source;

use crate::format::Units;
use model::LiveModel;
use ratatui::widgets::TableState;
use source::{FeedEvent, FeedProblem};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum FeedState {
    Connecting,
    Connected,
    /// No feed since `since` (unix time), for this reason.
    Down { problem: FeedProblem, since: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LivePanel {
    #[default]
    Executables,
    Events,
}

/// What the live view's keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveAction {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    SwitchPanel,
    SortNext,
    SortPrev,
    Pause,
    Reset,
}

pub struct LiveView {
    pub model: LiveModel,
    pub feed: FeedState,
    pub feed_path: PathBuf,
    pub focus: LivePanel,
    pub executables: TableState,
    pub events: TableState,
    pub units: Units,
    /// Rows of the focused panel at the last draw, for PgUp/PgDn.
    pub page: usize,
}

impl LiveView {
    pub fn new(feed_path: PathBuf) -> LiveView {
        LiveView {
            model: LiveModel::default(),
            feed: FeedState::Connecting,
            feed_path,
            focus: LivePanel::Executables,
            executables: TableState::default().with_selected(Some(0)),
            events: TableState::default().with_selected(Some(0)),
            units: Units::default(),
            page: 10,
        }
    }

    pub fn on_feed(&mut self, event: FeedEvent, now: f64) {
        match event {
            FeedEvent::Connected => self.feed = FeedState::Connected,
            FeedEvent::Update(u) => {
                self.model.apply(&u);
                // Keep the rows the user scrolled to in place as new events arrive on top.
                if !self.model.paused() {
                    if let Some(i) = self.events.selected().filter(|i| *i > 0) {
                        *self.events.selected_mut() = Some((i + 1).min(model::RECENT_EVENTS - 1));
                        *self.events.offset_mut() += 1;
                    }
                }
                self.feed = FeedState::Connected;
            }
            FeedEvent::Problem(problem) => {
                // The first report of a problem sets the time; repeats (retries) keep it.
                if !matches!(&self.feed, FeedState::Down { problem: p, .. } if *p == problem) {
                    self.feed = FeedState::Down { problem, since: now };
                }
            }
        }
    }

    pub fn act(&mut self, action: LiveAction, now: f64) {
        let (len, state) = match self.focus {
            LivePanel::Executables => (self.model.table(now).len(), &mut self.executables),
            LivePanel::Events => (self.model.events().len(), &mut self.events),
        };
        let cur = state.selected().unwrap_or(0) as isize;
        let last = len.saturating_sub(1) as isize;
        let page = self.page.max(1) as isize;
        let target = match action {
            LiveAction::Up => Some(cur - 1),
            LiveAction::Down => Some(cur + 1),
            LiveAction::PageUp => Some(cur - page),
            LiveAction::PageDown => Some(cur + page),
            LiveAction::Home => Some(0),
            LiveAction::End => Some(last),
            _ => None,
        };
        if let Some(t) = target {
            state.select(Some(t.clamp(0, last.max(0)) as usize));
            return;
        }
        match action {
            LiveAction::SwitchPanel => {
                self.focus = match self.focus {
                    LivePanel::Executables => LivePanel::Events,
                    LivePanel::Events => LivePanel::Executables,
                }
            }
            LiveAction::SortNext => self.model.sort = self.model.sort.next(),
            LiveAction::SortPrev => self.model.sort = self.model.sort.prev(),
            LiveAction::Pause => self.model.toggle_pause(),
            LiveAction::Reset => {
                self.model.reset();
                self.executables.select(Some(0));
                self.events.select(Some(0));
            }
            _ => {}
        }
    }

    /// One line about the feed for the status bar.
    pub fn feed_line(&self) -> String {
        match &self.feed {
            FeedState::Connecting => format!("connecting to {}", self.feed_path.display()),
            FeedState::Connected => format!("live feed {}", self.feed_path.display()),
            FeedState::Down { problem, .. } => problem.describe(),
        }
    }
}
