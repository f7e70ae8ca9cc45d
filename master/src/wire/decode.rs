//! Decoding and checking interval reports as they arrive, on the connection's task, so that the
//! aggregator only ever sees well-formed data and decoding cost spreads over the runtime.

use stampede_proto as pb;

use crate::stats::{Class, Decoder, LatenciesError, PhaseSeries, ReasonCount, Report, Series};

/// Longest arch label accepted; arch labels come from response headers, i.e. the network.
pub const MAX_ARCH_LEN: usize = 64;
/// Most series one report may carry (targets × arches × outcomes × requests stays far below).
/// Each decodes to a full-size histogram (~190 KB), so this bounds a report's memory.
pub const MAX_SERIES: usize = 1024;
/// Most requests one report may count: far above what a worker can send in an interval, far
/// below what could overflow the totals.
pub const MAX_REQUESTS: u64 = 10_000_000_000;
/// Latest interval end accepted, ms since the worker started the run (100 days).
pub const MAX_END_MS: u64 = 100 * 24 * 3600 * 1000;
/// Most phase series one report may carry (targets × arches × 4 phases stays far below).
pub const MAX_PHASES: usize = 1024;
/// Most failure reason rows one report may carry.
pub const MAX_REASON_ROWS: usize = 1024;
/// Longest failure reason accepted (workers send short names from a fixed set).
pub const MAX_REASON_LEN: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("sequence number 0 is not valid")]
    ZeroSeq,
    #[error("interval ends ({end} ms) before it starts ({start} ms)")]
    BadInterval { start: u64, end: u64 },
    #[error("{0} series in one report (at most {MAX_SERIES})")]
    TooManySeries(usize),
    #[error("series {index}: unknown outcome {value}")]
    UnknownOutcome { index: usize, value: i32 },
    #[error("series {index}: arch label empty or longer than {MAX_ARCH_LEN} bytes")]
    BadArch { index: usize },
    #[error("series {index}: histogram does not decode: {message}")]
    Histogram { index: usize, message: String },
    #[error("series {index}: histogram bounds differ from 1 µs … 1 h at 3 figures")]
    Bounds { index: usize },
    #[error("series {index}: count {count} but the histogram holds {held}")]
    CountMismatch { index: usize, count: u64, held: u64 },
    #[error("more than {MAX_REQUESTS} requests (or dropped arrivals) in one report")]
    AbsurdCount,
    #[error("send-lag histogram does not decode: {0}")]
    SendLag(String),
    #[error("interval end {0} ms is past any possible run")]
    AbsurdTime(u64),
    #[error("{0} phase series in one report (at most {MAX_PHASES})")]
    TooManyPhases(usize),
    #[error("phase series {index}: arch label empty or longer than {MAX_ARCH_LEN} bytes")]
    PhaseArch { index: usize },
    #[error("phase series {index}: {message}")]
    PhaseHistogram { index: usize, message: String },
    #[error("{0} failure reasons in one report (at most {MAX_REASON_ROWS})")]
    TooManyReasons(usize),
    #[error("failure reason {index}: unknown outcome {value}")]
    ReasonOutcome { index: usize, value: i32 },
    #[error("failure reason {index}: empty or longer than {MAX_REASON_LEN} bytes")]
    BadReason { index: usize },
}

thread_local! {
    /// One histogram decoder per runtime thread: decoding never waits, so connections on the
    /// same thread never need it at the same time (one per connection would hold its buffers
    /// thousands of times over).
    static DECODER: std::cell::RefCell<Decoder> = std::cell::RefCell::new(Decoder::new());
}

/// Decodes a report and checks everything that can be checked without the run's context.
pub fn decode(report: pb::Report) -> Result<Report, DecodeError> {
    DECODER.with(|d| match d.try_borrow_mut() {
        Ok(mut decoder) => decode_with(&mut decoder, report),
        // Only a decode that re-entered itself could find it taken; never on this path.
        Err(_) => decode_with(&mut Decoder::new(), report),
    })
}

