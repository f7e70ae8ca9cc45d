//! Per-thread recording. Each engine thread owns one [`Shard`]: a map from key to latency
//! histogram. Users on that thread record into it; the reporter swaps it for an empty one once
//! per interval, so the only lock contention is that one swap.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;
use stampede_proto::{Outcome, Phase};

use crate::phases::Phases;

/// Distinct arch labels taken from responses per shard; the header comes from the network, so a
/// misbehaving server must not grow the map without bound.
pub const MAX_ARCH_LABELS: usize = 16;

/// Longest arch label accepted from a response header.
pub const MAX_ARCH_LEN: usize = 64;

/// The label used for arches beyond [`MAX_ARCH_LABELS`].
pub const OTHER_ARCH: &str = "other";

/// What one histogram counts: the requests of one request kind to one target, served by one
/// arch, with one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Index into `RunConfig.targets`.
    pub target: u32,
    /// The arch that served the request.
    pub arch: Arc<str>,
    pub outcome: Outcome,
    /// The status was not one the request expects (errors always are).
    pub unexpected: bool,
    /// Index into `RunConfig.requests`.
    pub request: u32,
}

/// Latency histograms (µs) by key.
pub type Histograms = HashMap<Key, Histogram<u64>>;

/// What one phase histogram counts: one phase of the requests to one target, served by one
/// arch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhaseKey {
    pub target: u32,
    pub arch: Arc<str>,
    pub phase: Phase,
}

/// Phase histograms (µs) by key.
pub type PhaseHistograms = HashMap<PhaseKey, Histogram<u64>>;

/// How many failed requests of one target and outcome failed for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCount {
    pub target: u32,
    pub outcome: Outcome,
    pub reason: &'static str,
    pub count: u64,
}

/// A shard shared between its engine thread and the reporter.
pub type SharedShard = Arc<Mutex<Shard>>;

/// An empty histogram with the bounds every stampede histogram uses.
pub use stampede_proto::hdr::new_histogram;

/// One request's measurement, as the user loop hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub target: u32,
    pub request: u32,
    pub outcome: Outcome,
    pub unexpected: bool,
    /// The response's arch header value, if it had one.
    pub arch_header: Option<&'a [u8]>,
    /// The target's declared arch.
    pub declared_arch: &'a Arc<str>,
    pub latency_us: u64,
    /// The phases that happened, recorded beside the latency under the same arch.
    pub phases: Phases,
    /// Why it failed, for a transport error.
    pub reason: Option<&'static str>,
}

/// Which arch a slot counts, without the string: the target's declared arch, one of the
/// shard's labels (by index), or the catch-all label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArchId {
    Declared,
    Label(u8),
    Other,
}

/// The identity of a slot, compared field by field: no hashing, no reference counting per
/// request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlotKey {
    target: u32,
    request: u32,
    arch: ArchId,
    outcome: Outcome,
    unexpected: bool,
}

#[derive(Debug)]
struct Slot {
    arch: Arc<str>,
    hist: Histogram<u64>,
}

/// The recordings of one engine thread.
#[derive(Debug)]
pub struct Shard {
    /// Slot keys, kept apart from the histograms so the search scans a short, dense array.
    keys: Vec<SlotKey>,
    slots: Vec<Slot>,
    /// Where the previous request was recorded: most requests land in the same slot.
    last: usize,
    /// Open-model arrivals that found no free slot since the last `take_dropped`.
    dropped: u64,
    /// Open-model send lag (µs) since the last `take_send_lag`; made on the first arrival.
    send_lag: Option<Histogram<u64>>,
    /// Arch labels seen in responses; kept across intervals so the bound holds for the run.
    labels: Vec<Arc<str>>,
    other: Arc<str>,
    /// Phase histograms, keyed like the slots but by phase instead of outcome and request.
    phase_keys: Vec<(u32, ArchId, Phase)>,
    phase_slots: Vec<Slot>,
    reasons: Vec<ReasonCount>,
}

impl Default for Shard {
    fn default() -> Self {
        Self::new()
    }
}

impl Shard {
    pub fn new() -> Self {
        Self {
            keys: Vec::new(),
            slots: Vec::new(),
            last: 0,
            dropped: 0,
            send_lag: None,
            labels: Vec::new(),
            other: Arc::from(OTHER_ARCH),
            phase_keys: Vec::new(),
            phase_slots: Vec::new(),
            reasons: Vec::new(),
        }
    }

