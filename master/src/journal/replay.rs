//! Reading a journal back: the run's start, its workers, every counted report replayed into an
//! aggregator (exactly what was counted: the same totals, the same series), and where the plan
//! stood. A torn or corrupt tail is dropped and said.

use std::path::{Path, PathBuf};

use prost::Message;

use super::frame::{self, Torn};
use super::record::{self, Entry, Record};
use crate::outcome::WorkerRecord;
use crate::scenario::ScenarioFile;
use crate::stats::{Aggregator, Class, Latencies, TargetInfo};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read the journal {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Bad { path: PathBuf, why: String },
}

/// A journal, read and replayed.
pub struct Journal {
    pub path: PathBuf,
    pub start: record::Start,
    /// The scenario as run (secrets redacted).
    pub scenario: ScenarioFile,
    /// Everything counted, replayed (intervals not closed yet).
    pub agg: Aggregator,
    /// Workers that took part, with join and leave times.
    pub workers: Vec<WorkerRecord>,
    /// The latest position of the plan.
    pub progress: Option<record::Progress>,
    /// Run time of the last record, ms: the journal is good up to there.
    pub last_ms: u64,
    /// Set when the run finished.
    pub ended: bool,
    /// A finished run's time under load, ms.
    pub load_ms: Option<u64>,
    /// Bytes of the journal that are good.
    pub good: u64,
    /// Why the journal ends early, if it does.
    pub torn: Option<Torn>,
}

pub fn read(path: &Path) -> Result<Journal, JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Read {
        path: path.to_owned(),
        source,
    })?;
    let bad = |why: String| JournalError::Bad {
        path: path.to_owned(),
        why,
    };
    let (records, torn) = frame::records(&bytes).map_err(bad)?;
    let good = torn.as_ref().map_or(bytes.len(), |t| t.good) as u64;
    let mut entries = records
        .into_iter()
        .map(|r| Record::decode(r).map(|r| r.entry))
        .take_while(Result::is_ok)
        .flatten()
        .flatten();
    let Some(Entry::Start(start)) = entries.next() else {
        return Err(bad("the journal does not begin with the run's start".into()));
    };
    let scenario: ScenarioFile = serde_json::from_str(&start.scenario_json)
        .map_err(|e| bad(format!("the journal's scenario does not read back: {e}")))?;
    let targets = scenario
        .targets
        .iter()
        .map(|t| TargetInfo {
            name: t.name.clone(),
            arch: t.arch.clone(),
        })
        .collect();
    let interval_ms = u64::try_from(scenario.report_interval.as_millis()).unwrap_or(u64::MAX);
    let agg = Aggregator::new(
        start.run_id.clone(),
        interval_ms,
        targets,
        scenario.requests.len(),
    );
    let mut journal = Journal {
        path: path.to_owned(),
        start,
        scenario,
        agg,
        workers: Vec::new(),
        progress: None,
        last_ms: 0,
        ended: false,
        load_ms: None,
        good,
        torn,
    };
    for entry in entries {
        journal.apply(entry);
    }
    Ok(journal)
}

impl Journal {
    fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Start(_) => {}
            Entry::Joined(j) => {
                let source = source_of(&j.worker, &j.instance);
                if let Some(at) = j.started_ms {
                    self.agg.worker_started(&source, at);
                }
                self.last_ms = self.last_ms.max(j.at_ms);
                self.workers.push(WorkerRecord {
                    id: j.worker,
                    arch: j.arch,
                    hostname: j.hostname,
                    joined_s: j.at_ms as f64 / 1000.0,
                    left_s: None,
                    reason: None,
                });
            }
            Entry::Left(l) => {
                self.last_ms = self.last_ms.max(l.at_ms);
                if let Some(w) = self
                    .workers
                    .iter_mut()
                    .rev()
                    .find(|w| w.id == l.worker && w.left_s.is_none())
                {
                    w.left_s = Some(l.at_ms as f64 / 1000.0);
                    w.reason = Some(l.reason);
                }
            }
            Entry::Batch(b) => {
                self.last_ms = self.last_ms.max(b.at_ms);
                replay_batch(&mut self.agg, b);
            }
            Entry::Progress(p) => {
                self.last_ms = self.last_ms.max(p.at_ms);
                self.progress = Some(p);
            }
            Entry::End(e) => {
                self.last_ms = self.last_ms.max(e.at_ms);
                self.ended = true;
                self.load_ms = Some(e.load_ms);
            }
        }
    }
}

