//! What the journal holds, record by record (protobuf through prost: compact, and a field
//! added later is skipped by an older reader). A run's journal is one `Start`, then joins,
//! departures, batches of counted reports and the plan's position as they happen, and an `End`
//! when the run finished.

use prost::{Message, Oneof};

#[derive(Clone, PartialEq, Message)]
pub struct Record {
    #[prost(oneof = "Entry", tags = "1, 2, 3, 4, 5, 6")]
    pub entry: Option<Entry>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum Entry {
    #[prost(message, tag = "1")]
    Start(Start),
    #[prost(message, tag = "2")]
    Joined(Joined),
    #[prost(message, tag = "3")]
    Left(Left),
    #[prost(message, tag = "4")]
    Batch(Batch),
    #[prost(message, tag = "5")]
    Progress(Progress),
    #[prost(message, tag = "6")]
    End(End),
}

/// The run: its id, when it started, and the scenario as run.
#[derive(Clone, PartialEq, Message)]
pub struct Start {
    #[prost(string, tag = "1")]
    pub run_id: String,
    /// Wall clock of the run's start, ms since the Unix epoch.
    #[prost(uint64, tag = "2")]
    pub started_unix_ms: u64,
    /// The scenario as run, secrets redacted (JSON of the scenario file).
    #[prost(string, tag = "3")]
    pub scenario_json: String,
    /// Checksum of the configuration workers receive: a resumed run must send the same.
    #[prost(uint32, tag = "4")]
    pub config_crc: u32,
}

/// A worker process joined the run.
#[derive(Clone, PartialEq, Message)]
pub struct Joined {
    #[prost(string, tag = "1")]
    pub worker: String,
    #[prost(string, tag = "2")]
    pub instance: String,
    #[prost(string, tag = "3")]
    pub hostname: String,
    #[prost(string, tag = "4")]
    pub arch: String,
    /// Run time of the join, ms.
    #[prost(uint64, tag = "5")]
    pub at_ms: u64,
    /// Run time at which it started its part of the run (its reports count from there).
    #[prost(uint64, optional, tag = "6")]
    pub started_ms: Option<u64>,
}

/// A worker process left the run.
#[derive(Clone, PartialEq, Message)]
pub struct Left {
    #[prost(string, tag = "1")]
    pub worker: String,
    #[prost(string, tag = "2")]
    pub instance: String,
    #[prost(uint64, tag = "3")]
    pub at_ms: u64,
    #[prost(string, tag = "4")]
    pub reason: String,
}

/// The reports counted since the last batch, merged by key: what they add to every total, and
/// to the intervals they fell in.
#[derive(Clone, PartialEq, Message)]
pub struct Batch {
    /// Run time when the batch was written, ms.
    #[prost(uint64, tag = "1")]
    pub at_ms: u64,
    #[prost(message, repeated, tag = "2")]
    pub counted: Vec<Counted>,
    #[prost(message, repeated, tag = "3")]
    pub cells: Vec<Cell>,
    #[prost(uint64, tag = "4")]
    pub dropped: u64,
    /// Open model send lag: bucket indexes and their counts.
    #[prost(message, optional, tag = "5")]
    pub send_lag: Option<Buckets>,
    /// Phases per (target, arch, phase); absent from journals older than phases, which
    /// replay with none.
    #[prost(message, repeated, tag = "6")]
    pub phases: Vec<PhaseCell>,
    /// Failed requests per (target, outcome, reason).
    #[prost(message, repeated, tag = "7")]
    pub reasons: Vec<ReasonCell>,
}

/// One phase's latencies of one (target, arch) over the batch (phases are not in the series,
/// so no interval).
#[derive(Clone, PartialEq, Message)]
pub struct PhaseCell {
    #[prost(uint32, tag = "1")]
    pub target: u32,
    #[prost(string, tag = "2")]
    pub arch: String,
    /// Index into `outcome::PHASES`.
    #[prost(uint32, tag = "3")]
    pub phase: u32,
    #[prost(message, optional, tag = "4")]
    pub latency: Option<Buckets>,
}

/// Failed requests of one (target, outcome) for one reason over the batch.
#[derive(Clone, PartialEq, Message)]
pub struct ReasonCell {
    #[prost(uint32, tag = "1")]
    pub target: u32,
    /// The wire outcome (`stampede_proto::Outcome`).
    #[prost(int32, tag = "2")]
    pub outcome: i32,
    #[prost(string, tag = "3")]
    pub reason: String,
    #[prost(uint64, tag = "4")]
    pub count: u64,
}

/// One counted report: who sent it, its number, its interval.
#[derive(Clone, PartialEq, Message)]
pub struct Counted {
    /// `worker@instance`: the worker process, as the aggregator tells them apart.
    #[prost(string, tag = "1")]
    pub source: String,
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    /// Its series interval; 0: it came after the interval had closed.
    #[prost(uint64, tag = "3")]
    pub bucket: u64,
    #[prost(uint32, tag = "4")]
    pub users: u32,
}

/// The requests of one (interval, target, arch, request, outcome, expected) key.
#[derive(Clone, PartialEq, Message)]
pub struct Cell {
    /// 0: counted late (totals only).
    #[prost(uint64, tag = "1")]
    pub bucket: u64,
    #[prost(uint32, tag = "2")]
    pub target: u32,
    #[prost(string, tag = "3")]
    pub arch: String,
    #[prost(uint32, tag = "4")]
    pub request: u32,
    /// The wire outcome (`stampede_proto::Outcome`).
    #[prost(int32, tag = "5")]
    pub outcome: i32,
    #[prost(bool, tag = "6")]
    pub unexpected: bool,
    #[prost(uint64, tag = "7")]
    pub count: u64,
    #[prost(message, optional, tag = "8")]
    pub latency: Option<Buckets>,
}

/// A histogram's non-empty buckets: index steps from the previous one, and counts.
#[derive(Clone, PartialEq, Message)]
pub struct Buckets {
    #[prost(uint32, repeated, tag = "1")]
    pub steps: Vec<u32>,
    #[prost(uint64, repeated, tag = "2")]
    pub counts: Vec<u64>,
}

/// Where the plan is (and the capacity search, if any), as JSON of the pacing's state.
#[derive(Clone, PartialEq, Message)]
pub struct Progress {
    #[prost(uint64, tag = "1")]
    pub at_ms: u64,
    #[prost(string, tag = "2")]
    pub pacing_json: String,
    /// The master's outages so far (a resumed run's gaps), run time in ms.
    #[prost(message, repeated, tag = "3")]
    pub outages: Vec<Outage>,
}

/// A time no master ran, run time in ms.
#[derive(Clone, PartialEq, Message)]
pub struct Outage {
    #[prost(uint64, tag = "1")]
    pub from_ms: u64,
    #[prost(uint64, tag = "2")]
    pub to_ms: u64,
}

/// The run finished (its summary was written).
#[derive(Clone, PartialEq, Message)]
pub struct End {
    #[prost(uint64, tag = "1")]
    pub at_ms: u64,
    /// Run time under load (the summary's duration): up to the stop, outages left out.
    #[prost(uint64, tag = "2")]
    pub load_ms: u64,
}

impl Buckets {
    pub fn of(pairs: &[(u32, u64)]) -> Buckets {
        let mut previous = 0;
        let mut steps = Vec::with_capacity(pairs.len());
        for &(index, _) in pairs {
            steps.push(index.saturating_sub(previous));
            previous = index;
        }
        Buckets {
            steps,
            counts: pairs.iter().map(|&(_, c)| c).collect(),
        }
    }

    pub fn pairs(&self) -> Vec<(u32, u64)> {
        let mut index = 0u32;
        self.steps
            .iter()
            .zip(&self.counts)
            .map(|(&step, &count)| {
                index = index.saturating_add(step);
                (index, count)
            })
            .collect()
    }
}
