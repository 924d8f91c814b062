//! Drawing the live view: executables above, recent events below.
use super::{FeedState, LivePanel, LiveView};
use crate::format::{clock, count, endpoint, protocol};
use crate::widgets::{header_style, message_box, num, panel, problem_style, selected_style};
use jiff::tz::TimeZone;
use picosnitch_feed::{Direction, FlowUpdate, UpdateKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::widgets::{Cell, Row, Table};
use ratatui::Frame;

fn kind(u: &FlowUpdate) -> &'static str {
    match u.kind {
        UpdateKind::Open => "open",
        UpdateKind::Bytes => "bytes",
        UpdateKind::Close => "close",
        UpdateKind::Exec => "exec",
        UpdateKind::Unknown => "?",
    }
}

/// Where the flow went: "domain:port" when the name is known, else the address.
fn remote(u: &FlowUpdate) -> String {
    if u.kind == UpdateKind::Exec {
        return u.cmdline.clone();
    }
    if u.domain.is_empty() {
        endpoint(&u.raddr, i64::from(u.rport))
    } else {
        endpoint(&u.domain, i64::from(u.rport))
    }
}

fn ports(p: &std::collections::BTreeSet<u16>) -> String {
    p.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
}

pub fn render(view: &mut LiveView, f: &mut Frame, area: Rect, now: f64, tz: &TimeZone) {
    if view.model.is_empty() {
        let (title, text, style) = match &view.feed {
            FeedState::Down { problem, since } => (
                match problem {
                    super::source::FeedProblem::Closed => "Daemon stopped",
                    _ => "Live feed unavailable",
                },
                format!("{}\n\nsince {}; retrying", problem.describe(), clock(*since, tz)),
                problem_style(),
            ),
            FeedState::Connecting => ("Live feed", format!("Connecting to {}...", view.feed_path.display()), Style::new()),
            FeedState::Connected => (
                "Live feed",
                format!("Connected to {}. Waiting for network activity...", view.feed_path.display()),
                Style::new(),
            ),
        };
        message_box(f, area, title, &text, style);
        return;
    }
    let [top, bottom] = Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    executables(view, f, top, now);
    events(view, f, bottom, tz);
    view.page = match view.focus {
        LivePanel::Executables => top.height.saturating_sub(3) as usize,
        LivePanel::Events => bottom.height.saturating_sub(3) as usize,
    };
}

fn executables(view: &mut LiveView, f: &mut Frame, area: Rect, now: f64) {
    let rows = view.model.table(now);
    let wide = area.width >= 110;
    let narrow = area.width < 80;
    let u = view.units;
    let mut header = vec!["Executable", "Name", "Conns"];
    let mut widths = vec![Constraint::Fill(3), Constraint::Length(15), Constraint::Length(6)];
    if !narrow {
        header.push("Open");
        widths.push(Constraint::Length(5));
    }
    header.extend(["Sent", "Received"]);
    widths.extend([Constraint::Length(10), Constraint::Length(10)]);
    if wide {
        header.extend(["Send/s", "Recv/s"]);
        widths.extend([Constraint::Length(11), Constraint::Length(11)]);
    }
    if !narrow {
        header.push("Listening");
        widths.push(Constraint::Fill(1));
    }
    let body: Vec<Row> = rows
        .iter()
        .map(|(k, s)| {
            let (rs, rr) = s.rates(now);
            let mut cells: Vec<Cell> = vec![Cell::from(k.exe.clone()), Cell::from(k.name.clone()), num(count(s.conns as i64))];
            if !narrow {
                cells.push(num(count(s.open as i64)));
            }
            cells.push(num(u.bytes(s.send as i64)));
            cells.push(num(u.bytes(s.recv as i64)));
            if wide {
                cells.push(num(u.rate(rs)));
                cells.push(num(u.rate(rr)));
            }
            if !narrow {
                cells.push(Cell::from(ports(&s.listening)));
            }
            Row::new(cells)
        })
        .collect();
    let focused = view.focus == LivePanel::Executables;
    let paused = if view.model.paused() { " [paused]" } else { "" };
    let find = if view.model.find.is_empty() { String::new() } else { format!(" matching \"{}\"", view.model.find) };
    let title = format!(" Executables: {} by {}{find}{paused} ", rows.len(), view.model.sort.label());
    let table = Table::new(body, widths)
        .header(Row::new(header.into_iter().map(head)).style(header_style()))
        .row_highlight_style(selected_style(focused))
        .block(panel(title, focused));
    clamp(&mut view.executables, rows.len());
    f.render_stateful_widget(table, area, &mut view.executables);
}

fn events(view: &mut LiveView, f: &mut Frame, area: Rect, tz: &TimeZone) {
    let events = view.model.events();
    let narrow = area.width < 100;
    let u = view.units;
    let mut header = vec!["Time", "Event", "Name"];
    let mut widths = vec![Constraint::Length(8), Constraint::Length(5), Constraint::Length(15)];
    if !narrow {
        header.extend(["PID", "Dir", "Proto", "Local"]);
        widths.extend([Constraint::Length(7), Constraint::Length(3), Constraint::Length(5), Constraint::Fill(2)]);
    }
    header.extend(["Remote", "Sent", "Received"]);
    widths.extend([Constraint::Fill(3), Constraint::Length(9), Constraint::Length(9)]);
    let body: Vec<Row> = events
        .iter()
        .map(|e| {
            let mut cells = vec![Cell::from(clock(e.time, tz)), Cell::from(kind(e)), Cell::from(e.name.clone())];
            if !narrow {
                let dir = match e.direction {
                    Some(Direction::Out) => "out",
                    Some(Direction::In) => "in",
                    None => "",
                };
                cells.extend([
                    num(e.pid.to_string()),
                    Cell::from(dir),
                    Cell::from(protocol(i64::from(e.protocol))),
                    Cell::from(endpoint(&e.laddr, i64::from(e.lport))),
                ]);
            }
            cells.extend([Cell::from(remote(e)), num(u.bytes(e.send as i64)), num(u.bytes(e.recv as i64))]);
            Row::new(cells)
        })
        .collect();
    let focused = view.focus == LivePanel::Events;
    let title = format!(" Recent events: {} of {} updates ", events.len(), count(view.model.updates as i64));
    let len = events.len();
    let table = Table::new(body, widths)
        .header(Row::new(header.into_iter().map(head)).style(header_style()))
        .row_highlight_style(selected_style(focused))
        .block(panel(title, focused));
    clamp(&mut view.events, len);
    f.render_stateful_widget(table, area, &mut view.events);
}

/// Column headers of numbers align with them, on the right.
fn head(name: &'static str) -> Cell<'static> {
    match name {
        "Conns" | "Open" | "Sent" | "Received" | "Send/s" | "Recv/s" | "PID" => num(name.to_string()),
        _ => Cell::from(name),
    }
}

fn clamp(state: &mut ratatui::widgets::TableState, len: usize) {
    let i = state.selected().unwrap_or(0).min(len.saturating_sub(1));
    state.select(Some(i));
}
