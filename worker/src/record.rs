//! Per-thread recording. Each engine thread owns one [`Shard`]: a map from key to latency
//! histogram. Users on that thread record into it; the reporter swaps it for an empty one once
//! per interval, so the only lock contention is that one swap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;
use stampede_proto::{Outcome, hdr};

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

/// A shard shared between its engine thread and the reporter.
pub type SharedShard = Arc<Mutex<Shard>>;

/// An empty histogram with the bounds every stampede histogram uses.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy new_with_bounds' preconditions (low >= 1,
    // high >= 2 * low, sigfig <= 5), so this cannot fail.
    Histogram::new_with_bounds(hdr::LOWEST_US, hdr::HIGHEST_US, hdr::SIGFIG)
        .expect("the stampede_proto::hdr bounds are valid")
}

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
}

/// The recordings of one engine thread.
#[derive(Debug)]
pub struct Shard {
    histograms: Histograms,
    /// Open-model arrivals that found no free slot since the last `take_dropped`.
    dropped: u64,
    /// Arch labels seen in responses; kept across intervals so the bound holds for the run.
    labels: Vec<Arc<str>>,
    other: Arc<str>,
}

impl Default for Shard {
    fn default() -> Self {
        Self::new()
    }
}

impl Shard {
    pub fn new() -> Self {
        Self {
            histograms: HashMap::new(),
            dropped: 0,
            labels: Vec::new(),
            other: Arc::from(OTHER_ARCH),
        }
    }

    /// Records one request. Allocates only the first time a key or an arch label is seen.
    pub fn record(&mut self, sample: Sample<'_>) {
        let key = Key {
            target: sample.target,
            arch: self.arch(sample.arch_header, sample.declared_arch),
            outcome: sample.outcome,
            unexpected: sample.unexpected,
            request: sample.request,
        };
        self.histograms
            .entry(key)
            .or_insert_with(new_histogram)
            .saturating_record(sample.latency_us.max(1));
    }

    /// Takes everything recorded so far, leaving an empty shard.
    pub fn take(&mut self) -> Histograms {
        std::mem::take(&mut self.histograms)
    }

    /// Counts an open-model arrival that was not sent: the in-flight bound was reached.
    pub fn drop_arrival(&mut self) {
        self.dropped += 1;
    }

    /// Takes the dropped-arrival count, leaving zero.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Number of requests recorded since the last `take`.
    pub fn count(&self) -> u64 {
        self.histograms.values().map(Histogram::len).sum()
    }

    /// The arch label for a response: its header value (trimmed, UTF-8, at most
    /// [`MAX_ARCH_LEN`] bytes) if usable, else the declared arch.
    fn arch(&mut self, header: Option<&[u8]>, declared: &Arc<str>) -> Arc<str> {
        let Some(value) = header.map(<[u8]>::trim_ascii).filter(|v| !v.is_empty()) else {
            return declared.clone();
        };
        // Compare bytes with the labels we know before building any string.
        if value == declared.as_bytes() {
            return declared.clone();
        }
        if let Some(label) = self.labels.iter().find(|l| l.as_bytes() == value) {
            return label.clone();
        }
        let Some(label) = std::str::from_utf8(value)
            .ok()
            .filter(|s| s.len() <= MAX_ARCH_LEN)
        else {
            return declared.clone();
        };
        if self.labels.len() >= MAX_ARCH_LABELS {
            return self.other.clone();
        }
        let label: Arc<str> = Arc::from(label);
        self.labels.push(label.clone());
        label
    }
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
