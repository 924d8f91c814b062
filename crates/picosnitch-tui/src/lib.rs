//! `picosnitch top` and `picosnitch tui`.
//!
//! The CLI calls [`top::run`] and [`tui::run`]. Everything they draw comes from plain
//! state ([`top::TopApp`], [`tui::TuiApp`]) fed by messages (live feed updates, query
//! results, keys, clock ticks), so tests drive the same code without a terminal,
//! a daemon or root, and render it to a test backend.
pub mod error;
pub mod event_loop;
pub mod format;
pub mod history;
pub mod keys;
pub mod live;
pub mod terminal;
pub mod top;
pub mod tui;
pub mod widgets;

pub use error::TuiError;
pub use top::TopOptions;
pub use tui::TuiOptions;
