//! One run, from the first worker to the summary. The controller (`controller`) is the loop:
//! events in, decisions out. The fleet (`fleet`, over the `registry`) is who is in the run and
//! what each was told; the pacing (`pacing`, walking the plan with `cursor`, sharing levels out
//! with `dispatch`, or following a `capacity` search) is what load is due; `show` builds the
//! views' snapshots.
//!
//! May import: `stats`, `wire`, `outcome`, `view` (the View trait and snapshot), `scenario`.
//! Nothing here knows about the command line.

mod backlog;
mod capacity;
mod controller;
mod cursor;
mod dispatch;
mod fleet;
mod journaling;
mod pacing;
mod registry;
mod resume;
mod show;

pub use controller::{Controller, Finished, RunSettings};
pub use resume::{newest_unfinished, recover};
