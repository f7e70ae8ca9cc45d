//! Exact aggregation of interval reports: cumulative tallies per (target, arch, request), the
//! per-interval time series per arch, and exactly-once counting by (run, worker, seq).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hdrhistogram::Histogram;
use stampede_proto::hdr::new_histogram;

use super::latencies::Latencies;
use super::phases::PhaseBook;
use super::report::Report;
use super::tally::{Class, Tally, quantile_ms};
use crate::outcome::{self, ArchPoint, SeriesPoint};

/// Most distinct arch labels one run accepts: they come from response headers.
pub const MAX_ARCHES: usize = 32;

/// A target as the aggregator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    pub name: String,
    pub arch: String,
}

/// Why a report was not counted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IngestError {
    #[error("report for run `{got}`, but the current run is `{want}`")]
    WrongRun { got: String, want: String },
    #[error("series names target {0}, which the run does not have")]
    UnknownTarget(u32),
    #[error("series names request {0}, which the run does not have")]
    UnknownRequest(u32),
    #[error("more than {MAX_ARCHES} distinct arch labels")]
    TooManyArches,
}

/// Whether an accepted report was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Counted, in the series interval `bucket` (`None`: it had closed; totals only).
    Counted { bucket: Option<u64> },
    /// Already counted (a resend); ignored.
    Duplicate,
}

/// Sequence numbers seen from one worker: everything up to `contiguous`, plus a sparse set above.
#[derive(Debug, Default)]
struct SeqTracker {
    contiguous: u64,
    above: BTreeSet<u64>,
}

/// Sequence numbers remembered above the contiguous run; beyond, the oldest gap is given up
/// (its report was lost), so a sender of random numbers cannot grow the set without bound.
const MAX_SEQ_GAPS: usize = 8192;

impl SeqTracker {
    /// Records `seq`; false when it was already seen.
    fn insert(&mut self, seq: u64) -> bool {
        if seq <= self.contiguous || !self.above.insert(seq) {
            return false;
        }
        while self.above.len() > MAX_SEQ_GAPS
            && let Some(first) = self.above.pop_first()
        {
            self.contiguous = first;
        }
        while self.above.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
        true
    }
}

/// One interval bucket that may still receive reports.
#[derive(Debug, Default)]
struct Bucket {
    by_arch: BTreeMap<String, Tally>,
    by_target: BTreeMap<u32, u64>,
    users: HashMap<String, u32>,
}

#[derive(Debug)]
pub struct Aggregator {
    run_id: String,
    interval_ms: u64,
    targets: Vec<TargetInfo>,
    /// Requests the scenario has (reports name them by index).
    requests: usize,
    cells: HashMap<(u32, String, u32), Tally>,
    seqs: HashMap<String, SeqTracker>,
    /// Run time (ms) at which each worker started its part of the run.
    offsets: HashMap<String, u64>,
    buckets: BTreeMap<u64, Bucket>,
    series: Vec<SeriesPoint>,
    arches: BTreeSet<String>,
    dropped: u64,
    /// Open model: how late arrivals' requests started (µs), over the whole run.
    send_lag: Option<Histogram<u64>>,
    late: u64,
    /// Phases and failure reasons, cumulative (not in the series).
    phases: PhaseBook,
}

