//! Drawing `picosnitch tui`: bar, filters, views list, table, status.
use super::views::{ViewKind, VIEWS};
use super::worker::HistoryProblem;
use super::{windows, Loaded, Panel, QueryState};
use crate::format::{count, date_time, endpoint, or_none, protocol};
use crate::keys::keys_label;
use crate::tui::{TuiApp, MIN_SIZE, TUI_KEYS};
use crate::widgets::{bar, header_style, message_box, num, panel, plural, problem_style, selected_style, too_small};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

const SIDEBAR: u16 = 20;

pub fn render(app: &mut TuiApp, f: &mut Frame) {
    let area = f.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        too_small(f, "picosnitch tui", MIN_SIZE);
        return;
    }
    let [head, filters, body, status] = Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    header(app, f, head);
    filter_line(app, f, filters);
    let [side, main] = Layout::horizontal([Constraint::Length(SIDEBAR), Constraint::Fill(1)]).areas(body);
    let rows: Vec<(String, &'static str)> = TUI_KEYS.iter().map(|b| (keys_label(b), b.help)).collect();
    if !app.help.draw(f, body, "picosnitch tui: keys", &rows) {
        sidebar(app, f, side);
        match app.history.view_def().kind {
            ViewKind::Live => crate::live::render::render(&mut app.live, f, main, app.now, &app.tz),
            ViewKind::Group(_) => grouped(app, f, main),
            ViewKind::Connections => connections(app, f, main),
        }
    }
    status_line(app, f, status);
}

fn header(app: &TuiApp, f: &mut Frame, area: Rect) {
    let h = &app.history;
    let v = h.view_def();
    let what = if v.kind == ViewKind::Live {
        let m = &app.live.model;
        let since = m.since.map(|t| format!(" since {}", crate::format::clock(t, &app.tz))).unwrap_or_default();
        format!("{} updates{since}{}", count(m.updates as i64), if m.paused() { " | PAUSED" } else { "" })
    } else {
        windows::describe(h.window_def(), h.step, app.now as i64, &app.tz)
    };
    let title = if v.section == v.name || v.kind == ViewKind::Live { v.name.to_string() } else { format!("{} {}", v.section, v.name.to_lowercase()) };
    let left = vec![Span::raw(format!(" picosnitch tui | {title} | {what} | units {}", h.units.label()))];
    bar(f, area, left, "? help  q quit ");
}

fn filter_line(app: &TuiApp, f: &mut Frame, area: Rect) {
    let h = &app.history;
    let line = if h.view_def().kind == ViewKind::Live {
        Line::from(Span::styled(" everything the daemon reports now; filters apply to the history views", Style::new().add_modifier(Modifier::DIM)))
    } else if h.filters.is_empty() {
        Line::from(Span::styled(" no filters (f or Enter filters on the selected row, e excludes it)", Style::new().add_modifier(Modifier::DIM)))
    } else {
        let mut spans = vec![Span::raw(" filters: ")];
        for (i, fl) in h.filters.iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw(" > "));
            }
            spans.push(Span::styled(fl.text.clone(), Style::new().add_modifier(Modifier::BOLD)));
        }
        spans.push(Span::raw("  (Backspace pops)"));
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(line), area);
}

fn sidebar(app: &TuiApp, f: &mut Frame, area: Rect) {
    let h = &app.history;
    let focused = h.focus == Panel::Sidebar && h.view_def().kind != ViewKind::Live;
    let mut lines = Vec::new();
    let mut section = "";
    for (i, v) in VIEWS.iter().enumerate() {
        if v.section != section {
            section = v.section;
            lines.push(Line::from(Span::styled(section, Style::new().add_modifier(Modifier::BOLD))));
        }
        let current = i == h.view;
        let text = format!("{} {}", if current { ">" } else { " " }, v.name);
        lines.push(if current { Line::from(Span::styled(text, selected_style(focused))) } else { Line::from(text) });
    }
    // Scroll so the current view stays visible on short terminals.
    let inner = area.height.saturating_sub(2) as usize;
    let current_line = lines.iter().position(|l| l.spans.first().is_some_and(|s| s.content.starts_with('>'))).unwrap_or(0);
    let scroll = current_line.saturating_sub(inner.saturating_sub(1)) as u16;
    f.render_widget(Paragraph::new(lines).scroll((scroll, 0)).block(panel(" Views ".into(), focused)), area);
}

