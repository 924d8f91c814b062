//! Key bindings as data: each app dispatches through its table and the help screen is
//! printed from the same table, so help lists exactly the keys that work.
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// A key as the tables name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Backspace,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Esc,
    CtrlC,
}

impl Key {
    /// The key a terminal event stands for; `None` for releases and unbound keys.
    pub fn from_event(e: KeyEvent) -> Option<Key> {
        if e.kind == KeyEventKind::Release {
            return None;
        }
        Some(match e.code {
            KeyCode::Char('c') if e.modifiers.contains(KeyModifiers::CONTROL) => Key::CtrlC,
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::Enter => Key::Enter,
            KeyCode::Backspace => Key::Backspace,
            KeyCode::Tab => Key::Tab,
            KeyCode::BackTab => Key::BackTab,
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            KeyCode::Left => Key::Left,
            KeyCode::Right => Key::Right,
            KeyCode::PageUp => Key::PageUp,
            KeyCode::PageDown => Key::PageDown,
            KeyCode::Home => Key::Home,
            KeyCode::End => Key::End,
            KeyCode::Esc => Key::Esc,
            _ => return None,
        })
    }

    pub fn label(self) -> String {
        match self {
            Key::Char(' ') => "Space".into(),
            Key::Char(c) => c.to_string(),
            Key::Enter => "Enter".into(),
            Key::Backspace => "Backspace".into(),
            Key::Tab => "Tab".into(),
            Key::BackTab => "Shift-Tab".into(),
            Key::Up => "Up".into(),
            Key::Down => "Down".into(),
            Key::Left => "Left".into(),
            Key::Right => "Right".into(),
            Key::PageUp => "PgUp".into(),
            Key::PageDown => "PgDn".into(),
            Key::Home => "Home".into(),
            Key::End => "End".into(),
            Key::Esc => "Esc".into(),
            Key::CtrlC => "Ctrl-C".into(),
        }
    }
}

pub struct Binding<A> {
    pub keys: &'static [Key],
    pub action: A,
    pub help: &'static str,
}

pub fn lookup<A: Copy>(table: &[Binding<A>], key: Key) -> Option<A> {
    table.iter().find(|b| b.keys.contains(&key)).map(|b| b.action)
}

/// "f / Enter" for a binding's keys.
pub fn keys_label<A>(b: &Binding<A>) -> String {
    b.keys.iter().map(|k| k.label()).collect::<Vec<_>>().join(" / ")
}

/// The key event for `key`, for tests and the dev binary's scripted input.
pub fn event(key: Key) -> KeyEvent {
    let code = match key {
        Key::Char(c) => KeyCode::Char(c),
        Key::Enter => KeyCode::Enter,
        Key::Backspace => KeyCode::Backspace,
        Key::Tab => KeyCode::Tab,
        Key::BackTab => KeyCode::BackTab,
        Key::Up => KeyCode::Up,
        Key::Down => KeyCode::Down,
        Key::Left => KeyCode::Left,
        Key::Right => KeyCode::Right,
        Key::PageUp => KeyCode::PageUp,
        Key::PageDown => KeyCode::PageDown,
        Key::Home => KeyCode::Home,
        Key::End => KeyCode::End,
        Key::Esc => KeyCode::Esc,
        Key::CtrlC => return KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    };
    KeyEvent::new(code, KeyModifiers::NONE)
}
