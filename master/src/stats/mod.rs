//! Counting: a tally of requests (counts by outcome and one latency histogram), a report's
//! histograms as their non-empty buckets, the decoded interval report, phases and failure
//! reasons, the aggregator that
//! merges reports exactly once into cumulative tallies and the per-interval series, and the
//! summary built from it.
//!
//! May import: `outcome` (the series and result types it produces), `scenario`.

mod aggregate;
mod dense;
mod latencies;
mod phases;
mod report;
mod summary;
mod tally;

pub use aggregate::{Aggregator, Ingested, TargetInfo};
pub use dense::Dense;
pub use latencies::{COUNTS_LEN, Decoder, Latencies, LatenciesError};
pub use phases::{PhaseBook, PhaseSeries, PhaseSet, ReasonCount, figures, kind_name};
pub use report::{Report, Series};
pub use summary::{RunFacts, fails_now, summary};
pub use tally::{Class, Tally, max_ms, quantile_ms};