impl Aggregator {
    pub fn new(
        run_id: String,
        interval_ms: u64,
        targets: Vec<TargetInfo>,
        requests: usize,
    ) -> Self {
        let arches = targets.iter().map(|t| t.arch.clone()).collect();
        Aggregator {
            run_id,
            interval_ms: interval_ms.max(1),
            targets,
            requests,
            cells: HashMap::new(),
            seqs: HashMap::new(),
            offsets: HashMap::new(),
            buckets: BTreeMap::new(),
            series: Vec::new(),
            arches,
            dropped: 0,
            send_lag: None,
            late: 0,
            phases: PhaseBook::default(),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Length of one series interval, ms.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    pub fn targets(&self) -> &[TargetInfo] {
        &self.targets
    }

    /// Notes that the worker process `source` received the run configuration `at_ms` into
    /// the run; its report times are relative to that moment.
    pub fn worker_started(&mut self, source: &str, at_ms: u64) {
        // A worker rejoining the run keeps its clock: its reports still count from the first.
        self.offsets.entry(source.to_owned()).or_insert(at_ms);
    }

    /// When `source` started its part of the run, if it has.
    pub fn started_at(&self, source: &str) -> Option<u64> {
        self.offsets.get(source).copied()
    }

    /// Counts a report of the worker process `source` (its id and instance: a new process
    /// under an old id numbers its reports afresh) exactly once.
    pub fn ingest(&mut self, source: &str, report: &Report) -> Result<Ingested, IngestError> {
        self.check(report)?;
        if !self.note_seq(source, report.seq) {
            return Ok(Ingested::Duplicate);
        }
        self.add_dropped(report.dropped);
        if let Some(lag) = &report.send_lag {
            self.add_send_lag(lag);
        }
        let offset = self.offsets.get(source).copied().unwrap_or(0);
        let index = self.bucket_index(offset + report.end_ms);
        let bucket = (self.series_closed_through() < index).then_some(index);
        if let Some(index) = bucket {
            self.set_users(index, source, report.users);
        }
        for s in &report.series {
            self.add_series(
                bucket,
                s.target,
                &s.arch,
                s.request,
                s.class,
                s.unexpected,
                s.count,
                &s.hist,
            );
        }
        for p in &report.phases {
            if !self.arches.contains(&p.arch) {
                self.arches.insert(p.arch.clone());
            }
            self.phases.add_phase(p.target, &p.arch, p.phase, &p.hist);
        }
        for r in &report.reasons {
            self.phases
                .add_reason(r.target, r.class, &r.reason, r.count);
        }
        Ok(Ingested::Counted { bucket })
    }

    /// Phases and failure reasons counted so far.
    pub fn phases(&self) -> &PhaseBook {
        &self.phases
    }

    /// The same, to replay a journal into.
    pub fn phases_mut(&mut self) -> &mut PhaseBook {
        &mut self.phases
    }

    /// Marks report `seq` of `source` counted; false when it already was.
    pub fn note_seq(&mut self, source: &str, seq: u64) -> bool {
        match self.seqs.get_mut(source) {
            Some(tracker) => tracker.insert(seq),
            None => self.seqs.entry(source.to_owned()).or_default().insert(seq),
        }
    }

    pub fn add_dropped(&mut self, n: u64) {
        self.dropped = self.dropped.saturating_add(n);
    }

    pub fn add_send_lag(&mut self, lag: &Latencies) {
        lag.add_to(self.send_lag.get_or_insert_with(new_histogram));
    }

    /// Users `source` said it ran at the end of interval `bucket`.
    pub fn set_users(&mut self, bucket: u64, source: &str, users: u32) {
        let b = self.buckets.entry(bucket).or_default();
        match b.users.get_mut(source) {
            Some(u) => *u = users,
            None => {
                b.users.insert(source.to_owned(), users);
            }
        }
    }

    /// Counts one key's requests: in the totals, and in interval `bucket` unless it had closed
    /// (`None`: counted late).
    #[allow(clippy::too_many_arguments)]
    pub fn add_series(
        &mut self,
        bucket: Option<u64>,
        target: u32,
        arch: &str,
        request: u32,
        class: Class,
        unexpected: bool,
        count: u64,
        hist: &Latencies,
    ) {
        if !self.arches.contains(arch) {
            self.arches.insert(arch.to_owned());
        }
        self.cells
            .entry((target, arch.to_owned(), request))
            .or_default()
            .record_latencies(class, unexpected, count, hist);
        match bucket {
            Some(index) => {
                let b = self.buckets.entry(index).or_default();
                *b.by_target.entry(target).or_default() += count;
                let tally = match b.by_arch.get_mut(arch) {
                    Some(t) => t,
                    None => b.by_arch.entry(arch.to_owned()).or_default(),
                };
                tally.record_latencies(class, unexpected, count, hist);
            }
            None => self.late += count,
        }
    }

    fn check(&self, report: &Report) -> Result<(), IngestError> {
        if report.run_id != self.run_id {
            return Err(IngestError::WrongRun {
                got: report.run_id.clone(),
                want: self.run_id.clone(),
            });
        }
        let mut new_arches = BTreeSet::new();
        for s in &report.series {
            if s.target as usize >= self.targets.len() {
                return Err(IngestError::UnknownTarget(s.target));
            }
            if s.request as usize >= self.requests {
                return Err(IngestError::UnknownRequest(s.request));
            }
            if !self.arches.contains(&s.arch) {
                new_arches.insert(s.arch.as_str());
            }
        }
        let targets = report.phases.iter().map(|p| (p.target, Some(&p.arch)));
        let targets = targets.chain(report.reasons.iter().map(|r| (r.target, None)));
        for (target, arch) in targets {
            if target as usize >= self.targets.len() {
                return Err(IngestError::UnknownTarget(target));
            }
            // A phase's arch label counts against the bound like a series' does.
            if let Some(arch) = arch.filter(|a| !self.arches.contains(*a)) {
                new_arches.insert(arch.as_str());
            }
        }
        if self.arches.len() + new_arches.len() > MAX_ARCHES {
            return Err(IngestError::TooManyArches);
        }
        Ok(())
    }

    /// Interval `k` covers ((k-1)·I, k·I]; a time is rounded to the nearest boundary because
    /// workers start their clocks a few milliseconds after the master.
    fn bucket_index(&self, end_ms: u64) -> u64 {
        ((end_ms + self.interval_ms / 2) / self.interval_ms).max(1)
    }

    fn series_closed_through(&self) -> u64 {
        self.series
            .last()
            .map_or(0, |p| (p.t * 1000.0).round() as u64 / self.interval_ms)
    }

    /// Closes the intervals that can no longer receive on-time reports: those that ended
    /// at least one interval before `now_ms`.
    pub fn close_intervals(&mut self, now_ms: u64) {
        let horizon = now_ms.saturating_sub(self.interval_ms);
        while let Some(entry) = self.buckets.first_entry() {
            if entry.key() * self.interval_ms > horizon {
                break;
            }
            let (index, bucket) = entry.remove_entry();
            // Intervals nobody reported in (no worker connected: a master outage, every
            // worker lost) show as empty points, so the series has no silent hole.
            let last = self.series_closed_through();
            if last > 0 {
                for empty in last + 1..index {
                    let point = self.point(empty, &Bucket::default());
                    self.series.push(point);
                }
            }
            let point = self.point(index, &bucket);
            self.series.push(point);
        }
    }

    /// Closes every interval (end of run).
    pub fn close_all(&mut self) {
        self.close_intervals(u64::MAX);
    }

    fn point(&self, index: u64, bucket: &Bucket) -> SeriesPoint {
        let seconds = self.interval_ms as f64 / 1000.0;
        let by_arch: BTreeMap<String, ArchPoint> = bucket
            .by_arch
            .iter()
            .map(|(arch, t)| {
                let latency = t.latency.histogram();
                let point = ArchPoint {
                    rps: t.requests as f64 / seconds,
                    requests: t.requests,
                    ratio_5xx: t.ratio_5xx(),
                    errors: t.error_count(),
                    p50_ms: quantile_ms(&latency, 0.5),
                    p95_ms: quantile_ms(&latency, 0.95),
                    p99_ms: quantile_ms(&latency, 0.99),
                    failures: t.failures,
                    hdr: Some(outcome::hdr::encode(&latency)),
                };
                (arch.clone(), point)
            })
            .collect();
        SeriesPoint {
            t: (index * self.interval_ms) as f64 / 1000.0,
            users: bucket.users.values().map(|&u| u64::from(u)).sum(),
            rps: by_arch.values().map(|p| p.rps).sum(),
            by_arch,
            by_target: bucket
                .by_target
                .iter()
                .filter_map(|(&t, &n)| {
                    let name = self.targets.get(t as usize)?.name.clone();
                    Some((name, n as f64 / seconds))
                })
                .collect(),
        }
    }

    pub fn series(&self) -> &[SeriesPoint] {
        &self.series
    }

    /// Requests counted after their interval had closed: in the totals, not in the series.
    pub fn late_requests(&self) -> u64 {
        self.late
    }

    /// Open-model arrivals that found no free slot.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The open model's send lag (µs) over the run; `None` when no arrival was sent.
    pub fn send_lag(&self) -> Option<&Histogram<u64>> {
        self.send_lag.as_ref()
    }

    pub fn totals(&self) -> Tally {
        let mut t = Tally::default();
        for cell in self.cells.values() {
            t.merge(cell);
        }
        t
    }

    /// Cumulative tallies per arch (the arch that served, not the declared one).
    pub fn by_arch(&self) -> BTreeMap<String, Tally> {
        let mut out: BTreeMap<String, Tally> = BTreeMap::new();
        for ((_, arch, _), cell) in &self.cells {
            out.entry(arch.clone()).or_default().merge(cell);
        }
        out
    }

    /// Cumulative tallies per target, in scenario order (targets with no requests included).
    pub fn by_target(&self) -> Vec<Tally> {
        let mut out = vec![Tally::default(); self.targets.len()];
        for ((target, _, _), cell) in &self.cells {
            if let Some(t) = out.get_mut(*target as usize) {
                t.merge(cell);
            }
        }
        out
    }

    /// Cumulative tallies per (request index, serving arch).
    pub fn by_request_arch(&self) -> BTreeMap<(u32, String), Tally> {
        let mut out: BTreeMap<(u32, String), Tally> = BTreeMap::new();
        for ((_, arch, request), cell) in &self.cells {
            out.entry((*request, arch.clone())).or_default().merge(cell);
        }
        out
    }
}

#[cfg(test)]
mod tests;
