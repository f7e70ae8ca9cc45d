//! The run's journal (`STATE_DIR/RUN_ID.journal`): what the master needs to rebuild a run,
//! appended as it counts: the run's start and scenario, each worker's join and departure, each
//! batch of counted reports merged by key (`batch`), and the plan's position. Records are
//! framed and checksummed (`frame`), protobuf inside (`record`); the master writes a batch
//! before it acknowledges the reports in it (`writer`), so a report is either in the journal or
//! still held by its worker. `replay` reads it back for `recover` and `run --resume`.
//!
//! May import: `stats`, `outcome`, `scenario`.

mod batch;
mod frame;
pub mod record;
mod replay;
mod writer;

pub use batch::Batch;
pub use replay::{Journal, read, source_of};
pub use writer::Writer;
