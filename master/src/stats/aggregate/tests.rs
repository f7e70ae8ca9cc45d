use super::*;
use crate::stats::{Class, Series};

/// Counts a report as coming from the worker process its id names.
fn ingest(a: &mut Aggregator, r: &Report) -> Result<Ingested, IngestError> {
    a.ingest(&r.worker_id, r)
}

fn agg() -> Aggregator {
    Aggregator::new(
        "run".into(),
        1000,
        vec![
            TargetInfo {
                name: "arm".into(),
                arch: "arm64".into(),
            },
            TargetInfo {
                name: "amd".into(),
                arch: "amd64".into(),
            },
        ],
        1,
    )
}

fn report(worker: &str, seq: u64, end_ms: u64, series: Vec<Series>) -> Report {
    Report {
        run_id: "run".into(),
        worker_id: worker.into(),
        seq,
        start_ms: end_ms.saturating_sub(1000),
        end_ms,
        users: 2,
        is_final: false,
        dropped: 0,
        completed_stage: 0,
        series,
        send_lag: None,
        phases: Vec::new(),
        reasons: Vec::new(),
    }
}

fn series(target: u32, arch: &str, class: Class, values: &[u64]) -> Series {
    let mut hist = new_histogram();
    for &v in values {
        hist.record(v).unwrap();
    }
    Series {
        target,
        request: 0,
        arch: arch.into(),
        class,
        unexpected: false,
        count: values.len() as u64,
        hist: crate::stats::latencies::Latencies::from(&hist),
    }
}

#[test]
fn duplicates_are_counted_once() {
    let mut a = agg();
    let r = report(
        "w1",
        1,
        1000,
        vec![series(0, "arm64", Class::Status(2), &[100, 200])],
    );
    assert_eq!(
        ingest(&mut a, &r),
        Ok(Ingested::Counted { bucket: Some(1) })
    );
    assert_eq!(ingest(&mut a, &r), Ok(Ingested::Duplicate));
    let r3 = report(
        "w1",
        3,
        3000,
        vec![series(0, "arm64", Class::Status(5), &[1])],
    );
    assert_eq!(
        ingest(&mut a, &r3),
        Ok(Ingested::Counted { bucket: Some(3) })
    );
    assert_eq!(ingest(&mut a, &r3), Ok(Ingested::Duplicate));
    let r2 = report("w1", 2, 2000, vec![]);
    assert_eq!(
        ingest(&mut a, &r2),
        Ok(Ingested::Counted { bucket: Some(2) })
    );
    // Another worker's seq 1 is a different report.
    let other = report(
        "w2",
        1,
        1000,
        vec![series(1, "amd64", Class::Status(2), &[5])],
    );
    assert_eq!(
        ingest(&mut a, &other),
        Ok(Ingested::Counted { bucket: Some(1) })
    );
    let t = a.totals();
    assert_eq!(t.requests, 4);
    assert_eq!(t.count_5xx(), 1);
}

#[test]
fn sparse_sequence_numbers_stay_bounded() {
    let mut t = SeqTracker::default();
    for i in 0..(MAX_SEQ_GAPS as u64 + 100) {
        assert!(t.insert(1_000 + i * 7));
    }
    assert!(t.above.len() <= MAX_SEQ_GAPS);
    assert!(
        !t.insert(1_000),
        "an early number given up on is not counted again"
    );
    assert!(t.insert(u64::MAX));
}

#[test]
fn arch_comes_from_the_series_not_the_target() {
    let mut a = agg();
    // Target "arm" answered by an amd64 server (e.g. a mis-pinned pod): counted as amd64.
    let r = report(
        "w1",
        1,
        1000,
        vec![series(0, "amd64", Class::Status(2), &[100])],
    );
    ingest(&mut a, &r).unwrap();
    let by_arch = a.by_arch();
    assert_eq!(by_arch["amd64"].requests, 1);
    assert!(!by_arch.contains_key("arm64"));
    assert_eq!(a.by_target()[0].requests, 1);
}

