//! Summary cost (bench/summary.sh): builds the aggregate of a synthetic one-hour run (4 targets,
//! 2 arches, 3,600 one-second intervals of realistic histograms), then times building the
//! summary (`stats::summary`) and `Summary::write` and prints the file's size. Goal: under 1 s
//! and 10 MB. Each interval also carries phases (connect, TLS, TTFB per target) and TLS
//! failure reasons, as an HTTPS run's reports do.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use stampede_master::scenario;
use stampede_master::stats::{
    self, Aggregator, Class, Latencies, PhaseSeries, ReasonCount, Report, RunFacts, Series,
    TargetInfo,
};
use stampede_proto::hdr::new_histogram;

const INTERVALS: u64 = 3600;
const TARGETS: u32 = 4;
/// The scenario the summary echoes: four targets, one request.
const SCENARIO: &str = r#"
name = "summary cost"
run_time = "1h"
[[target]]
name = "target-0"
url = "http://127.0.0.1:1"
arch = "arm64"
[[target]]
name = "target-1"
url = "http://127.0.0.1:2"
arch = "amd64"
[[target]]
name = "target-2"
url = "http://127.0.0.1:3"
arch = "arm64"
[[target]]
name = "target-3"
url = "http://127.0.0.1:4"
arch = "amd64"
[[request]]
name = "get"
[load]
users = 500
"#;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "summary-cost.json".to_owned());
    let targets: Vec<TargetInfo> = (0..TARGETS)
        .map(|i| TargetInfo {
            name: format!("target-{i}"),
            arch: if i % 2 == 0 { "arm64" } else { "amd64" }.to_owned(),
        })
        .collect();
    let mut agg = Aggregator::new("bench".into(), 1000, targets, 1);
    agg.worker_started("w", 0);
    // A few interval shapes (2xx around 20 ms, 5xx around 40 ms), reused across the hour.
    let shapes: Vec<(Latencies, Latencies)> = (0..8)
        .map(|seed| (spread(900, 20_000, seed), spread(30, 40_000, seed + 100)))
        .collect();
    // Phases: a few new connections (connect ~0.3 ms, TLS ~2 ms) and every response's TTFB.
    let phase_shapes: Vec<[Latencies; 3]> = (0..8)
        .map(|seed| {
            [
                spread(5, 300, seed + 200),
                spread(5, 2_000, seed + 300),
                spread(900, 18_000, seed + 400),
            ]
        })
        .collect();
    let built = Instant::now();
    for k in 1..=INTERVALS {
        let (ok, bad) = &shapes[(k % 8) as usize];
        let series = (0..TARGETS)
            .flat_map(|t| {
                let arch = if t % 2 == 0 { "arm64" } else { "amd64" };
                [(Class::Status(2), ok), (Class::Status(5), bad)].map(|(class, l)| Series {
                    target: t,
                    request: 0,
                    arch: arch.to_owned(),
                    class,
                    unexpected: class == Class::Status(5),
                    count: l.len(),
                    hist: l.clone(),
                })
            })
            .collect();
        let arch_of = |t: u32| {
            if t.is_multiple_of(2) {
                "arm64"
            } else {
                "amd64"
            }
        };
        let phases = (0..TARGETS)
            .flat_map(|t| {
                let shapes = &phase_shapes[(k % 8) as usize];
                (1..=3).map(move |phase| PhaseSeries {
                    target: t,
                    arch: arch_of(t).to_owned(),
                    phase,
                    hist: shapes[phase - 1].clone(),
                })
            })
            .collect();
        let reasons = (0..TARGETS)
            .map(|t| ReasonCount {
                target: t,
                class: Class::Error(4),
                reason: "handshake failure".to_owned(),
                count: 2,
            })
            .collect();
        let report = Report {
            run_id: "bench".into(),
            worker_id: "w".into(),
            seq: k,
            start_ms: (k - 1) * 1000,
            end_ms: k * 1000,
            users: 500,
            is_final: k == INTERVALS,
            dropped: 0,
            completed_stage: 0,
            series,
            send_lag: None,
            phases,
            reasons,
        };
        agg.ingest("w", &report)?;
        agg.close_intervals(k * 1000 + 1000);
    }
    agg.close_all();
    eprintln!(
        "aggregate of {INTERVALS} intervals built in {:.2?} ({} series points)",
        built.elapsed(),
        agg.series().len()
    );

    let scenario = scenario::parse(Path::new("summary-cost.toml"), SCENARIO, &[])?;
    let t0 = Instant::now();
    let summary = stats::summary(
        &agg,
        RunFacts {
            scenario: &scenario,
            started_at: SystemTime::now(),
            ended_at: SystemTime::now(),
            duration: Duration::from_secs(INTERVALS),
            workers: Vec::new(),
            capacity: None,
            aborted: None,
            master: None,
        },
    );
    let build = t0.elapsed();
    let t1 = Instant::now();
    summary.write(Path::new(&path))?;
    let write = t1.elapsed();
    let size = std::fs::metadata(&path)?.len();
    println!(
        "summary of a 1 h run, {TARGETS} targets: build {:.1} ms, write {:.1} ms, total {:.1} ms, file {:.2} MB",
        build.as_secs_f64() * 1e3,
        write.as_secs_f64() * 1e3,
        (build + write).as_secs_f64() * 1e3,
        size as f64 / 1e6
    );
    Ok(())
}

/// `n` latencies spread around `median_us`.
fn spread(n: u64, median_us: u64, seed: u64) -> Latencies {
    let mut h: Histogram<u64> = new_histogram();
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for _ in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        h.saturating_record(median_us / 2 + state % median_us);
    }
    Latencies::from(&h)
}