/// [`decode`] with a histogram decoder kept from one report to the next (one per connection).
pub fn decode_with(decoder: &mut Decoder, report: pb::Report) -> Result<Report, DecodeError> {
    if report.seq == 0 {
        return Err(DecodeError::ZeroSeq);
    }
    if report.end_ms < report.start_ms {
        return Err(DecodeError::BadInterval {
            start: report.start_ms,
            end: report.end_ms,
        });
    }
    if report.end_ms > MAX_END_MS {
        return Err(DecodeError::AbsurdTime(report.end_ms));
    }
    if report.series.len() > MAX_SERIES {
        return Err(DecodeError::TooManySeries(report.series.len()));
    }
    let claimed = report
        .series
        .iter()
        .try_fold(report.dropped, |sum, s| sum.checked_add(s.count));
    if claimed.is_none_or(|n| n > MAX_REQUESTS) {
        return Err(DecodeError::AbsurdCount);
    }
    let series = report
        .series
        .into_iter()
        .enumerate()
        .map(|(index, s)| decode_series(decoder, index, s))
        .collect::<Result<_, _>>()?;
    let send_lag = if report.send_lag.is_empty() {
        None
    } else {
        let lag = decoder
            .decode(&report.send_lag)
            .map_err(|e| DecodeError::SendLag(e.to_string()))?;
        if lag.len() > MAX_REQUESTS {
            return Err(DecodeError::AbsurdCount);
        }
        Some(lag)
    };
    let phases = decode_phases(decoder, report.phases)?;
    let reasons = decode_reasons(report.errors)?;
    Ok(Report {
        run_id: report.run_id,
        worker_id: report.worker_id,
        seq: report.seq,
        start_ms: report.start_ms,
        end_ms: report.end_ms,
        users: report.users,
        is_final: report.r#final,
        dropped: report.dropped,
        completed_stage: report.completed_stage,
        series,
        send_lag,
        phases,
        reasons,
    })
}

/// The phase series, checked like the latency series; a phase this master does not know (a
/// newer worker's) is left out rather than refusing the report's requests.
fn decode_phases(
    decoder: &mut Decoder,
    phases: Vec<pb::PhaseSeries>,
) -> Result<Vec<PhaseSeries>, DecodeError> {
    if phases.len() > MAX_PHASES {
        return Err(DecodeError::TooManyPhases(phases.len()));
    }
    let mut out = Vec::with_capacity(phases.len());
    for (index, p) in phases.into_iter().enumerate() {
        let phase = match pb::Phase::try_from(p.phase) {
            Ok(pb::Phase::Dns) => 0,
            Ok(pb::Phase::Connect) => 1,
            Ok(pb::Phase::Tls) => 2,
            Ok(pb::Phase::Ttfb) => 3,
            Ok(pb::Phase::Unspecified) | Err(_) => continue,
        };
        if p.arch.is_empty() || p.arch.len() > MAX_ARCH_LEN {
            return Err(DecodeError::PhaseArch { index });
        }
        let bad = |message: String| DecodeError::PhaseHistogram { index, message };
        let hist = decoder.decode(&p.hdr).map_err(|e| bad(e.to_string()))?;
        if hist.len() != p.count {
            return Err(bad(format!(
                "count {} but the histogram holds {}",
                p.count,
                hist.len()
            )));
        }
        if hist.len() > MAX_REQUESTS {
            return Err(DecodeError::AbsurdCount);
        }
        out.push(PhaseSeries {
            target: p.target,
            arch: p.arch,
            phase,
            hist,
        });
    }
    Ok(out)
}

fn decode_reasons(errors: Vec<pb::ErrorReason>) -> Result<Vec<ReasonCount>, DecodeError> {
    if errors.len() > MAX_REASON_ROWS {
        return Err(DecodeError::TooManyReasons(errors.len()));
    }
    let claimed = errors
        .iter()
        .try_fold(0u64, |sum, e| sum.checked_add(e.count));
    if claimed.is_none_or(|n| n > MAX_REQUESTS) {
        return Err(DecodeError::AbsurdCount);
    }
    errors
        .into_iter()
        .enumerate()
        .map(|(index, e)| {
            let class = Class::from_wire(e.outcome).ok_or(DecodeError::ReasonOutcome {
                index,
                value: e.outcome,
            })?;
            if e.reason.is_empty() || e.reason.len() > MAX_REASON_LEN {
                return Err(DecodeError::BadReason { index });
            }
            Ok(ReasonCount {
                target: e.target,
                class,
                reason: e.reason,
                count: e.count,
            })
        })
        .collect()
}

