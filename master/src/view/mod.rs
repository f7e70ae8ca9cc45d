//! Live views of a run: the terminal UI (`tui/`), the headless status printer (`headless`)
//! and the Prometheus endpoint (`metrics`), all fed the same [`Snapshot`] (`snapshot`) and the
//! final summary; the keys a view sends back are [`Command`]s (`command`).
//!
//! May import: `outcome` (the summary they finish with), `scenario`. Views never see the
//! controller or the aggregator.

mod command;
mod families;
pub mod headless;
pub mod metrics;
mod phase_metrics;
mod snapshot;
pub mod tui;

pub use command::Command;
pub use headless::Headless;
pub use metrics::Metrics;
pub use snapshot::{PhaseRow, Ratio, Row, Snapshot, WorkerRow};
pub use tui::Tui;

use tokio::sync::mpsc;

use crate::outcome::Summary;

/// A live view of a run.
pub trait View: Send {
    /// Called with a fresh snapshot about once per report interval. Must not block: the
    /// controller ingests reports on the same task.
    fn update(&mut self, snapshot: &Snapshot);
    /// Called once with the final summary.
    fn finish(&mut self, summary: &Summary);
    /// The commands this view sends (keys in the TUI), taken once by the controller.
    fn commands(&mut self) -> Option<mpsc::Receiver<Command>> {
        None
    }
}

/// Several views of one run, each given every snapshot (e.g. the terminal and `/metrics`).
pub struct Tee(pub Vec<Box<dyn View>>);

impl View for Tee {
    fn update(&mut self, snapshot: &Snapshot) {
        for view in &mut self.0 {
            view.update(snapshot);
        }
    }

    fn finish(&mut self, summary: &Summary) {
        for view in &mut self.0 {
            view.finish(summary);
        }
    }

    /// The commands of the first view that sends any (only the terminal does).
    fn commands(&mut self) -> Option<mpsc::Receiver<Command>> {
        self.0.iter_mut().find_map(|v| v.commands())
    }
}
