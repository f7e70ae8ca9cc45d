//! The engine against real HTTP servers on loopback: what it records must match what the servers
//! counted, exactly.

mod common;

use std::time::Duration;

use common::*;
use stampede_worker::proto::{ConnectionMode, Outcome, WaitKind};
use stampede_worker::record::{Histograms, new_histogram};
use stampede_worker::{Engine, EngineError, report};

const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `engine` with `users` users on target 0 for `run_for`, then stops it and returns all
/// that was recorded (taken in two intervals, as the reporter would).
async fn run_engine(engine: &mut Engine, users: u32, run_for: Duration) -> Histograms {
    engine.set_users(0, users).unwrap();
    tokio::time::sleep(run_for / 2).await;
    let first = engine.take_shards();
    tokio::time::sleep(run_for / 2).await;
    let abandoned = engine.stop(STOP_TIMEOUT).await;
    assert_eq!(abandoned, 0, "every in-flight request finished");
    assert_eq!(engine.users_running(), 0);
    report::merge(first.into_iter().chain(engine.take_shards())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_counts_match_the_server_exactly() {
    let delay = Duration::from_millis(20);
    let server = http_server(Behaviour {
        delay,
        every_nth_503: 4,
        arch: Some("arm64"),
        ..Default::default()
    })
    .await;
    // Declared amd64, but the server says arm64: the header wins.
    let config = run_config(&server.url("/base/"), "amd64", "/work?x=1");
    let mut engine = Engine::build(&config, 2).unwrap();
    engine.set_users(0, 4).unwrap();
    assert_eq!(engine.users_running(), 4);
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Scale down mid-run: the cancelled users' last requests must still be recorded.
    engine.set_users(0, 2).unwrap();
    assert_eq!(engine.users_running(), 2);
    let recorded = run_engine(&mut engine, 2, Duration::from_millis(800)).await;

    let served = server.counts.served();
    assert!(served > 20, "the run made some requests ({served})");
    assert_eq!(
        total(&recorded),
        served,
        "every served request recorded once"
    );
    assert_eq!(
        count_outcome(&recorded, Outcome::Status5xx),
        server.counts.status_503()
    );
    assert_eq!(
        count_outcome(&recorded, Outcome::Status2xx) + count_outcome(&recorded, Outcome::Status5xx),
        served,
        "no errors: {:?}",
        by_outcome_arch(&recorded)
    );
    for key in recorded.keys() {
        assert_eq!(&*key.arch, "arm64", "arch from the response header");
        // No expect list: 5xx is unexpected, 2xx expected.
        assert_eq!(key.unexpected, key.outcome == Outcome::Status5xx);
    }

    // Latency: the server's delay plus loopback overhead.
    let mut ok = new_histogram();
    for (k, h) in &recorded {
        if k.outcome == Outcome::Status2xx {
            ok.add(h).unwrap();
        }
    }
    let p50 = Duration::from_micros(ok.value_at_quantile(0.5));
    eprintln!("p50 {p50:?} for a server delay of {delay:?}");
    assert!(p50 >= delay, "p50 {p50:?} below the server's delay");
    assert!(
        p50 <= delay + Duration::from_millis(20),
        "p50 {p50:?} far above the server's delay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closed_idle_connections_are_not_errors() {
    let server = closing_server("arm64").await;
    let mut config = run_config(&server.url(""), "amd64", "/");
    // Long enough for the server to close each idle connection before the next request.
    config.wait = Some(stampede_worker::proto::Wait {
        kind: WaitKind::Constant as i32,
        a_us: 80_000,
        ..Default::default()
    });
    let mut engine = Engine::build(&config, 1).unwrap();
    let recorded = run_engine(&mut engine, 2, Duration::from_millis(800)).await;
    let served = server.counts.served();
    assert!(served >= 4, "served {served}");
    assert_all_2xx(&recorded, served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_mode_opens_a_connection_per_request() {
    let server = http_server(Behaviour {
        arch: Some("arm64"),
        ..Default::default()
    })
    .await;
    let mut config = run_config(&server.url(""), "amd64", "/");
    config.connection = ConnectionMode::Close as i32;
    let mut engine = Engine::build(&config, 1).unwrap();
    let recorded = run_engine(&mut engine, 2, Duration::from_millis(400)).await;
    assert_all_2xx(&recorded, server.counts.served());
    assert_eq!(server.counts.accepted(), server.counts.served());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_mode_keeps_one_connection_per_user() {
    let server = http_server(Behaviour::default()).await;
    let config = run_config(&server.url(""), "amd64", "/");
    let mut engine = Engine::build(&config, 2).unwrap();
    let recorded = run_engine(&mut engine, 6, Duration::from_millis(400)).await;
    let served = server.counts.served();
    assert!(served > 12, "each user made several requests ({served})");
    assert_eq!(total(&recorded), served);
    assert_eq!(server.counts.accepted(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_pool_bounds_connections_and_counts_stay_exact() {
    let server = http_server(Behaviour {
        delay: Duration::from_millis(5),
        every_nth_503: 5,
        ..Default::default()
    })
    .await;
    let mut config = run_config(&server.url(""), "amd64", "/");
    config.connection = ConnectionMode::Shared as i32;
    config.pool_size = 4;
    // Two engine threads with two connections each: 24 users queue for 4 connections.
    let mut engine = Engine::build(&config, 2).unwrap();
    let recorded = run_engine(&mut engine, 24, Duration::from_millis(800)).await;
    let served = server.counts.served();
    assert!(served > 40, "the pool kept serving ({served})");
    assert_eq!(
        total(&recorded),
        served,
        "every served request recorded once"
    );
    assert_eq!(
        count_outcome(&recorded, Outcome::Status5xx),
        server.counts.status_503()
    );
    assert_eq!(
        count_outcome(&recorded, Outcome::Status2xx) + server.counts.status_503(),
        served,
        "no errors: {:?}",
        by_outcome_arch(&recorded)
    );
    let accepted = server.counts.accepted();
    assert!(
        (1..=4).contains(&accepted),
        "24 users on a pool of 4 opened {accepted} connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_pool_replaces_connections_the_server_closed() {
    // Connections idle in the pool for longer than 20 ms are closed by the server.
    let server = idle_closing_server(Duration::from_millis(20)).await;
    let mut config = run_config(&server.url(""), "amd64", "/");
    config.connection = ConnectionMode::Shared as i32;
    config.pool_size = 2;
    config.wait = Some(stampede_worker::proto::Wait {
        kind: WaitKind::Constant as i32,
        a_us: 80_000,
        ..Default::default()
    });
    let mut engine = Engine::build(&config, 1).unwrap();
    let recorded = run_engine(&mut engine, 4, Duration::from_millis(800)).await;
    let served = server.counts.served();
    assert!(served >= 16, "served {served}");
    assert_all_2xx(&recorded, served);
    let accepted = server.counts.accepted();
    assert!(
        accepted > 2,
        "closed connections were replaced ({accepted} opened)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_connect_errors() {
    let port = dead_port().await;
    let mut config = run_config(&format!("http://127.0.0.1:{port}"), "amd64", "/");
    config.wait = Some(stampede_worker::proto::Wait {
        kind: WaitKind::Constant as i32,
        a_us: 20_000,
        ..Default::default()
    });
    let mut engine = Engine::build(&config, 1).unwrap();
    let recorded = run_engine(&mut engine, 1, Duration::from_millis(300)).await;
    assert!(total(&recorded) > 0);
    assert_eq!(
        count_outcome(&recorded, Outcome::ErrorConnect),
        total(&recorded)
    );
    for key in recorded.keys() {
        assert!(key.unexpected, "errors are always unexpected");
        assert_eq!(&*key.arch, "amd64", "no response: the declared arch");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_responses_time_out() {
    let server = http_server(Behaviour {
        delay: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let mut config = run_config(&server.url(""), "amd64", "/");
    config.requests[0].timeout_ms = 150;
    let mut engine = Engine::build(&config, 1).unwrap();
    let recorded = run_engine(&mut engine, 1, Duration::from_millis(400)).await;
    let timeouts = count_outcome(&recorded, Outcome::ErrorTimeout);
    assert!(timeouts >= 1);
    assert_eq!(
        timeouts,
        total(&recorded),
        "{:?}",
        by_outcome_arch(&recorded)
    );
    for (_, h) in recorded {
        // Latency of a timed-out request is the timeout (plus scheduling).
        assert!(h.min() >= 150_000, "min {} µs", h.min());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangups_are_resets() {
    let server = hangup_server().await;
    let mut config = run_config(&server.url(""), "amd64", "/");
    config.wait = Some(stampede_worker::proto::Wait {
        kind: WaitKind::Constant as i32,
        a_us: 20_000,
        ..Default::default()
    });
    let mut engine = Engine::build(&config, 1).unwrap();
    let recorded = run_engine(&mut engine, 1, Duration::from_millis(300)).await;
    assert!(total(&recorded) > 0);
    assert_eq!(
        count_outcome(&recorded, Outcome::ErrorReset),
        total(&recorded),
        "{:?}",
        by_outcome_arch(&recorded)
    );
    assert_eq!(total(&recorded), server.counts.served());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_attributed_to_the_final_response() {
    // The "other" fleet, on another authority.
    let arm = http_server(Behaviour {
        arch: Some("arm64"),
        ..Default::default()
    })
    .await;
    // The splitter: /app/a goes to the other authority, /app/b stays here (relative Location),
    // whose answer says amd64.
    let splitter = http_server(Behaviour {
        arch: Some("amd64"),
        redirects: vec![
            ("/app/a".into(), arm.url("/arm/runtime")),
            ("/app/b".into(), "../amd/runtime".into()), // → /amd/runtime
        ],
        ..Default::default()
    })
    .await;
    let mut config = run_config(&splitter.url(""), "declared", "/app/a");
    config.requests.push(stampede_worker::proto::Request {
        name: "b".into(),
        method: "GET".into(),
        path: "/app/b".into(),
        weight: 1,
        timeout_ms: 10_000,
        ..Default::default()
    });
    config.max_redirects = 3;
    let mut engine = Engine::build(&config, 1).unwrap();
    let recorded = run_engine(&mut engine, 2, Duration::from_millis(500)).await;

    let by = by_outcome_arch(&recorded);
    let to_arm = by
        .get(&(Outcome::Status2xx, "arm64".into()))
        .copied()
        .unwrap_or(0);
    let to_amd = by
        .get(&(Outcome::Status2xx, "amd64".into()))
        .copied()
        .unwrap_or(0);
    assert!(to_arm > 0 && to_amd > 0, "{by:?}");
    assert_eq!(to_arm, arm.counts.served(), "{by:?}");
    assert_eq!(to_amd, splitter.counts.served(), "{by:?}");
    // One recorded request per redirect followed: the 302 itself is not a request of its own.
    assert_eq!(total(&recorded), splitter.counts.redirected(), "{by:?}");
    // Request indexes survive the redirect.
    assert!(
        recorded
            .keys()
            .any(|k| k.request == 0 && &*k.arch == "arm64")
    );
    assert!(
        recorded
            .keys()
            .any(|k| k.request == 1 && &*k.arch == "amd64")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_max_redirects_a_redirect_is_a_3xx() {
    let splitter = http_server(Behaviour {
        redirects: vec![("/app".into(), "/elsewhere".into())],
        ..Default::default()
    })
    .await;
    let config = run_config(&splitter.url(""), "amd64", "/app");
    let mut engine = Engine::build(&config, 1).unwrap();
    let recorded = run_engine(&mut engine, 1, Duration::from_millis(300)).await;
    assert_eq!(
        count_outcome(&recorded, Outcome::Status3xx),
        total(&recorded)
    );
    assert_eq!(total(&recorded), splitter.counts.redirected());
    assert_eq!(splitter.counts.served(), 0);
    // The 302 carries x-arch: redirector.
    assert!(
        recorded
            .keys()
            .all(|k| &*k.arch == "redirector" && !k.unexpected)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loops_stop_at_the_bound() {
    let looping = http_server(Behaviour {
        redirects: vec![("/loop".into(), "/loop".into())],
        ..Default::default()
    })
    .await;
    let mut config = run_config(&looping.url(""), "amd64", "/loop");
    config.max_redirects = 2;
    let mut engine = Engine::build(&config, 1).unwrap();
    let recorded = run_engine(&mut engine, 1, Duration::from_millis(300)).await;
    let recorded_total = total(&recorded);
    assert!(recorded_total > 0);
    assert_eq!(count_outcome(&recorded, Outcome::Status3xx), recorded_total);
    // Each recorded request made the first request and two redirected ones.
    assert_eq!(looping.counts.redirected(), 3 * recorded_total);
}

#[tokio::test]
async fn unusable_tls_settings_are_refused_at_build_time() {
    let mut config = run_config("https://127.0.0.1:8443/", "amd64", "/");
    config.targets[0].tls = Some(stampede_worker::proto::TargetTls {
        ca_pem: b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_vec(),
        ..Default::default()
    });
    let err = Engine::build(&config, 1)
        .err()
        .expect("a CA that is no certificate must be refused");
    assert!(matches!(err, EngineError::BadTls { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("t0") && message.contains("ca"),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_targets_are_errors() {
    let config = run_config("http://127.0.0.1:1/", "amd64", "/");
    let mut engine = Engine::build(&config, 1).unwrap();
    assert!(matches!(
        engine.set_users(5, 1),
        Err(EngineError::UnknownTarget { index: 5, count: 1 })
    ));
}