/// The aggregator's key for a worker process.
pub fn source_of(worker: &str, instance: &str) -> String {
    if instance.is_empty() {
        worker.to_owned()
    } else {
        format!("{worker}@{instance}")
    }
}

/// Adds a batch to the aggregator as the reports it holds were added.
fn replay_batch(agg: &mut Aggregator, b: record::Batch) {
    for c in &b.counted {
        agg.note_seq(&c.source, c.seq);
        if c.bucket > 0 {
            agg.set_users(c.bucket, &c.source, c.users);
        }
    }
    for cell in b.cells {
        // An outcome this master does not know is not one it wrote: skip it.
        let Some(class) = Class::from_wire(cell.outcome) else {
            continue;
        };
        let latency = cell
            .latency
            .map(|l| Latencies::from_buckets(l.pairs()))
            .unwrap_or_default();
        let bucket = (cell.bucket > 0).then_some(cell.bucket);
        agg.add_series(
            bucket,
            cell.target,
            &cell.arch,
            cell.request,
            class,
            cell.unexpected,
            cell.count,
            &latency,
        );
    }
    for p in b.phases {
        let latency = p.latency.map(|l| Latencies::from_buckets(l.pairs()));
        let latency = latency.unwrap_or_default();
        let phases = agg.phases_mut();
        phases.add_phase(p.target, &p.arch, p.phase as usize, &latency);
    }
    for r in b.reasons {
        if let Some(class) = Class::from_wire(r.outcome) {
            agg.phases_mut()
                .add_reason(r.target, class, &r.reason, r.count);
        }
    }
    agg.add_dropped(b.dropped);
    if let Some(lag) = b.send_lag {
        agg.add_send_lag(&Latencies::from_buckets(lag.pairs()));
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use stampede_proto::hdr::new_histogram;

    use super::*;
    use crate::journal::Batch;
    use crate::stats::{PhaseSeries, ReasonCount, Report, figures};

    fn report(seq: u64) -> Report {
        let mut h = new_histogram();
        h.record_n(20_000 + seq, 3).unwrap();
        Report {
            run_id: "run".into(),
            worker_id: "w".into(),
            seq,
            start_ms: (seq - 1) * 1000,
            end_ms: seq * 1000,
            users: 1,
            is_final: false,
            dropped: 0,
            completed_stage: 0,
            series: Vec::new(),
            send_lag: None,
            phases: vec![PhaseSeries {
                target: 0,
                arch: "arm64".into(),
                phase: 3,
                hist: Latencies::from(&h),
            }],
            reasons: vec![ReasonCount {
                target: 0,
                class: Class::Error(4),
                reason: "unknown issuer".into(),
                count: seq,
            }],
        }
    }

    /// What a resumed or recovered run reads back holds the phases and reasons the live run
    /// counted, exactly: the batches go through their encoding as the journal writes them.
    #[test]
    fn phases_and_reasons_survive_the_journal() {
        let target = TargetInfo {
            name: "arm".into(),
            arch: "arm64".into(),
        };
        let mut live = Aggregator::new("run".into(), 1000, vec![target.clone()], 1);
        let mut replayed = Aggregator::new("run".into(), 1000, vec![target], 1);
        let mut batch = Batch::default();
        for seq in 1..=4 {
            let r = report(seq);
            let counted = live.ingest("w", &r).unwrap();
            let bucket = match counted {
                crate::stats::Ingested::Counted { bucket } => bucket,
                crate::stats::Ingested::Duplicate => None,
            };
            batch.add("w", &r, bucket);
            if seq % 2 == 0 {
                let bytes = batch.take(seq * 1000).encode_to_vec();
                let read = record::Batch::decode(bytes.as_slice()).unwrap();
                replay_batch(&mut replayed, read);
            }
        }
        let (a, b) = (live.phases(), replayed.phases());
        assert_eq!(figures(&a.totals()), figures(&b.totals()));
        assert_eq!(figures(&b.totals())["ttfb"].count, 12);
        assert_eq!(a.totals()[3], b.totals()[3]);
        assert_eq!(a.failures(&["arm"]), b.failures(&["arm"]));
        assert_eq!(b.failures(&["arm"])[0].count, 1 + 2 + 3 + 4);
        // A journal written before phases existed (no fields 6 and 7) replays with none.
        let old = record::Batch {
            at_ms: 1,
            ..Default::default()
        };
        let mut fresh = Aggregator::new("run".into(), 1000, Vec::new(), 1);
        replay_batch(&mut fresh, old);
        assert!(fresh.phases().failures(&[]).is_empty());
    }
}
