//! The open and closed models against real loopback servers: a stall shows in the open model's
//! latency (no coordinated omission) and what the closed model shows instead, the in-flight
//! bound and its dropped arrivals, and fixed-count quotas sent exactly.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hdrhistogram::Histogram;
use stampede_worker::proto::{self, Arrivals, LoadModel, Outcome, RunConfig, WaitKind};
use stampede_worker::record::{Histograms, new_histogram};
use stampede_worker::{Engine, Level, report};

const STOP_TIMEOUT: Duration = Duration::from_secs(10);

fn open_config(url: &str, arrivals: Arrivals, max_in_flight: u32) -> RunConfig {
    let mut c = run_config(url, "amd64", "/");
    c.model = LoadModel::Open as i32;
    c.arrivals = arrivals as i32;
    c.max_in_flight = max_in_flight;
    c
}

fn rate(r: f64) -> Level {
    Level {
        rate: r,
        ..Default::default()
    }
}

fn users(n: u32) -> Level {
    Level {
        users: n,
        ..Default::default()
    }
}

/// Runs for `run_for`, stops, and returns everything recorded.
async fn run_for(engine: &mut Engine, run_for: Duration) -> Histograms {
    let mut parts = Vec::new();
    let end = Instant::now() + run_for;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        parts.extend(engine.take_shards());
    }
    assert_eq!(engine.stop(STOP_TIMEOUT).await, 0, "nothing abandoned");
    parts.extend(engine.take_shards());
    report::merge(parts).unwrap()
}

