//! Pieces both UIs draw: bars, message boxes, the help screen, the too-small notice.
use crate::keys::Key;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// picosnitch 2.x's colours: white on magenta bars, cyan selection.
pub fn bar_style() -> Style {
    Style::new().fg(Color::White).bg(Color::Magenta).add_modifier(Modifier::BOLD)
}

pub fn selected_style(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::White).bg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }
}

pub fn header_style() -> Style {
    Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
}

pub fn problem_style() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

pub fn panel(title: String, focused: bool) -> Block<'static> {
    let b = Block::new().borders(Borders::ALL).title(title);
    if focused {
        b.border_type(BorderType::Thick).border_style(Style::new().fg(Color::Cyan))
    } else {
        b
    }
}

/// A bar with text on the left and a hint on the right, across `area`.
pub fn bar(f: &mut Frame, area: Rect, left: Vec<Span<'static>>, right: &str) {
    f.render_widget(Block::new().style(bar_style()), area);
    let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(right.chars().count() as u16 + 1)]).areas(area);
    f.render_widget(Paragraph::new(Line::from(left)), l);
    f.render_widget(Paragraph::new(right.to_string()).alignment(Alignment::Right), r);
}

/// A centred box with a title and wrapped text, for conditions the user can fix.
pub fn message_box(f: &mut Frame, area: Rect, title: &str, text: &str, style: Style) {
    let width = area.width.saturating_sub(4).clamp(20, 76).min(area.width);
    let inner_width = width.saturating_sub(4).max(1) as usize;
    let lines: u16 = text.split('\n').map(|p| (p.chars().count().max(1)).div_ceil(inner_width) as u16).sum();
    let height = (lines + 2).min(area.height);
    let x = area.x + (area.width - width) / 2;
    let y = area.y + (area.height - height) / 2;
    let r = Rect { x, y, width, height };
    f.render_widget(Clear, r);
    let block = Block::new().borders(Borders::ALL).title(format!(" {title} ")).border_style(style).padding(ratatui::widgets::Padding::horizontal(1));
    f.render_widget(Paragraph::new(text.to_string()).wrap(Wrap { trim: true }).block(block), r);
}

/// Shown instead of the UI when the terminal cannot hold it.
pub fn too_small(f: &mut Frame, program: &str, need: (u16, u16)) {
    let a = f.area();
    let text = format!("Terminal too small: {}x{}; {program} needs at least {}x{}. Enlarge it, or press q to quit.", a.width, a.height, need.0, need.1);
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).style(problem_style()), a);
}

/// The help screen: every key of a table, and what it does; in two columns when the
/// terminal is wide, scrolled by `scroll` lines when it is short. Returns the largest
/// useful scroll.
/// Whether the key table is shown, and how far it is scrolled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HelpScreen {
    pub open: bool,
    pub scroll: usize,
    /// The furthest scroll that still shows rows, learned when it was last drawn.
    pub max: usize,
}

impl HelpScreen {
    /// A key pressed while the help is open: arrows scroll, any other key closes it.
    pub fn on_key(&mut self, key: Key) {
        match key {
            Key::Up => self.scroll = self.scroll.saturating_sub(1),
            Key::Down => self.scroll = (self.scroll + 1).min(self.max),
            _ => *self = HelpScreen { max: self.max, ..HelpScreen::default() },
        }
    }

    /// Draws the key table over `area` when open; true if it did.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, title: &str, rows: &[(String, &'static str)]) -> bool {
        if self.open {
            self.max = help(f, area, title, rows, self.scroll);
        }
        self.open
    }
}

pub fn help(f: &mut Frame, area: Rect, title: &str, rows: &[(String, &'static str)], scroll: usize) -> usize {
    f.render_widget(Clear, area);
    let key_width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(4) as u16;
    let help_width = rows.iter().map(|(_, h)| h.chars().count()).max().unwrap_or(10) as u16;
    let inner = area.height.saturating_sub(2) as usize;
    let columns = if rows.len() > inner && area.width >= 2 * (key_width + help_width + 5) { 2 } else { 1 };
    let per_column = rows.len().div_ceil(columns);
    let max_scroll = per_column.saturating_sub(inner);
    let scroll = scroll.min(max_scroll);
    let footer = if max_scroll > 0 { " Up/Down scroll, any other key closes " } else { " any key closes " };
    let block = Block::new().borders(Borders::ALL).title(format!(" {title} ")).title_bottom(footer);
    let inside = block.inner(area);
    f.render_widget(block, area);
    let parts = Layout::horizontal(vec![Constraint::Fill(1); columns]).split(inside);
    for (c, part) in parts.iter().enumerate() {
        let chunk = rows.iter().skip(c * per_column).take(per_column).skip(scroll);
        let table = Table::new(chunk.map(|(k, h)| Row::new([k.clone(), (*h).to_string()])), [Constraint::Length(key_width), Constraint::Fill(1)]).column_spacing(3);
        f.render_widget(table, *part);
    }
    max_scroll
}

/// A table cell aligned right, for numbers.
pub fn num(text: String) -> ratatui::widgets::Cell<'static> {
    ratatui::widgets::Cell::from(Line::from(text).alignment(Alignment::Right))
}

/// "1 row", "2 rows".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", crate::format::count(n as i64), if n == 1 { one } else { many })
}
