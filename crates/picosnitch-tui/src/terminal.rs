//! The real terminal: raw mode and the alternate screen on the way in, and back to
//! normal on every way out (return, error, panic, SIGTERM/SIGHUP/SIGINT).
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use std::io::Stdout;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use crate::error::TuiError;

/// Whether this process has the terminal in raw mode on the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Leaves raw mode and the alternate screen. Only the first call after entering acts:
/// leaving the alternate screen twice would move the cursor back over what was printed
/// since (the panic hook and the guard both restore).
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(std::io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    }
}

static PANIC_HOOK: Once = Once::new();

/// Restores the terminal before the panic message prints, so the message is readable
/// and the shell usable. Installed once per process, chaining the previous hook.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Owns the terminal while a UI runs; dropping it restores the terminal.
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
    /// Set by SIGTERM, SIGHUP or SIGINT: the loop quits and the guard restores.
    pub stop: Arc<AtomicBool>,
    signals: Vec<signal_hook::SigId>,
}

impl TerminalGuard {
    pub fn enter() -> Result<TerminalGuard, TuiError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut signals = Vec::new();
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP, signal_hook::consts::SIGINT] {
            match signal_hook::flag::register(signal, stop.clone()) {
                Ok(id) => signals.push(id),
                Err(source) => {
                    for id in signals {
                        signal_hook::low_level::unregister(id);
                    }
                    return Err(TuiError::Terminal { step: "installing signal handlers", source });
                }
            }
        }
        install_panic_hook();
        let fail = |signals: Vec<signal_hook::SigId>, step, source| {
            restore();
            for id in signals {
                signal_hook::low_level::unregister(id);
            }
            TuiError::Terminal { step, source }
        };
        ACTIVE.store(true, Ordering::SeqCst);
        if let Err(source) = terminal::enable_raw_mode() {
            return Err(fail(signals, "entering raw mode (is this a terminal?)", source));
        }
        if let Err(source) = execute!(std::io::stdout(), terminal::EnterAlternateScreen, cursor::Hide) {
            return Err(fail(signals, "switching to the alternate screen", source));
        }
        match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
            Ok(terminal) => Ok(TerminalGuard { terminal, stop, signals }),
            Err(source) => Err(fail(signals, "opening the terminal", source)),
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
        // The flags go; signal-hook keeps its (now empty) handler installed, so a caller
        // that goes on running after the UI should exit on these signals by itself.
        for id in self.signals.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
