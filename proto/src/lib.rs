//! The gRPC contract between the stampede master and its workers.
//!
//! One bidirectional stream per worker (`Coordinator/Session`) carries hello, heartbeats,
//! interval reports and goodbyes upstream, and run configuration, load targets, stop, quit and
//! acknowledgements downstream.
#![forbid(unsafe_code)]

/// Bumped on any change a peer of the previous version would misread. 2: fixed-count stages
/// (`SetLoad.stage`, `TargetLoad.counted`, `Report.completed_stage`), which a version-1 worker
/// would run without their count. 3: per-target TLS, HTTP version and `connect_to`
/// (`Target.tls`, `http`, `connect_to`, ...): a version-2 worker would ignore them and run
/// `http = "2"` as HTTP/1.1, or send the load to whatever the URL's host resolves to instead of
/// the pinned addresses; and `OUTCOME_ERROR_TLS`, which a version-2 master cannot count.
pub const PROTOCOL_VERSION: u32 = 3;

/// Metadata key carrying the shared token on the `Session` call.
pub const TOKEN_METADATA_KEY: &str = "authorization";

/// The default gRPC port (Locust's).
pub const DEFAULT_PORT: u16 = 5557;

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("stampede.v1");
}

pub use v1::*;

/// Latency histograms: microseconds from 1 µs to one hour at 3 significant figures. Every
/// histogram on both sides uses these bounds, so merging serialized intervals is exact.
pub mod hdr {
    /// Lowest discernible value, µs.
    pub const LOWEST_US: u64 = 1;
    /// Highest trackable value, µs (one hour); larger values are clamped to it.
    pub const HIGHEST_US: u64 = 3_600_000_000;
    /// Significant figures kept.
    pub const SIGFIG: u8 = 3;

    /// An empty latency histogram with these bounds: the one constructor both sides use, so
    /// every histogram of a run merges exactly with every other.
    pub fn new_histogram() -> hdrhistogram::Histogram<u64> {
        // The bounds are constants that satisfy hdrhistogram's preconditions (low >= 1,
        // high >= 2 * low, sigfig <= 5), so this cannot fail.
        hdrhistogram::Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG)
            .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"))
    }
}
