//! The loop shared by `top` and `tui`: terminal input, messages from the feed and
//! query threads, a clock tick, and drawing when something changed.
use crate::error::TuiError;
use crate::history::worker::{HistoryReply, HistoryRequest, Worker};
use crate::keys::Key;
use crate::live::source::FeedEvent;
use crate::terminal::TerminalGuard;
use ratatui::crossterm::event::{self, Event};
use ratatui::Frame;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// What the background threads tell the UI.
#[derive(Debug)]
pub enum Msg {
    Feed(FeedEvent),
    History(HistoryReply),
}

/// What the UI asks the background to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Query(u64, HistoryRequest),
}

/// An application the loop drives. Every method is plain state change, so tests call
/// them directly and render to a test backend.
pub trait App {
    fn on_key(&mut self, key: Key) -> Vec<Effect>;
    fn on_msg(&mut self, msg: Msg) -> Vec<Effect>;
    /// Called about four times a second with the current unix time.
    fn on_tick(&mut self, now: f64) -> Vec<Effect>;
    fn render(&mut self, frame: &mut Frame);
    fn wants_quit(&self) -> bool;
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

const TICK: Duration = Duration::from_millis(250);
/// The longest the loop waits for input before looking at messages again.
const POLL: Duration = Duration::from_millis(40);

pub fn run<A: App>(app: &mut A, guard: &mut TerminalGuard, rx: &Receiver<Msg>, worker: Option<&Worker>, first: Vec<Effect>) -> Result<(), TuiError> {
    let dispatch = |effects: Vec<Effect>| {
        for e in effects {
            match (e, worker) {
                (Effect::Query(generation, request), Some(w)) => w.submit(generation, request),
                (Effect::Query(..), None) => {}
            }
        }
    };
    dispatch(first);
    dispatch(app.on_tick(unix_now()));
    let mut dirty = true;
    let mut last_tick = Instant::now();
    let draw_error = |source| TuiError::Terminal { step: "drawing", source };
    loop {
        if guard.stopped() || app.wants_quit() {
            return Ok(());
        }
        // Bounded, so a flood of feed updates cannot starve input and drawing.
        for _ in 0..5_000 {
            match rx.try_recv() {
                Ok(msg) => {
                    dispatch(app.on_msg(msg));
                    dirty = true;
                }
                Err(_) => break,
            }
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            dispatch(app.on_tick(unix_now()));
            dirty = true;
        }
        if dirty {
            guard.terminal.draw(|f| app.render(f)).map_err(draw_error)?;
            dirty = false;
        }
        if event::poll(POLL).map_err(|source| TuiError::Terminal { step: "reading input", source })? {
            match event::read().map_err(|source| TuiError::Terminal { step: "reading input", source })? {
                Event::Key(k) => {
                    if let Some(key) = Key::from_event(k) {
                        dispatch(app.on_key(key));
                        dirty = true;
                    }
                }
                Event::Resize(..) => {
                    guard.terminal.autoresize().map_err(draw_error)?;
                    dirty = true;
                }
                _ => {}
            }
        }
    }
}
