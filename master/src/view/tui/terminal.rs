//! The terminal while the live view owns it (raw mode, the alternate screen, no log lines
//! written over it), and giving it back on every way out: a normal end, a panic (a hook), a
//! second Ctrl-C, `q` or signal (callers run [`restore`] before they exit).

use std::io::{self, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

pub type Screen = Terminal<CrosstermBackend<Stdout>>;

/// Whether the terminal is ours (raw mode, alternate screen).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Warnings and errors logged while the terminal is ours; `None` when logs go to stderr.
static HELD_LOGS: Mutex<Option<Vec<u8>>> = Mutex::new(None);
/// At most this much held log text; beyond it, lines are dropped.
const HELD_LOGS_MAX: usize = 256 * 1024;

/// Restores the terminal when dropped.
pub struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Takes over the terminal. Dropping the guard, or [`restore`], gives it back.
pub fn enter() -> io::Result<(Screen, Guard)> {
    install_panic_hook();
    *held_logs() = Some(Vec::new());
    ACTIVE.store(true, Ordering::SeqCst);
    // From here on any failure restores what was done through the guard.
    let guard = Guard(());
    enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, Hide)?;
    let screen = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    Ok((screen, guard))
}

/// Gives the terminal back and prints the warnings held meanwhile. Does nothing when the
/// terminal is not ours, so every exit path may call it.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
    if let Some(held) = held_logs().take() {
        let mut err = io::stderr();
        let _ = err.write_all(&held);
        let _ = err.flush();
    }
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The panic message must land on a usable terminal.
            restore();
            previous(info);
        }));
    });
}

fn held_logs() -> MutexGuard<'static, Option<Vec<u8>>> {
    HELD_LOGS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The log writer: stderr, except while the live view owns the terminal, when warnings and
/// errors are held until it is restored and the rest is dropped (the view shows what matters,
/// and text written over the screen would garble it).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

/// One log record on its way out.
pub struct LogSink {
    keep: bool,
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        LogSink { keep: true }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LogSink {
        LogSink {
            keep: *meta.level() <= Level::WARN,
        }
    }
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut held = held_logs();
        match held.as_mut() {
            Some(h) => {
                if self.keep && h.len() + buf.len() <= HELD_LOGS_MAX {
                    h.extend_from_slice(buf);
                }
                Ok(buf.len())
            }
            None => {
                drop(held);
                io::stderr().write(buf)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_logs_keep_warnings_only_and_stay_bounded() {
        // The only test touching the held logs; no test takes the terminal.
        *held_logs() = Some(Vec::new());
        LogSink { keep: true }
            .write_all(b"WARN lost a worker\n")
            .unwrap();
        LogSink { keep: false }.write_all(b"INFO joined\n").unwrap();
        let big = vec![b'x'; HELD_LOGS_MAX];
        LogSink { keep: true }.write_all(&big).unwrap();
        let held = held_logs().take().unwrap();
        assert_eq!(held, b"WARN lost a worker\n");
    }
}
