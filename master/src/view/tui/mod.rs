//! The live terminal view (ratatui + crossterm): the second [`View`] beside the headless
//! printer, fed by the same snapshots. The controller hands each snapshot over a channel and
//! never waits; a thread of its own takes them all in (each brings the series points closed
//! since the last, and notices), draws at most every [`FRAME`] and reads keys, which go back
//! to the controller as [`Command`]s, or to the run's stop token for `q` (its quit token for a
//! second `q`).
//!
//! `render` draws (a pure function of state and snapshot), `state` holds what the view
//! remembers, `input` maps keys to actions, `terminal` takes and restores the terminal.

pub mod input;
pub mod render;
pub mod state;
pub mod terminal;

use std::io::{self, Stdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::View;
use super::command::Command;
use super::headless::Headless;
use super::snapshot::Snapshot;
use crate::outcome::Summary;

use state::{Effect, UiState};

/// At most four frames a second.
pub const FRAME: Duration = Duration::from_millis(250);
/// How often the loop looks for a new snapshot or the end when no key comes.
const POLL: Duration = Duration::from_millis(100);

pub struct Tui {
    snapshots: std_mpsc::Sender<Snapshot>,
    commands: Option<mpsc::Receiver<Command>>,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
    /// Prints status blocks instead if the drawing thread dies.
    fallback: Headless<Stdout>,
}

impl Tui {
    /// Takes over the terminal and starts drawing. `stop` is the run's graceful-stop token,
    /// `quit` the one that ends the process at once (a second `q`); `status_every` paces the
    /// plain printer used if drawing fails.
    pub fn start(
        stop: CancellationToken,
        quit: CancellationToken,
        status_every: Duration,
    ) -> io::Result<Tui> {
        let (screen, guard) = terminal::enter()?;
        let (snapshots, snapshot_rx) = std_mpsc::channel();
        let (command_tx, commands) = mpsc::channel(16);
        let closing = Arc::new(AtomicBool::new(false));
        let ui = Ui {
            snapshots: snapshot_rx,
            commands: command_tx,
            stop,
            quit,
            closing: closing.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("stampede-tui".into())
            .spawn(move || {
                let _guard = guard;
                ui.run(screen)
            })?;
        Ok(Tui {
            snapshots,
            commands: Some(commands),
            closing,
            thread: Some(thread),
            fallback: Headless::new(io::stdout(), status_every),
        })
    }

    /// Stops drawing and gives the terminal back.
    fn close(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("the terminal UI stopped: {e}"),
                // The panic hook has restored the terminal and printed the panic.
                Err(_) => {}
            }
        }
        terminal::restore();
    }

    fn drawing(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl View for Tui {
    fn update(&mut self, snapshot: &Snapshot) {
        if self.drawing() && self.snapshots.send(snapshot.clone()).is_ok() {
            return;
        }
        // The screen is gone (an I/O error or a panic): the run goes on, printed plainly.
        self.close();
        self.fallback.update(snapshot);
    }

    fn finish(&mut self, summary: &Summary) {
        self.close();
        // What the alternate screen showed disappears with it; the outcome stays on screen.
        self.fallback.finish(summary);
    }

    fn commands(&mut self) -> Option<mpsc::Receiver<Command>> {
        self.commands.take()
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.close();
    }
}

/// The drawing thread's side.
struct Ui {
    snapshots: std_mpsc::Receiver<Snapshot>,
    commands: mpsc::Sender<Command>,
    stop: CancellationToken,
    quit: CancellationToken,
    closing: Arc<AtomicBool>,
}

impl Ui {
    fn run(self, mut screen: terminal::Screen) -> io::Result<()> {
        let mut state = UiState::default();
        let mut snapshot = Snapshot::default();
        let mut dirty = true;
        let mut last_frame: Option<Instant> = None;
        while !self.closing.load(Ordering::SeqCst) {
            // Every snapshot is taken in (its points and notices); the last one is drawn.
            while let Ok(next) = self.snapshots.try_recv() {
                state.absorb(&next);
                snapshot = next;
                dirty = true;
            }
            if self.stop.is_cancelled() && !state.stopping {
                // A signal asked for the stop.
                state.stopping = true;
                dirty = true;
            }
            let next_frame =
                last_frame.map_or(Duration::ZERO, |t| FRAME.saturating_sub(t.elapsed()));
            if dirty && next_frame.is_zero() {
                screen.draw(|frame| render::draw(frame, &state, &snapshot))?;
                last_frame = Some(Instant::now());
                dirty = false;
            }
            let wait = if dirty { next_frame.min(POLL) } else { POLL };
            if event::poll(wait)? {
                dirty |= self.on_event(event::read()?, &mut state);
            }
        }
        Ok(())
    }

    /// Handles one terminal event; true when the screen must be redrawn.
    fn on_event(&self, event: Event, state: &mut UiState) -> bool {
        match event {
            Event::Key(key) => {
                let Some(action) = input::action_for(key) else {
                    return false;
                };
                match state.apply(action) {
                    Effect::Redraw => {}
                    Effect::Stop => self.stop.cancel(),
                    // The process's shutdown restores the terminal and exits.
                    Effect::Quit => self.quit.cancel(),
                    Effect::Send(cmd) => {
                        if self.commands.try_send(cmd).is_err() {
                            tracing::debug!(?cmd, "the controller is busy; key dropped");
                        }
                    }
                }
                true
            }
            Event::Resize(..) => true,
            _ => false,
        }
    }
}
