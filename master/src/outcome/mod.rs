//! The outcome of a run: the whole `stampede.summary.v1` schema in one place (the top level,
//! the figures of a group of requests, the series, the phases and failure reasons, the capacity and cost sections, threshold
//! outcomes), how it is written and read, and what is judged on it alone (thresholds, cost, the
//! comparison to the baseline arch). Views, reports and anything reading a summary file use
//! these types; nothing here knows how the figures were counted.
//!
//! May import: `scenario` (the specs the sections echo). Nothing else of the crate.

mod baseline;
pub mod batch;
mod capacity;
pub mod confidence;
mod cost;
pub mod diff;
mod file;
pub mod hdr;
mod intervals;
mod judge;
mod phases;
mod pricing;
pub mod rule;
mod schema;
mod series;
mod summary;
mod thresholds;

pub use baseline::{PREFERRED_BASELINE, baseline};
pub use capacity::{
    ArchCapacity, CapacityComparison, CapacityReport, End, KneeUncertainty, Phase, Spread, Step,
};
pub use cost::{ArchCost, Basis, CostReport};
pub use file::{with_suffix, write_atomically};
pub use judge::{judge_all, measured};
pub use phases::{FailureRow, PHASES, PhaseFigures, PhasesMs};
pub use pricing::evaluate as cost_of;
pub use schema::{schema, schema_text};
pub use series::{ArchPoint, SeriesPoint};
pub use summary::*;
pub use thresholds::Outcome;