    /// Records one request. Allocates only the first time a key or an arch label is seen in an
    /// interval.
    pub fn record(&mut self, sample: Sample<'_>) {
        let key = SlotKey {
            target: sample.target,
            request: sample.request,
            arch: self.arch(sample.arch_header, sample.declared_arch),
            outcome: sample.outcome,
            unexpected: sample.unexpected,
        };
        let index = if self.keys.get(self.last) == Some(&key) {
            self.last
        } else if let Some(i) = self.keys.iter().position(|k| *k == key) {
            i
        } else {
            let arch = match key.arch {
                ArchId::Declared => Arc::clone(sample.declared_arch),
                ArchId::Label(i) => Arc::clone(&self.labels[usize::from(i)]),
                ArchId::Other => Arc::clone(&self.other),
            };
            self.keys.push(key);
            self.slots.push(Slot {
                arch,
                hist: new_histogram(),
            });
            self.keys.len() - 1
        };
        self.last = index;
        self.slots[index]
            .hist
            .saturating_record(sample.latency_us.max(1));
        for (phase, took) in sample.phases.iter() {
            let pk = (sample.target, key.arch, phase);
            let at = match self.phase_keys.iter().position(|k| *k == pk) {
                Some(i) => i,
                None => {
                    self.phase_keys.push(pk);
                    self.phase_slots.push(Slot {
                        arch: Arc::clone(&self.slots[index].arch),
                        hist: new_histogram(),
                    });
                    self.phase_keys.len() - 1
                }
            };
            let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            self.phase_slots[at].hist.saturating_record(us.max(1));
        }
        if let Some(reason) = sample.reason {
            let found = self.reasons.iter_mut().find(|r| {
                r.target == sample.target && r.outcome == sample.outcome && r.reason == reason
            });
            match found {
                Some(r) => r.count += 1,
                None => self.reasons.push(ReasonCount {
                    target: sample.target,
                    outcome: sample.outcome,
                    reason,
                    count: 1,
                }),
            }
        }
    }

    /// Takes the phase histograms recorded so far.
    pub fn take_phases(&mut self) -> PhaseHistograms {
        let mut out = PhaseHistograms::with_capacity(self.phase_slots.len());
        for ((target, _, phase), slot) in self.phase_keys.drain(..).zip(self.phase_slots.drain(..))
        {
            let key = PhaseKey {
                target,
                arch: slot.arch,
                phase,
            };
            match out.entry(key) {
                Entry::Vacant(e) => {
                    e.insert(slot.hist);
                }
                // Same bounds, so adding cannot fail.
                Entry::Occupied(mut e) => {
                    let _ = e.get_mut().add(&slot.hist);
                }
            }
        }
        out
    }

    /// Takes the failure reasons counted so far.
    pub fn take_reasons(&mut self) -> Vec<ReasonCount> {
        std::mem::take(&mut self.reasons)
    }

    /// Takes everything recorded so far, leaving an empty shard.
    pub fn take(&mut self) -> Histograms {
        let mut out = Histograms::with_capacity(self.slots.len());
        for (k, slot) in self.keys.drain(..).zip(self.slots.drain(..)) {
            let key = Key {
                target: k.target,
                arch: slot.arch,
                outcome: k.outcome,
                unexpected: k.unexpected,
                request: k.request,
            };
            match out.entry(key) {
                Entry::Vacant(e) => {
                    e.insert(slot.hist);
                }
                // Two slots of one key: a response label equal to another target's declared
                // arch. Same bounds, so adding cannot fail.
                Entry::Occupied(mut e) => {
                    let _ = e.get_mut().add(&slot.hist);
                }
            }
        }
        self.last = 0;
        out
    }

    /// Counts an open-model arrival that was not sent: the in-flight bound was reached.
    pub fn drop_arrival(&mut self) {
        self.dropped += 1;
    }

    /// Records how late an open-model arrival's request started after it was due.
    pub fn record_send_lag(&mut self, lag_us: u64) {
        self.send_lag
            .get_or_insert_with(new_histogram)
            .saturating_record(lag_us);
    }

    /// Takes the send lags recorded since the last call.
    pub fn take_send_lag(&mut self) -> Option<Histogram<u64>> {
        self.send_lag.take()
    }