fn decode_series(
    decoder: &mut Decoder,
    index: usize,
    s: pb::Series,
) -> Result<Series, DecodeError> {
    let class = Class::from_wire(s.outcome).ok_or(DecodeError::UnknownOutcome {
        index,
        value: s.outcome,
    })?;
    if s.arch.is_empty() || s.arch.len() > MAX_ARCH_LEN {
        return Err(DecodeError::BadArch { index });
    }
    let hist = decoder.decode(&s.hdr).map_err(|e| match e {
        LatenciesError::Bounds => DecodeError::Bounds { index },
        e => DecodeError::Histogram {
            index,
            message: e.to_string(),
        },
    })?;
    if hist.len() != s.count {
        return Err(DecodeError::CountMismatch {
            index,
            count: s.count,
            held: hist.len(),
        });
    }
    Ok(Series {
        target: s.target,
        request: s.request,
        arch: s.arch,
        class,
        unexpected: s.unexpected,
        count: s.count,
        hist,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The V2 serialization format's cookies and header size, to forge hostile encodings.
    const V2_COOKIE: u32 = 0x1c84_9313;
    const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
    use hdrhistogram::Histogram;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
    use stampede_proto::hdr;
    use stampede_proto::hdr::new_histogram;

    fn encode(h: &Histogram<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        V2DeflateSerializer::new().serialize(h, &mut out).unwrap();
        out
    }

    fn report_with(series: pb::Series) -> pb::Report {
        pb::Report {
            run_id: "r".into(),
            worker_id: "w".into(),
            seq: 1,
            start_ms: 0,
            end_ms: 1000,
            series: vec![series],
            ..Default::default()
        }
    }

    fn series(h: &Histogram<u64>, count: u64) -> pb::Series {
        pb::Series {
            target: 0,
            arch: "arm64".into(),
            outcome: pb::Outcome::Status2xx as i32,
            unexpected: false,
            count,
            hdr: encode(h),
            request: 0,
        }
    }

    /// Merging serialized interval histograms gives exactly the histogram of all the values.
    #[test]
    fn merging_serialized_intervals_equals_recording_everything_once() {
        let mut all = new_histogram();
        let mut merged = new_histogram();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _interval in 0..20 {
            let mut interval = new_histogram();
            for _ in 0..5000 {
                // xorshift: a spread of latencies from 1 µs to ~4 s.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = 1 + state % 4_000_000;
                interval.record(v).unwrap();
                all.record(v).unwrap();
            }
            let count = interval.len();
            let decoded = decode(report_with(series(&interval, count))).unwrap();
            decoded.series[0].hist.add_to(&mut merged);
        }
        assert_eq!(merged, all);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(merged.value_at_quantile(q), all.value_at_quantile(q));
        }
    }

    #[test]
    fn count_must_match_histogram() {
        let mut h = new_histogram();
        h.record(10).unwrap();
        let e = decode(report_with(series(&h, 2))).unwrap_err();
        assert!(matches!(e, DecodeError::CountMismatch { .. }));
    }

    #[test]
    fn garbage_histogram_is_rejected() {
        let mut s = series(&new_histogram(), 0);
        s.hdr = vec![1, 2, 3, 4, 5];
        let e = decode(report_with(s)).unwrap_err();
        assert!(matches!(e, DecodeError::Histogram { .. }));
    }

    #[test]
    fn other_bounds_are_rejected() {
        let h = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        let e = decode(report_with(series(&h, 0))).unwrap_err();
        assert!(e.to_string().contains("bounds"), "{e}");
    }

    /// V2+deflate bytes around an inflated V2 header and payload, as a hostile worker makes them.
    fn hostile(payload_len: u32, digits: u32, high: u64, payload: &[u8]) -> Vec<u8> {
        use flate2::write::ZlibEncoder;
        use std::io::Write;
        let mut inner = Vec::new();
        inner.extend_from_slice(&V2_COOKIE.to_be_bytes());
        inner.extend_from_slice(&payload_len.to_be_bytes());
        inner.extend_from_slice(&0u32.to_be_bytes());
        inner.extend_from_slice(&digits.to_be_bytes());
        inner.extend_from_slice(&1u64.to_be_bytes());
        inner.extend_from_slice(&high.to_be_bytes());
        inner.extend_from_slice(&1f64.to_bits().to_be_bytes());
        inner.extend_from_slice(payload);
        let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&inner).unwrap();
        let deflated = z.finish().unwrap();
        let mut out = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        out.extend_from_slice(&(deflated.len() as u32).to_be_bytes());
        out.extend_from_slice(&deflated);
        out
    }

    fn hdr_error(bytes: Vec<u8>, count: u64) -> String {
        let mut s = series(&new_histogram(), count);
        s.hdr = bytes;
        match decode(report_with(s)) {
            Err(DecodeError::Histogram { message, .. }) => message,
            other => panic!("expected a histogram error, got {other:?}"),
        }
    }

    /// Headers that would make the decoder allocate gigabytes, inflate bombs and counts that
    /// make it panic are all plain errors, decided without the allocation.
    #[test]
    fn hostile_histograms_are_rejected_cheaply() {
        // A 4 GiB payload announced in 60 bytes.
        let m = hdr_error(hostile(u32::MAX - 16, 3, hdr::HIGHEST_US, &[]), 0);
        assert!(m.contains("truncated"), "{m}");
        // Bounds that mean a 25 MB counts array.
        match decode(report_with(pb::Series {
            hdr: hostile(0, 5, u64::MAX, &[]),
            ..series(&new_histogram(), 0)
        })) {
            Err(DecodeError::Bounds { .. }) => {}
            other => panic!("expected a bounds error, got {other:?}"),
        }
        // 64 MiB of zeros deflate to ~64 KB: inflating stops at the bound.
        let bomb = vec![0u8; 64 << 20];
        let m = hdr_error(hostile(bomb.len() as u32, 3, hdr::HIGHEST_US, &bomb), 0);
        assert!(m.contains("inflates beyond"), "{m}");
        // zigzag(u64::MAX) is i64::MIN, which the decoder negates.
        let min = [0xffu8; 9];
        let m = hdr_error(hostile(9, 3, hdr::HIGHEST_US, &min), 0);
        assert!(!m.is_empty());
        // The compressed length must be what follows.
        let mut cut = hostile(0, 3, hdr::HIGHEST_US, &[]);
        cut.truncate(cut.len() - 1);
        let m = hdr_error(cut, 0);
        assert!(m.contains("truncated"), "{m}");
        assert!(hdr_error(Vec::new(), 0).contains("truncated"));
        assert!(hdr_error(b"garbage!".to_vec(), 0).contains("not an HdrHistogram"));
    }

    #[test]
    fn absurd_counts_and_times_are_rejected() {
        let mut h = new_histogram();
        h.record_n(1000, 1 << 62).unwrap();
        let e = decode(report_with(series(&h, 1 << 62))).unwrap_err();
        assert_eq!(e, DecodeError::AbsurdCount);
        let mut r = report_with(series(&new_histogram(), 0));
        r.dropped = u64::MAX;
        assert_eq!(decode(r).unwrap_err(), DecodeError::AbsurdCount);
        let mut r = report_with(series(&new_histogram(), 0));
        r.end_ms = u64::MAX;
        assert!(matches!(decode(r), Err(DecodeError::AbsurdTime(_))));
    }

    /// Phases and reasons decode with their counts; bad ones are refused, unknown phases
    /// (a newer worker's) skipped.
    #[test]
    fn phases_and_reasons_decode_and_are_checked() {
        let mut h = new_histogram();
        h.record_n(20_000, 3).unwrap();
        let phase = |phase: pb::Phase, count: u64| pb::PhaseSeries {
            target: 0,
            arch: "arm64".into(),
            phase: phase as i32,
            count,
            hdr: encode(&h),
        };
        let reason = |reason: &str| pb::ErrorReason {
            target: 0,
            outcome: pb::Outcome::ErrorTls as i32,
            reason: reason.into(),
            count: 2,
        };
        let mut r = report_with(series(&new_histogram(), 0));
        r.phases = vec![
            phase(pb::Phase::Ttfb, 3),
            pb::PhaseSeries {
                phase: 42,
                ..phase(pb::Phase::Tls, 3)
            },
        ];
        r.errors = vec![reason("unknown issuer")];
        let d = decode(r.clone()).unwrap();
        assert_eq!(d.phases.len(), 1);
        assert_eq!((d.phases[0].phase, d.phases[0].hist.len()), (3, 3));
        assert_eq!(d.reasons[0].class, Class::Error(4));
        assert_eq!(
            (d.reasons[0].reason.as_str(), d.reasons[0].count),
            ("unknown issuer", 2)
        );
        let mut bad = r.clone();
        bad.phases = vec![phase(pb::Phase::Connect, 4)];
        assert!(matches!(
            decode(bad),
            Err(DecodeError::PhaseHistogram { .. })
        ));
        let mut bad = r.clone();
        bad.errors = vec![reason(&"x".repeat(65))];
        assert!(matches!(decode(bad), Err(DecodeError::BadReason { .. })));
        let mut bad = r;
        bad.errors = vec![
            pb::ErrorReason {
                count: u64::MAX,
                ..reason("a")
            },
            reason("b"),
        ];
        assert_eq!(decode(bad).unwrap_err(), DecodeError::AbsurdCount);
    }

    #[test]
    fn bad_arch_and_outcome_are_rejected() {
        let h = new_histogram();
        let mut s = series(&h, 0);
        s.arch = "x".repeat(65);
        assert!(matches!(
            decode(report_with(s)),
            Err(DecodeError::BadArch { .. })
        ));
        let mut s = series(&h, 0);
        s.outcome = 77;
        assert!(matches!(
            decode(report_with(s)),
            Err(DecodeError::UnknownOutcome { .. })
        ));
    }
}