fn latency_2xx(h: &Histograms) -> Histogram<u64> {
    let mut all = new_histogram();
    for (k, v) in h {
        if k.outcome == Outcome::Status2xx {
            all.add(v).unwrap();
        }
    }
    all
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_open_model_latency_and_hides_from_the_closed_model() {
    let stall = Duration::from_secs(1);
    // Open model: 200 arrivals/s; the 200th request (about 1 s in) stalls the server for 1 s.
    let server = http_server(Behaviour {
        arch: Some("arm64"),
        stall: Some((200, stall)),
        ..Default::default()
    })
    .await;
    let config = open_config(&server.url(""), Arrivals::Poisson, 1000);
    let mut engine = Engine::build(&config, 2).unwrap();
    engine.apply(0, &[rate(200.0)]).unwrap();
    let recorded = run_for(&mut engine, Duration::from_secs(4)).await;
    let served = server.counts.served();
    assert_eq!(total(&recorded), served, "every request recorded once");
    assert_eq!(engine.take_dropped(), 0);
    let stalled = server
        .counts
        .stalled
        .load(std::sync::atomic::Ordering::SeqCst);
    // The arrivals kept coming while the server stalled: about 200 of them waited.
    assert!(stalled > 100, "{stalled} requests met the stall");
    let open = latency_2xx(&recorded);
    let (p50, p99) = (open.value_at_quantile(0.5), open.value_at_quantile(0.99));
    eprintln!(
        "open model: {} requests, {stalled} stalled, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        open.len(),
        ms(p50),
        ms(p99),
        ms(open.max())
    );
    assert!(
        ms(p99) >= 0.8 * stall.as_secs_f64() * 1000.0,
        "p99 {:.1} ms does not show a 1 s stall",
        ms(p99)
    );
    assert!(ms(p50) < 200.0, "p50 {:.1} ms", ms(p50));
    // The worker itself kept the schedule through the stall: every sent arrival has a send
    // lag, and none of them comes near the stall that the latency shows.
    let lag = engine.take_send_lag().expect("arrivals were sent");
    eprintln!(
        "open model send lag: {} arrivals, p99 {:.2} ms, max {:.2} ms",
        lag.len(),
        ms(lag.value_at_quantile(0.99)),
        ms(lag.max())
    );
    assert_eq!(lag.len(), served, "one send lag per request sent");
    assert!(
        ms(lag.value_at_quantile(0.99)) < 100.0,
        "send lag p99 {:.1} ms",
        ms(lag.value_at_quantile(0.99))
    );

    // Closed model, same server behaviour: 4 users, 5 ms think time. Only the 4 requests in
    // flight wait out the stall; the users send nothing meanwhile, so the stall is one request
    // per user among thousands: it shows in max, not in p99 (coordinated omission).
    let server = http_server(Behaviour {
        arch: Some("arm64"),
        stall: Some((200, stall)),
        ..Default::default()
    })
    .await;
    let mut config = run_config(&server.url(""), "amd64", "/");
    config.wait = Some(proto::Wait {
        kind: WaitKind::Constant as i32,
        a_us: 5_000,
        ..Default::default()
    });
    let mut engine = Engine::build(&config, 2).unwrap();
    engine.apply(0, &[users(4)]).unwrap();
    let recorded = run_for(&mut engine, Duration::from_secs(4)).await;
    assert_eq!(total(&recorded), server.counts.served());
    let stalled = server
        .counts
        .stalled
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        stalled <= 4,
        "{stalled} requests met the stall: one per user at most"
    );
    let closed = latency_2xx(&recorded);
    let (p99, max) = (closed.value_at_quantile(0.99), closed.max());
    eprintln!(
        "closed model: {} requests, {stalled} stalled, p99 {:.1} ms, max {:.1} ms",
        closed.len(),
        ms(p99),
        ms(max)
    );
    assert!(ms(max) >= 900.0, "max {:.1} ms", ms(max));
    assert!(
        closed.len() > 400 && ms(p99) < 500.0,
        "{} requests, p99 {:.1} ms",
        closed.len(),
        ms(p99)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_beyond_the_in_flight_bound_are_dropped_and_counted() {
    let server = http_server(Behaviour {
        delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let config = open_config(&server.url(""), Arrivals::Uniform, 2);
    let mut engine = Engine::build(&config, 1).unwrap();
    let started = Instant::now();
    engine.apply(0, &[rate(50.0)]).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut dropped = engine.take_dropped();
    let elapsed = started.elapsed().as_secs_f64();
    let recorded = run_for(&mut engine, Duration::ZERO).await;
    dropped += engine.take_dropped();
    let served = server.counts.served();
    assert_eq!(total(&recorded), served);
    // Two slots, 200 ms each: at most 2 per 200 ms went out.
    let most = 2.0 * (elapsed / 0.2 + 1.0);
    assert!((served as f64) <= most, "{served} sent, at most {most}");
    // Every arrival was either sent or dropped.
    let arrivals = (served + dropped) as f64;
    let due = 50.0 * elapsed;
    assert!(
        (arrivals - due).abs() <= 0.15 * due + 2.0,
        "{served} sent + {dropped} dropped, {due:.0} due"
    );
}

/// Waits until the engine says stage `stage` is complete.
async fn until_completed(engine: &Engine, stage: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while engine.completed_stage() < stage {
        assert!(Instant::now() < deadline, "stage {stage} never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_send_exactly_their_count_in_both_models() {
    for model in [LoadModel::Closed, LoadModel::Open] {
        let server = http_server(Behaviour::default()).await;
        let mut config = open_config(&server.url(""), Arrivals::Poisson, 100);
        config.model = model as i32;
        let mut engine = Engine::build(&config, 2).unwrap();
        let level = |quota: Option<u64>| Level {
            users: 5,
            rate: 400.0,
            quota,
        };
        engine.apply(1, &[level(Some(123))]).unwrap();
        until_completed(&engine, 1).await;
        // Applying the same stage again changes nothing: the count is not restarted.
        engine
            .apply(
                1,
                &[Level {
                    users: 3,
                    ..level(Some(123))
                }],
            )
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(server.counts.served(), 123, "{model:?}");
        // A zero share is complete at once; then a larger count for the next stage.
        engine.apply(2, &[level(Some(0))]).unwrap();
        until_completed(&engine, 2).await;
        engine.apply(3, &[level(Some(77))]).unwrap();
        until_completed(&engine, 3).await;
        let recorded = run_for(&mut engine, Duration::ZERO).await;
        assert_eq!(server.counts.served(), 200, "{model:?}");
        assert_eq!(total(&recorded), 200, "{model:?}");
    }
}
