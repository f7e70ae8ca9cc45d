//! Interval reports: the shards taken from every engine thread, merged per key and serialized as
//! HdrHistogram V2, so the master merges exact histograms rather than percentiles. Plain V2, not
//! V2 + deflate: V2's run-length counts are already compact, and inflating tens of small zlib
//! streams per report was a third of the master's CPU at thousands of workers (the master reads
//! both, so older workers still join).

use std::collections::hash_map::Entry;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use stampede_proto::{ErrorReason, PhaseSeries, Series};

use crate::record::{Histograms, Key, PhaseHistograms, PhaseKey, ReasonCount};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot merge histograms for {key:?}: {reason}")]
    Merge { key: Key, reason: String },
    #[error("cannot serialize the histogram for {key:?}: {reason}")]
    Serialize { key: Key, reason: String },
    #[error("cannot serialize the {key:?} phase histogram: {reason}")]
    Phase { key: PhaseKey, reason: String },
    #[error("cannot serialize the send-lag histogram: {0}")]
    SendLag(String),
    #[error("cannot decode a histogram: {0}")]
    Decode(String),
}

/// Merges the histograms taken from several shards into one map.
pub fn merge(parts: impl IntoIterator<Item = Histograms>) -> Result<Histograms, ReportError> {
    let mut merged = Histograms::new();
    for part in parts {
        for (key, hist) in part {
            match merged.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(hist);
                }
                Entry::Occupied(mut slot) => {
                    // Identical bounds everywhere, so adding cannot overflow the range.
                    slot.get_mut().add(&hist).map_err(|e| ReportError::Merge {
                        key: slot.key().clone(),
                        reason: format!("{e:?}"),
                    })?;
                }
            }
        }
    }
    Ok(merged)
}

/// One `Series` per non-empty key, in key order (stable output for logs and tests).
pub fn to_series(merged: Histograms) -> Result<Vec<Series>, ReportError> {
    let mut entries: Vec<(Key, Histogram<u64>)> =
        merged.into_iter().filter(|(_, h)| !h.is_empty()).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut serializer = V2Serializer::new();
    entries
        .into_iter()
        .map(|(key, hist)| {
            let mut hdr = Vec::new();
            serializer
                .serialize(&hist, &mut hdr)
                .map_err(|e| ReportError::Serialize {
                    key: key.clone(),
                    reason: format!("{e:?}"),
                })?;
            Ok(Series {
                target: key.target,
                arch: key.arch.to_string(),
                outcome: key.outcome as i32,
                unexpected: key.unexpected,
                count: hist.len(),
                hdr,
                request: key.request,
            })
        })
        .collect()
}

/// One `PhaseSeries` per non-empty key, in key order.
pub fn to_phase_series(phases: PhaseHistograms) -> Result<Vec<PhaseSeries>, ReportError> {
    let mut entries: Vec<(PhaseKey, Histogram<u64>)> =
        phases.into_iter().filter(|(_, h)| !h.is_empty()).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut serializer = V2Serializer::new();
    entries
        .into_iter()
        .map(|(key, hist)| {
            let mut hdr = Vec::new();
            serializer
                .serialize(&hist, &mut hdr)
                .map_err(|e| ReportError::Phase {
                    key: key.clone(),
                    reason: format!("{e:?}"),
                })?;
            Ok(PhaseSeries {
                target: key.target,
                arch: key.arch.to_string(),
                phase: key.phase as i32,
                count: hist.len(),
                hdr,
            })
        })
        .collect()
}

/// The failure reasons as the report carries them.
pub fn to_error_reasons(reasons: Vec<ReasonCount>) -> Vec<ErrorReason> {
    reasons
        .into_iter()
        .map(|r| ErrorReason {
            target: r.target,
            outcome: r.outcome as i32,
            reason: r.reason.to_string(),
            count: r.count,
        })
        .collect()
}

/// Serializes the send-lag histogram the way series carry theirs (plain V2).
pub fn encode_send_lag(hist: &Histogram<u64>) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    V2Serializer::new()
        .serialize(hist, &mut out)
        .map_err(|e| ReportError::SendLag(format!("{e:?}")))?;
    Ok(out)
}

/// Decodes a serialized histogram (V2, with or without deflate).
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, ReportError> {
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| ReportError::Decode(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::new_histogram;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use stampede_proto::Outcome;
    use std::sync::Arc;

    fn key(arch: &str) -> Key {
        Key {
            target: 0,
            arch: Arc::from(arch),
            outcome: Outcome::Status2xx,
            unexpected: false,
            request: 0,
        }
    }

    #[test]
    fn merged_serialized_intervals_equal_one_histogram() {
        let mut rng = SmallRng::seed_from_u64(5);
        let mut whole = new_histogram();
        let mut intervals = Vec::new();
        // Ten intervals of wide-ranging latencies, each recorded on three "threads".
        for _ in 0..10 {
            let shards: Vec<Histograms> = (0..3)
                .map(|_| {
                    let mut h = new_histogram();
                    for _ in 0..2_000 {
                        // Log-uniform from 1 µs to ~1000 s.
                        let v = 10f64.powf(rng.random_range(0.0..9.0)) as u64;
                        h.saturating_record(v.max(1));
                        whole.saturating_record(v.max(1));
                    }
                    Histograms::from([(key("arm64"), h)])
                })
                .collect();
            intervals.push(to_series(merge(shards).unwrap()).unwrap());
        }
        // The master's side: decode every interval and add.
        let mut total = new_histogram();
        for series in intervals.iter().flatten() {
            let h = decode(&series.hdr).unwrap();
            assert_eq!(h.len(), series.count);
            total.add(&h).unwrap();
        }
        assert_eq!(total.len(), whole.len());
        assert_eq!(total.min(), whole.min());
        assert_eq!(total.max(), whole.max());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                total.value_at_quantile(q),
                whole.value_at_quantile(q),
                "q {q}"
            );
        }
        // Bucket for bucket, the same counts.
        let a: Vec<_> = total
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        let b: Vec<_> = whole
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn series_per_key_sorted_and_counted() {
        let mut a = new_histogram();
        a.record(10).unwrap();
        let mut b = new_histogram();
        b.record(20).unwrap();
        b.record(30).unwrap();
        let merged = merge([
            Histograms::from([(key("arm64"), a.clone())]),
            Histograms::from([(key("amd64"), b), (key("arm64"), a)]),
        ])
        .unwrap();
        let series = to_series(merged).unwrap();
        let summary: Vec<_> = series.iter().map(|s| (s.arch.as_str(), s.count)).collect();
        assert_eq!(summary, vec![("amd64", 2), ("arm64", 2)]);
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(decode(b"not a histogram").is_err());
    }
}
