//! The two ways a run is shown: both read the same [`Snapshot`].

use crate::snapshot::Snapshot;
use crate::summary::Summary;

/// A live view of a run.
pub trait View: Send {
    /// Called with a fresh snapshot about once per report interval.
    fn update(&mut self, snapshot: &Snapshot);
    /// Called once with the final summary.
    fn finish(&mut self, summary: &Summary);
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
}