/// The table area's message when there is nothing to show, or `false`.
fn problem_or_empty(app: &TuiApp, f: &mut Frame, area: Rect, empty: bool) -> bool {
    let h = &app.history;
    match &h.state {
        QueryState::Problem(p) => {
            let title = match p {
                HistoryProblem::Missing(_) => "No history yet",
                HistoryProblem::Permission(_) => "No permission",
                HistoryProblem::Failed(_) => "Query failed",
            };
            message_box(f, area, title, p.describe(), problem_style());
            true
        }
        QueryState::Loading if matches!(h.loaded, Loaded::Nothing) => {
            message_box(f, area, "History", "Loading...", Style::new());
            true
        }
        _ if empty && !h.find.is_empty() => {
            message_box(f, area, "History", &format!("No rows match \"{}\". Press / and Esc to clear the find.", h.find), Style::new());
            true
        }
        _ if empty => {
            let text = if h.filters.is_empty() {
                "Nothing recorded in this time window. Press t or T for another window, H to come forward in history.".to_string()
            } else {
                "Nothing recorded in this time window under these filters. Backspace pops the last filter.".to_string()
            };
            message_box(f, area, "History", &text, Style::new());
            true
        }
        _ => false,
    }
}

fn grouped(app: &mut TuiApp, f: &mut Frame, area: Rect) {
    let rows = app.history.rows();
    if problem_or_empty(app, f, area, rows.is_empty()) {
        return;
    }
    let h = &app.history;
    let u = h.units;
    let v = h.view_def();
    let column = {
        let mut c = v.column.to_string();
        if let Some(first) = c.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        c
    };
    let body: Vec<Row> = rows
        .iter()
        .map(|r| Row::new([Cell::from(r.text.clone()), num(count(r.events)), num(u.bytes(r.send)), num(u.bytes(r.recv))]))
        .collect();
    let n = rows.len();
    let focused = h.focus == Panel::Table;
    let title = format!(" {}, by {} ", plural(n, "row", "rows"), h.sort.label());
    let table = Table::new(body, [Constraint::Fill(1), Constraint::Length(9), Constraint::Length(11), Constraint::Length(11)])
        .header(Row::new([Cell::from(column), num("Conns".into()), num("Sent".into()), num("Received".into())]).style(header_style()))
        .row_highlight_style(selected_style(focused))
        .block(panel(title, focused));
    app.page = area.height.saturating_sub(3) as usize;
    f.render_stateful_widget(table, area, &mut app.history.table);
}

