//! The loop shared by `top` and `tui`: terminal input, messages from the feed and
//! query threads, a clock tick, and drawing when something changed.
use crate::error::TuiError;
use crate::history::worker::{HistoryReply, HistoryRequest, Worker};
use crate::keys::Key;
use crate::live::source::FeedEvent;
use crate::terminal::TerminalGuard;
use ratatui::crossterm::event::{self, Event};
use ratatui::Frame;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the background threads tell the UI.
#[derive(Debug)]
pub enum Msg {
    Feed(FeedEvent),
    History(HistoryReply),
    /// A terminal event, from the input thread.
    Input(Event),
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
/// How often the input thread looks whether the UI has finished.
const INPUT_POLL: Duration = Duration::from_millis(100);

/// Reads terminal events into `tx` until `done`. On its own thread because crossterm's
/// reader spins without returning once the terminal hangs up; the loop must still see
/// SIGHUP and finish. On a live terminal it stops within INPUT_POLL of `done`, so no
/// key typed after the UI ends is taken from the caller.
fn spawn_input(tx: SyncSender<Msg>, done: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            match event::poll(INPUT_POLL) {
                Ok(false) => {}
                Ok(true) => match event::read() {
                    Ok(e) => {
                        if tx.send(Msg::Input(e)).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Err(_) => return,
            }
        }
    });
}

pub fn run<A: App>(
    app: &mut A,
    guard: &mut TerminalGuard,
    rx: &Receiver<Msg>,
    tx: SyncSender<Msg>,
    worker: Option<&Worker>,
    first: Vec<Effect>,
) -> Result<(), TuiError> {
    let done = Arc::new(AtomicBool::new(false));
    spawn_input(tx, done.clone());
    let result = drive(app, guard, rx, worker, first);
    done.store(true, Ordering::Relaxed);
    result
}

fn drive<A: App>(app: &mut A, guard: &mut TerminalGuard, rx: &Receiver<Msg>, worker: Option<&Worker>, first: Vec<Effect>) -> Result<(), TuiError> {
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
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            dispatch(app.on_tick(unix_now()));
            dirty = true;
        }
        if dirty {
            guard.terminal.draw(|f| app.render(f)).map_err(draw_error)?;
            dirty = false;
        }
        let wait = TICK.saturating_sub(last_tick.elapsed()).max(Duration::from_millis(1));
        let first = match rx.recv_timeout(wait) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        // Take what else is waiting before drawing (bounded, so a flood of feed
        // updates cannot starve keys and drawing).
        let pending = std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())).take(5_000);
        for msg in pending {
            match msg {
                Msg::Input(Event::Key(k)) => {
                    if let Some(key) = Key::from_event(k) {
                        dispatch(app.on_key(key));
                    }
                }
                Msg::Input(Event::Resize(..)) => guard.terminal.autoresize().map_err(draw_error)?,
                Msg::Input(_) => {}
                other => dispatch(app.on_msg(other)),
            }
            dirty = true;
            if app.wants_quit() {
                return Ok(());
            }
        }
    }
}