#[test]
fn wrong_run_and_unknown_indexes_are_rejected() {
    let mut a = agg();
    let mut r = report("w1", 1, 1000, vec![]);
    r.run_id = "other".into();
    assert!(matches!(
        ingest(&mut a, &r),
        Err(IngestError::WrongRun { .. })
    ));
    let r = report(
        "w1",
        1,
        1000,
        vec![series(7, "arm64", Class::Status(2), &[1])],
    );
    assert_eq!(ingest(&mut a, &r), Err(IngestError::UnknownTarget(7)));
    // A rejected report does not burn its sequence number.
    let r = report(
        "w1",
        1,
        1000,
        vec![series(0, "arm64", Class::Status(2), &[1])],
    );
    assert_eq!(
        ingest(&mut a, &r),
        Ok(Ingested::Counted { bucket: Some(1) })
    );
}

#[test]
fn too_many_arch_labels_are_rejected() {
    let mut a = agg();
    let many: Vec<Series> = (0..MAX_ARCHES)
        .map(|i| series(0, &format!("a{i}"), Class::Status(2), &[1]))
        .collect();
    let r = report("w1", 1, 1000, many);
    assert_eq!(ingest(&mut a, &r), Err(IngestError::TooManyArches));
}

#[test]
fn series_buckets_by_interval_and_worker_offset() {
    let mut a = agg();
    a.worker_started("w1", 0);
    a.worker_started("w2", 2000); // joined two seconds in
    ingest(
        &mut a,
        &report(
            "w1",
            1,
            1003,
            vec![series(0, "arm64", Class::Status(2), &[1000; 10])],
        ),
    )
    .unwrap();
    ingest(
        &mut a,
        &report(
            "w1",
            2,
            2001,
            vec![series(0, "arm64", Class::Status(5), &[1000; 4])],
        ),
    )
    .unwrap();
    ingest(
        &mut a,
        &report(
            "w2",
            1,
            998,
            vec![series(1, "amd64", Class::Status(2), &[2000; 6])],
        ),
    )
    .unwrap();
    a.close_intervals(2500);
    assert_eq!(a.series().len(), 1, "interval 2 is still open");
    a.close_all();
    let s = a.series();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].t, 1.0);
    assert_eq!(s[0].by_arch["arm64"].requests, 10);
    assert_eq!(s[1].by_arch["arm64"].ratio_5xx, 1.0);
    assert_eq!(s[2].t, 3.0);
    assert_eq!(s[2].by_arch["amd64"].rps, 6.0);
    assert_eq!(s[2].users, 2);
    // A report for a closed interval still counts in the totals.
    ingest(
        &mut a,
        &report(
            "w1",
            3,
            1000,
            vec![series(0, "arm64", Class::Status(2), &[1])],
        ),
    )
    .unwrap();
    assert_eq!(a.late_requests(), 1);
    assert_eq!(a.totals().requests, 21);
}

/// Phases and reasons are counted with their report, exactly once: a resend adds nothing, and
/// a report naming a target the run lacks is refused whole.
#[test]
fn phases_and_reasons_count_once_and_name_known_targets() {
    use crate::stats::{PhaseSeries, ReasonCount};
    let mut a = agg();
    let with_phases = |seq: u64, target: u32| Report {
        phases: vec![PhaseSeries {
            target,
            arch: "arm64".into(),
            phase: 2,
            hist: series(0, "arm64", Class::Status(2), &[2000, 3000]).hist,
        }],
        reasons: vec![ReasonCount {
            target,
            class: Class::Error(4),
            reason: "expired".into(),
            count: 1,
        }],
        ..report("w", seq, seq * 1000, vec![])
    };
    ingest(&mut a, &with_phases(1, 0)).unwrap();
    assert_eq!(ingest(&mut a, &with_phases(1, 0)), Ok(Ingested::Duplicate));
    ingest(&mut a, &with_phases(2, 0)).unwrap();
    assert_eq!(
        ingest(&mut a, &with_phases(3, 9)),
        Err(IngestError::UnknownTarget(9))
    );
    let tls = &a.phases().by_arch()["arm64"][2];
    assert_eq!(tls.len(), 4);
    let rows = a.phases().failures(&["arm", "amd"]);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].kind.as_str(), rows[0].count), ("tls", 2));
}
