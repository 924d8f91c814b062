//! The history browser's state: which view, window and filters; what was loaded; and
//! the query each state needs.
pub mod render;
pub mod views;
pub mod windows;
pub mod worker;

use crate::format::{or_none, Units, UserNames};
use jiff::tz::TimeZone;
use picosnitch_store::{ConnectionRecord, Dimension, Filter, GroupKey, HistoryQuery, HistoryRow};
use ratatui::widgets::TableState;
use std::time::Duration;
use views::{ViewKind, VIEWS};
use windows::{TimeBucket, Window, WINDOWS};
use worker::{HistoryData, HistoryProblem, HistoryReply, HistoryRequest};

/// How many connections the Connections view loads.
pub const CONNECTION_LIMIT: usize = 1_000;

/// The query the history browser runs for a view, window, history step and filters;
/// `None` for the live view. Public so the benchmark times exactly these.
pub fn request_for(view: usize, window: usize, step: u32, filters: &[Filter], now: i64, tz: &TimeZone) -> Option<HistoryRequest> {
    let w = WINDOWS.get(window)?;
    let range = windows::range(w, step, now, tz);
    match VIEWS.get(view)?.kind {
        ViewKind::Live => None,
        ViewKind::Connections => Some(HistoryRequest::Connections { range, filters: filters.to_vec(), limit: CONNECTION_LIMIT }),
        ViewKind::Group(g) => {
            let (width, local_days) = match w.bucket {
                TimeBucket::Seconds(s) => (s, false),
                TimeBucket::LocalDay => (3_600, true),
            };
            let is_time = matches!(g, views::Group::Time);
            let query = HistoryQuery { range, group: g.dimension(width), filters: filters.to_vec() };
            Some(HistoryRequest::Group { query, local_days: local_days && is_time })
        }
    }
}

/// A filter as the user made it: what it does, how it reads, and the view to return
/// to when it is popped.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedFilter {
    pub filter: Filter,
    pub text: String,
    pub view: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistorySort {
    /// By the grouped value, as picosnitch 2.x listed rows.
    #[default]
    Key,
    Sent,
    Received,
    Conns,
}

impl HistorySort {
    const ORDER: [HistorySort; 4] = [HistorySort::Key, HistorySort::Sent, HistorySort::Received, HistorySort::Conns];

    pub fn next(self) -> HistorySort {
        let i = Self::ORDER.iter().position(|s| *s == self).unwrap_or(0);
        Self::ORDER[(i + 1) % Self::ORDER.len()]
    }

    pub fn prev(self) -> HistorySort {
        let i = Self::ORDER.iter().position(|s| *s == self).unwrap_or(0);
        Self::ORDER[(i + Self::ORDER.len() - 1) % Self::ORDER.len()]
    }