    /// Takes the dropped-arrival count, leaving zero.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Number of requests recorded since the last `take`.
    pub fn count(&self) -> u64 {
        self.slots.iter().map(|s| s.hist.len()).sum()
    }

    /// The arch of a response: its header value (trimmed, UTF-8, at most [`MAX_ARCH_LEN`]
    /// bytes) if usable, else the declared arch.
    fn arch(&mut self, header: Option<&[u8]>, declared: &Arc<str>) -> ArchId {
        let Some(value) = header.map(<[u8]>::trim_ascii).filter(|v| !v.is_empty()) else {
            return ArchId::Declared;
        };
        // Compare bytes with the labels we know before building any string.
        if value == declared.as_bytes() {
            return ArchId::Declared;
        }
        if let Some(i) = self.labels.iter().position(|l| l.as_bytes() == value) {
            return label_id(i);
        }
        let Some(label) = std::str::from_utf8(value)
            .ok()
            .filter(|s| s.len() <= MAX_ARCH_LEN)
        else {
            return ArchId::Declared;
        };
        if self.labels.len() >= MAX_ARCH_LABELS {
            return ArchId::Other;
        }
        self.labels.push(Arc::from(label));
        label_id(self.labels.len() - 1)
    }
}

/// The id of label `i`; there are at most [`MAX_ARCH_LABELS`] (< 256) labels.
fn label_id(i: usize) -> ArchId {
    u8::try_from(i).map_or(ArchId::Other, ArchId::Label)
}

/// Locks a shard. A panic while holding the lock cannot leave a histogram half-written in a way
/// that matters, so a poisoned lock is used as is rather than losing the data.
pub fn lock(shard: &SharedShard) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(header: Option<&'a [u8]>, declared: &'a Arc<str>) -> Sample<'a> {
        Sample {
            target: 0,
            request: 0,
            outcome: Outcome::Status2xx,
            unexpected: false,
            arch_header: header,
            declared_arch: declared,
            latency_us: 1500,
            phases: Phases::default(),
            reason: None,
        }
    }

    fn archs(h: &Histograms) -> Vec<(String, u64)> {
        let mut v: Vec<_> = h
            .iter()
            .map(|(k, h)| (k.arch.to_string(), h.len()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn header_wins_over_declared_arch() {
        let declared: Arc<str> = Arc::from("amd64");
        let mut shard = Shard::new();
        shard.record(sample(Some(b" arm64 "), &declared));
        shard.record(sample(Some(b"arm64"), &declared));
        shard.record(sample(None, &declared));
        shard.record(sample(Some(b""), &declared));
        assert_eq!(shard.count(), 4);
        let taken = shard.take();
        assert_eq!(
            archs(&taken),
            vec![("amd64".into(), 2), ("arm64".into(), 2)]
        );
        assert_eq!(shard.count(), 0);
    }

    #[test]
    fn unusable_headers_fall_back_to_declared() {
        let declared: Arc<str> = Arc::from("amd64");
        let mut shard = Shard::new();
        shard.record(sample(Some(&[0xff, 0xfe]), &declared));
        shard.record(sample(Some("x".repeat(65).as_bytes()), &declared));
        assert_eq!(archs(&shard.take()), vec![("amd64".into(), 2)]);
    }

    #[test]
    fn arch_labels_are_bounded() {
        let declared: Arc<str> = Arc::from("amd64");
        let mut shard = Shard::new();
        for i in 0..100 {
            let label = format!("arch{i}");
            shard.record(sample(Some(label.as_bytes()), &declared));
        }
        let taken = shard.take();
        assert_eq!(taken.len(), MAX_ARCH_LABELS + 1);
        let other = taken
            .iter()
            .find(|(k, _)| &*k.arch == OTHER_ARCH)
            .unwrap()
            .1;
        assert_eq!(other.len(), 100 - MAX_ARCH_LABELS as u64);
    }

    #[test]
    fn latency_is_clamped_into_range() {
        let declared: Arc<str> = Arc::from("amd64");
        let mut shard = Shard::new();
        shard.record(Sample {
            latency_us: 0,
            ..sample(None, &declared)
        });
        shard.record(Sample {
            latency_us: u64::MAX,
            ..sample(None, &declared)
        });
        let taken = shard.take();
        let h = taken.values().next().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
    }
}
