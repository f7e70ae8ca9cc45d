//! Targets that misbehave on purpose, each a raw TCP server on loopback: every request ends in
//! a classified outcome within its timeout, and memory stays bounded.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use stampede_worker::proto::{Outcome, WaitKind};
use stampede_worker::record::Histograms;
use stampede_worker::{Engine, report};
use tokio::io::AsyncWriteExt;

const TIMEOUT_MS: u64 = 500;

/// One user against `server` for `run_for`; returns what was recorded and how long the stop
/// took (it waits for in-flight requests, so a request without a bound would hang it).
async fn hammer(server: &TestServer, run_for: Duration) -> (Histograms, Duration) {
    let mut config = run_config(&server.url(""), "amd64", "/");
    config.requests[0].timeout_ms = TIMEOUT_MS;
    config.wait = Some(stampede_worker::proto::Wait {
        kind: WaitKind::Constant as i32,
        a_us: 10_000,
        ..Default::default()
    });
    let mut engine = Engine::build(&config, 1).unwrap();
    engine.set_users(0, 1).unwrap();
    tokio::time::sleep(run_for).await;
    let stopping = Instant::now();
    let abandoned = engine.stop(Duration::from_secs(10)).await;
    assert_eq!(abandoned, 0, "every request ended by itself");
    let took = stopping.elapsed();
    (report::merge(engine.take_shards()).unwrap(), took)
}

fn only(recorded: &Histograms, outcome: Outcome) {
    assert!(total(recorded) > 0, "nothing recorded");
    assert_eq!(
        count_outcome(recorded, outcome),
        total(recorded),
        "{:?}",
        by_outcome_arch(recorded)
    );
}

/// Accepts, reads the request, then resets the connection (RST, not FIN).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_connection_is_a_reset() {
    let server = raw_server(|mut stream, counts| async move {
        if read_request(&mut stream).await {
            counts.served.fetch_add(1, Ordering::SeqCst);
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
    })
    .await;
    let (recorded, _) = hammer(&server, Duration::from_millis(300)).await;
    only(&recorded, Outcome::ErrorReset);
    assert_eq!(total(&recorded), server.counts.served());
}

/// Never answers (headers stall): each request times out at its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_headers_time_out() {
    let server = raw_server(|mut stream, counts| async move {
        if read_request(&mut stream).await {
            counts.served.fetch_add(1, Ordering::SeqCst);
            // Half a status line, then nothing.
            let _ = stream.write_all(b"HTTP/1.1 200").await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    })
    .await;
    let (recorded, stop) = hammer(&server, Duration::from_millis(1200)).await;
    only(&recorded, Outcome::ErrorTimeout);
    for h in recorded.values() {
        assert!(h.min() >= TIMEOUT_MS * 1000, "min {} µs", h.min());
    }
    assert!(stop < Duration::from_secs(5), "stop took {stop:?}");
}

/// Answers 200 with a body that never ends, as fast as it can: the request times out, and the
/// body is dropped as it comes (memory stays flat).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_times_out_in_bounded_memory() {
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let s = sent.clone();
    let server = raw_server(move |mut stream, counts| {
        let sent = s.clone();
        async move {
            if !read_request(&mut stream).await {
                return;
            }
            counts.served.fetch_add(1, Ordering::SeqCst);
            let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-arch: arm64\r\n\r\n";
            if stream.write_all(head).await.is_err() {
                return;
            }
            let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
            while stream.write_all(chunk.as_bytes()).await.is_ok() {
                sent.fetch_add(0x10000, Ordering::Relaxed);
            }
        }
    })
    .await;
    let before = rss_kb();
    let (recorded, stop) = hammer(&server, Duration::from_millis(1500)).await;
    only(&recorded, Outcome::ErrorTimeout);
    let streamed = sent.load(Ordering::Relaxed);
    assert!(
        streamed > 16 << 20,
        "the server streamed only {streamed} bytes"
    );
    if let (Some(a), Some(b)) = (before, rss_kb()) {
        let grown = b.saturating_sub(a);
        assert!(
            grown < 64 * 1024,
            "RSS grew {grown} kB while {streamed} bytes streamed"
        );
    }
    assert!(stop < Duration::from_secs(5), "stop took {stop:?}");
}

/// Answers with megabytes of headers: a protocol error, not a hang or an allocation spree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_headers_are_errors() {
    let server = raw_server(|mut stream, counts| async move {
        if !read_request(&mut stream).await {
            return;
        }
        counts.served.fetch_add(1, Ordering::SeqCst);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n").await;
        let line = format!("x-junk: {}\r\n", "y".repeat(8000));
        for _ in 0..1000 {
            if stream.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let (recorded, stop) = hammer(&server, Duration::from_millis(500)).await;
    only(&recorded, Outcome::ErrorOther);
    assert!(stop < Duration::from_secs(5), "stop took {stop:?}");
}

/// A server that accepts and closes at once, before any request: resets, never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_close_is_a_reset() {
    let server = raw_server(|stream, counts| async move {
        counts.served.fetch_add(1, Ordering::SeqCst);
        drop(stream);
    })
    .await;
    let (recorded, _) = hammer(&server, Duration::from_millis(300)).await;
    assert!(total(&recorded) > 0);
    let resets = count_outcome(&recorded, Outcome::ErrorReset);
    let other = count_outcome(&recorded, Outcome::ErrorOther);
    assert_eq!(
        resets + other,
        total(&recorded),
        "{:?}",
        by_outcome_arch(&recorded)
    );
    assert!(resets > 0);
}

/// This process's resident memory, from /proc (Linux only).
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