    pub fn label(self) -> &'static str {
        match self {
            HistorySort::Key => "value",
            HistorySort::Sent => "sent",
            HistorySort::Received => "received",
            HistorySort::Conns => "connections",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Panel {
    Sidebar,
    #[default]
    Table,
}

/// A grouped row as displayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: GroupKey,
    pub text: String,
    pub send: i64,
    pub recv: i64,
    pub events: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Loaded {
    #[default]
    Nothing,
    Rows(Vec<Row>),
    Connections(Vec<ConnectionRecord>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryState {
    Loading,
    Ready(Duration),
    Problem(HistoryProblem),
}

pub struct HistoryState {
    pub view: usize,
    pub window: usize,
    pub step: u32,
    pub filters: Vec<AppliedFilter>,
    pub units: Units,
    pub sort: HistorySort,
    /// Lowercase text shown rows must contain.
    pub find: String,
    pub focus: Panel,
    pub table: TableState,
    pub loaded: Loaded,
    pub state: QueryState,
    pub generation: u64,
    /// The unix time the current query was asked at; labels of Time rows use it.
    pub asked_at: i64,
    pub bounds: Option<(i64, i64)>,
    /// When the last problem was reported, to retry a few seconds later.
    pub problem_at: f64,
    /// VirusTotal's verdicts on the loaded connections' executables, by sha256.
    pub verdicts: std::collections::HashMap<String, String>,
}

impl Default for HistoryState {
    fn default() -> Self {
        HistoryState {
            view: 0,
            window: 0,
            step: 0,
            filters: Vec::new(),
            units: Units::default(),
            sort: HistorySort::default(),
            find: String::new(),
            focus: Panel::Table,
            table: TableState::default().with_selected(Some(0)),
            loaded: Loaded::Nothing,
            state: QueryState::Loading,
            generation: 0,
            asked_at: 0,
            bounds: None,
            problem_at: 0.0,
            verdicts: std::collections::HashMap::new(),
        }
    }
}

/// Time bucket labels: as precise as the bucket is wide.
pub fn time_label(start: i64, width: i64, tz: &TimeZone) -> String {
    let f = if width >= 86_400 {
        "%Y-%m-%d %a"
    } else if width >= 3_600 {
        "%Y-%m-%d %H:00"
    } else if width >= 60 {
        "%Y-%m-%d %H:%M"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    crate::format::local(start as f64, tz, f)
}

impl HistoryState {
    pub fn view_def(&self) -> &'static views::ViewDef {
        &VIEWS[self.view.min(VIEWS.len() - 1)]
    }

    pub fn window_def(&self) -> &'static Window {
        &WINDOWS[self.window.min(WINDOWS.len() - 1)]
    }

    pub fn filters(&self) -> Vec<Filter> {
        self.filters.iter().map(|f| f.filter.clone()).collect()
    }

    /// Starts a new query for the current state.
    pub fn request(&mut self, now: f64, tz: &TimeZone) -> Option<(u64, HistoryRequest)> {
        self.asked_at = now as i64;
        let request = request_for(self.view, self.window, self.step, &self.filters(), self.asked_at, tz)?;
        self.generation += 1;
        self.state = QueryState::Loading;
        Some((self.generation, request))
    }

    /// Takes a reply if it answers the latest request.
    pub fn receive(&mut self, reply: HistoryReply, now: f64, names: &UserNames, tz: &TimeZone) {
        if reply.generation != self.generation {
            return;
        }
        let keep = self.selected_key();
        let (elapsed, bounds) = (reply.elapsed, reply.bounds);
        match reply.result {
            Ok(HistoryData::Rows(rows)) => {
                let rows = rows.into_iter().map(|r| self.row(r, names, tz)).collect();
                self.loaded = Loaded::Rows(rows);
                self.state = QueryState::Ready(elapsed);
            }
            Ok(HistoryData::Connections(c, verdicts)) => {
                self.loaded = Loaded::Connections(c);
                self.verdicts = verdicts;
                self.state = QueryState::Ready(elapsed);
            }
            Err(p) => {
                self.loaded = Loaded::Nothing;
                self.state = QueryState::Problem(p);
                self.problem_at = now;
            }
        }
        self.bounds = bounds.or(self.bounds);
        self.reselect(keep);
    }

    fn row(&self, r: HistoryRow, names: &UserNames, tz: &TimeZone) -> Row {
        let text = match (self.view_def().kind, &r.key) {
            (ViewKind::Group(views::Group::User), GroupKey::Int(uid)) => names.label(*uid),
            (ViewKind::Group(views::Group::LocalPort | views::Group::RemotePort), GroupKey::Int(p)) => {
                if *p > 0 {
                    p.to_string()
                } else {
                    "(none)".into()
                }
            }
            (ViewKind::Group(views::Group::Time), GroupKey::Int(t)) => time_label(*t, self.time_width(), tz),
            _ => or_none(&r.label).to_string(),
        };
        Row { key: r.key, text, send: r.send, recv: r.recv, events: r.events }
    }

    /// The bucket width of the Time view in the current window (a day for local days).
    pub fn time_width(&self) -> i64 {
        match self.window_def().bucket {
            TimeBucket::Seconds(s) => s,
            TimeBucket::LocalDay => 86_400,
        }
    }

    /// Rows to show: found, then sorted.
    pub fn rows(&self) -> Vec<&Row> {
        let Loaded::Rows(rows) = &self.loaded else { return Vec::new() };
        let mut shown: Vec<&Row> = rows.iter().filter(|r| self.find.is_empty() || r.text.to_lowercase().contains(&self.find)).collect();
        match self.sort {
            HistorySort::Key => {}
            HistorySort::Sent => shown.sort_by_key(|r| std::cmp::Reverse(r.send)),
            HistorySort::Received => shown.sort_by_key(|r| std::cmp::Reverse(r.recv)),
            HistorySort::Conns => shown.sort_by_key(|r| std::cmp::Reverse(r.events)),
        }
        shown
    }

    pub fn connections(&self) -> Vec<&ConnectionRecord> {
        let Loaded::Connections(c) = &self.loaded else { return Vec::new() };
        c.iter()
            .filter(|r| {
                self.find.is_empty()
                    || [&r.exe.exe, &r.exe.name, &r.exe.cmdline, &r.domain, &r.raddr, &r.laddr, &r.pexe.name, &r.exe.sha256]
                        .iter()
                        .any(|t| t.to_lowercase().contains(&self.find))
            })
            .collect()
    }

    pub fn shown_len(&self) -> usize {
        match self.loaded {
            Loaded::Rows(_) => self.rows().len(),
            Loaded::Connections(_) => self.connections().len(),
            Loaded::Nothing => 0,
        }
    }

    fn selected_key(&self) -> Option<GroupKey> {
        let i = self.table.selected()?;
        self.rows().get(i).map(|r| r.key.clone())
    }

    /// After new rows: the same row as before if it is still there, else the nearest.
    pub fn reselect(&mut self, key: Option<GroupKey>) {
        let found = key.and_then(|k| self.rows().iter().position(|r| r.key == k));
        let len = self.shown_len();
        let i = found.unwrap_or_else(|| self.table.selected().unwrap_or(0).min(len.saturating_sub(1)));
        self.table.select(Some(i));
    }

    /// The filter the selected row stands for.
    pub fn filter_for_selected(&self, exclude: bool, tz: &TimeZone) -> Option<AppliedFilter> {
        let ViewKind::Group(group) = self.view_def().kind else { return None };
        let row = *self.rows().get(self.table.selected()?)?;
        let dim = match group {
            views::Group::Time => {
                let GroupKey::Int(start) = row.key else { return None };
                // A local day is not always 86400 s long; the filter covers exactly it.
                let width = match self.window_def().bucket {
                    TimeBucket::Seconds(s) => s,
                    TimeBucket::LocalDay => jiff::Timestamp::from_second(start)
                        .ok()
                        .and_then(|t| t.to_zoned_datetime(tz.clone()).tomorrow().ok())
                        .and_then(|z| z.start_of_day().ok())
                        .map_or(86_400, |z| z.timestamp().as_second() - start),
                };
                Dimension::Time { width }
            }
            g => g.dimension(0),
        };
        let op = if exclude { "≠" } else { "=" };
        Some(AppliedFilter {
            filter: Filter { dim, key: row.key.clone(), exclude },
            text: format!("{} {op} {}", self.view_def().column, row.text),
            view: self.view,
        })
    }

    pub fn move_selection(&mut self, delta: isize) {
        let len = self.shown_len();
        if len == 0 {
            self.table.select(Some(0));
            return;
        }
        let cur = self.table.selected().unwrap_or(0) as isize;
        let next = (cur + delta).clamp(0, len as isize - 1);
        self.table.select(Some(next as usize));
    }

    /// Whether stepping one period further back still reaches recorded history.
    pub fn can_step_back(&self, now: f64, tz: &TimeZone) -> bool {
        let w = self.window_def();
        if w.secs == 0 {
            return false;
        }
        let r = windows::range(w, self.step + 1, now as i64, tz);
        match (self.bounds, r.end) {
            (Some((oldest, _)), Some(end)) => end > oldest,
            (None, _) => self.step < 1,
            (_, None) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picosnitch_store::TimeRange;

    #[test]
    fn requests_follow_view_window_step_and_filters() {
        let tz = TimeZone::UTC;
        let now = 1_795_343_835;
        let names = |v: &str| views::VIEWS.iter().position(|d| d.name == v).expect("view");
        let win = |l: &str| WINDOWS.iter().position(|w| w.label == l).expect("window");
        match request_for(names("Time"), win("30 days"), 0, &[], now, &tz) {
            Some(HistoryRequest::Group { query, local_days }) => {
                assert!(local_days);
                assert_eq!(query.group, Dimension::Time { width: 3_600 });
                assert_eq!(query.range, TimeRange { start: Some(now - 30 * 86_400), end: None });
            }
            other => panic!("{other:?}"),
        }
        assert!(request_for(views::LIVE, 0, 0, &[], now, &tz).is_none());
        match request_for(views::CONNECTIONS, win("1 hour"), 2, &[], now, &tz) {
            Some(HistoryRequest::Connections { range, limit, .. }) => {
                assert_eq!(limit, CONNECTION_LIMIT);
                assert_eq!(range, TimeRange { start: Some(1_795_338_000), end: Some(1_795_341_600) });
            }
            other => panic!("{other:?}"),
        }
    }
}
