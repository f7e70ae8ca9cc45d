//! The reports counted since the last write, merged by key so that a batch costs what its keys
//! hold, not what every report held: each series is added by bucket index into its key's
//! counters (only the buckets touched are read back and cleared), and the counters are kept
//! for the next batch.

use super::record::{self, Buckets};
use crate::stats::{COUNTS_LEN, Class, Latencies, PhaseBook, Report};

/// What one key adds up to: counts by bucket index, and which indexes hold some.
#[derive(Default)]
struct Acc {
    counts: Vec<u64>,
    touched: Vec<u32>,
    count: u64,
}

impl Acc {
    fn add(&mut self, l: &Latencies) {
        if self.counts.is_empty() && !l.is_empty() {
            self.counts = vec![0; COUNTS_LEN];
        }
        for &(index, count) in l.buckets() {
            if let Some(c) = self.counts.get_mut(index as usize) {
                if *c == 0 {
                    self.touched.push(index);
                }
                *c = c.saturating_add(count);
            }
        }
    }

    /// The buckets added since the last take, in order; the counters are cleared.
    fn take(&mut self) -> Buckets {
        self.touched.sort_unstable();
        let pairs: Vec<(u32, u64)> = self
            .touched
            .iter()
            .map(|&i| (i, std::mem::take(&mut self.counts[i as usize])))
            .collect();
        self.touched.clear();
        self.count = 0;
        Buckets::of(&pairs)
    }
}

/// (interval, target, arch, request, outcome, expected).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    bucket: u64,
    target: u32,
    request: u32,
    outcome: i32,
    unexpected: bool,
    arch: String,
}

#[derive(Default)]
pub struct Batch {
    cells: Vec<(Key, Acc)>,
    /// Counters kept from earlier batches, to be used again.
    spare: Vec<Acc>,
    counted: Vec<record::Counted>,
    dropped: u64,
    send_lag: Option<Acc>,
    /// Phases and reasons since the last take: few keys, merged sparsely.
    phases: PhaseBook,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.counted.is_empty()
    }

    /// Adds a report the aggregator counted, from worker process `source`, in interval
    /// `bucket` (`None`: late).
    pub fn add(&mut self, source: &str, report: &Report, bucket: Option<u64>) {
        let bucket = bucket.unwrap_or(0);
        self.counted.push(record::Counted {
            source: source.to_owned(),
            seq: report.seq,
            bucket,
            users: report.users,
        });
        self.dropped = self.dropped.saturating_add(report.dropped);
        if let Some(lag) = &report.send_lag {
            self.send_lag.get_or_insert_with(Acc::default).add(lag);
        }
        for p in &report.phases {
            self.phases.add_phase(p.target, &p.arch, p.phase, &p.hist);
        }
        for r in &report.reasons {
            self.phases
                .add_reason(r.target, r.class, &r.reason, r.count);
        }
        for s in &report.series {
            let outcome = s.class.to_wire();
            let at = self.cells.iter().position(|(k, _)| {
                k.bucket == bucket
                    && k.target == s.target
                    && k.request == s.request
                    && k.outcome == outcome
                    && k.unexpected == s.unexpected
                    && k.arch == s.arch
            });
            let acc = match at {
                Some(i) => &mut self.cells[i].1,
                None => {
                    let key = Key {
                        bucket,
                        target: s.target,
                        request: s.request,
                        outcome,
                        unexpected: s.unexpected,
                        arch: s.arch.clone(),
                    };
                    let acc = self.spare.pop().unwrap_or_default();
                    self.cells.push((key, acc));
                    let last = self.cells.len() - 1;
                    &mut self.cells[last].1
                }
            };
            acc.count = acc.count.saturating_add(s.count);
            // Transport errors are counted, not timed (as the tally does).
            if matches!(s.class, Class::Status(_)) {
                acc.add(&s.hist);
            }
        }
    }

    /// The batch as a record, `at_ms` into the run; the batch is empty again.
    pub fn take(&mut self, at_ms: u64) -> record::Batch {
        let phases = std::mem::take(&mut self.phases);
        self.cells.sort_by(|a, b| a.0.cmp(&b.0));
        let mut cells = Vec::with_capacity(self.cells.len());
        for (key, mut acc) in self.cells.drain(..) {
            let count = acc.count;
            let latency = acc.take();
            cells.push(record::Cell {
                bucket: key.bucket,
                target: key.target,
                arch: key.arch,
                request: key.request,
                outcome: key.outcome,
                unexpected: key.unexpected,
                count,
                latency: (!latency.steps.is_empty()).then_some(latency),
            });
            self.spare.push(acc);
        }
        record::Batch {
            at_ms,
            counted: std::mem::take(&mut self.counted),
            cells,
            dropped: std::mem::take(&mut self.dropped),
            send_lag: self
                .send_lag
                .as_mut()
                .map(Acc::take)
                .filter(|b| !b.steps.is_empty()),
            phases: phases
                .cells()
                .flat_map(|(target, arch, set)| {
                    set.iter()
                        .enumerate()
                        .filter(|(_, l)| !l.is_empty())
                        .map(move |(phase, l)| record::PhaseCell {
                            target,
                            arch: arch.to_owned(),
                            phase: phase as u32,
                            latency: Some(Buckets::of(l.buckets())),
                        })
                })
                .collect(),
            reasons: phases
                .reasons()
                .map(|(target, class, reason, count)| record::ReasonCell {
                    target,
                    outcome: class.to_wire(),
                    reason: reason.to_owned(),
                    count,
                })
                .collect(),
        }
    }
}