fn connections(app: &mut TuiApp, f: &mut Frame, area: Rect) {
    let rows = app.history.connections();
    if problem_or_empty(app, f, area, rows.is_empty()) {
        return;
    }
    let h = &app.history;
    let u = h.units;
    let tz = &app.tz;
    let [table_area, detail_area] = Layout::vertical([Constraint::Fill(1), Constraint::Length(6)]).areas(area);
    let wide = area.width >= 120;
    let mut header = vec!["Time", "Name", "User"];
    let mut widths = vec![Constraint::Length(19), Constraint::Length(15), Constraint::Length(16)];
    if wide {
        header.extend(["Proto", "Local"]);
        widths.extend([Constraint::Length(5), Constraint::Fill(2)]);
    }
    widths.extend([Constraint::Fill(3), Constraint::Length(5), Constraint::Length(10), Constraint::Length(10)]);
    let mut header: Vec<Cell> = header.into_iter().map(Cell::from).collect();
    header.extend(["Remote".into(), num("Conns".into()), num("Sent".into()), num("Received".into())]);
    let body: Vec<Row> = rows
        .iter()
        .map(|c| {
            let remote = if c.domain.is_empty() { endpoint(&c.raddr, c.rport) } else { format!("{} ({})", endpoint(&c.domain, c.rport), c.raddr) };
            let mut cells = vec![Cell::from(date_time(c.contime, tz)), Cell::from(c.exe.name.clone()), Cell::from(app.names.label(c.uid))];
            if wide {
                cells.extend([Cell::from(protocol(c.protocol)), Cell::from(endpoint(&c.laddr, c.lport))]);
            }
            cells.extend([Cell::from(remote), num(count(c.events)), num(u.bytes(c.send)), num(u.bytes(c.recv))]);
            Row::new(cells)
        })
        .collect();
    let n = rows.len();
    let focused = h.focus == Panel::Table;
    let more = if n >= super::CONNECTION_LIMIT { ", the newest" } else { "" };
    let title = format!(" {}{more} ", plural(n, "connection", "connections"));
    let selected = h.table.selected().and_then(|i| rows.get(i).copied()).cloned();
    let table = Table::new(body, widths)
        .header(Row::new(header).style(header_style()))
        .row_highlight_style(selected_style(focused))
        .block(panel(title, focused));
    app.page = table_area.height.saturating_sub(3) as usize;
    f.render_stateful_widget(table, table_area, &mut app.history.table);
    if let Some(c) = selected {
        let exe = |label: &str, e: &picosnitch_store::ExeRecord| {
            let vt = app.history.verdicts.get(&e.sha256).map(|v| format!(", VirusTotal: {v}")).unwrap_or_default();
            format!("{label}{} ({}) sha256 {}{vt}", or_none(&e.exe), or_none(&e.name), or_none(&e.sha256))
        };
        let text = vec![
            Line::from(exe("process: ", &c.exe)),
            Line::from(format!("command: {}", or_none(&c.exe.cmdline))),
            Line::from(exe("parent: ", &c.pexe)),
            Line::from(exe("grandparent: ", &c.gpexe)),
        ];
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }).block(panel(" Selected connection ".into(), false)), detail_area);
    }
}

fn status_line(app: &TuiApp, f: &mut Frame, area: Rect) {
    let h = &app.history;
    if let Some(input) = &app.find_input {
        f.render_widget(Paragraph::new(format!("/{input}_  (Enter keeps, Esc clears)")), area);
        return;
    }
    if let Some((note, _)) = &app.note {
        f.render_widget(Paragraph::new(note.clone()).style(Style::new().add_modifier(Modifier::BOLD)), area);
        return;
    }
    if h.view_def().kind == ViewKind::Live {
        let style = if matches!(app.live.feed, crate::live::FeedState::Down { .. }) { problem_style() } else { Style::new() };
        f.render_widget(Paragraph::new(app.live.feed_line()).style(style), area);
        return;
    }
    let text = match &h.state {
        QueryState::Loading => "loading...".to_string(),
        QueryState::Problem(_) => format!("database {}", app.database.display()),
        QueryState::Ready(elapsed) => {
            let (send, recv, events) = match &h.loaded {
                Loaded::Rows(_) => h.rows().iter().fold((0, 0, 0), |a, r| (a.0 + r.send, a.1 + r.recv, a.2 + r.events)),
                Loaded::Connections(_) => h.connections().iter().fold((0, 0, 0), |a, c| (a.0 + c.send, a.1 + c.recv, a.2 + c.events)),
                Loaded::Nothing => (0, 0, 0),
            };
            let find = if h.find.is_empty() { String::new() } else { format!(" | find \"{}\"", h.find) };
            let sel = h.table.selected().map_or(0, |i| i + 1).min(h.shown_len());
            format!(
                "row {sel}/{} | {} connections | sent {} | received {}{find} | {} ms",
                count(h.shown_len() as i64),
                count(events),
                h.units.bytes(send),
                h.units.bytes(recv),
                elapsed.as_millis()
            )
        }
    };
    f.render_widget(Paragraph::new(text), area);
}
