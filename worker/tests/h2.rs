//! HTTP/2 targets against servers written in the test (`h2::server` over plain TCP, i.e. h2c
//! with prior knowledge, and raw frames), well-behaved and hostile: what the engine records
//! must match what the servers counted, every failure must be a classified error with a
//! reason, nothing may be counted twice, and the run must go on.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::tls::{Pki, tls_server};
use common::*;
use stampede_worker::Engine;
use stampede_worker::proto::{self, HttpVersion, LoadModel, Outcome, Phase, RunConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What an in-test h2 server does with the n-th stream (1-based) of a connection.
#[derive(Clone, Copy)]
enum Policy {
    /// Answer every stream: 200 with `x-arch: arm64`; `/app...` gets a 302 to `/arm...`.
    Answer { delay: Duration },
    /// After `n` streams, a graceful GOAWAY; the streams it let in are answered.
    GoawayAfter(u64),
    /// Refuse every 4th stream (REFUSED_STREAM), reset every 5th (INTERNAL_ERROR).
    ResetStorm,
}

/// What an h2 server counted.
#[derive(Default)]
struct H2Counts {
    /// Streams answered with a response (any status).
    answered: AtomicU64,
    redirected: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    /// Most streams open at once on one connection.
    most_open: AtomicU64,
}

async fn h2_server(policy: Policy, max_streams: Option<u32>) -> (TestServer, Arc<H2Counts>) {
    let h2c = Arc::new(H2Counts::default());
    let counts = h2c.clone();
    let server = raw_server(move |tcp, _| {
        let counts = counts.clone();
        async move {
            let mut builder = h2::server::Builder::new();
            if let Some(n) = max_streams {
                builder.max_concurrent_streams(n);
            }
            let Ok(mut conn) = builder.handshake::<_, Bytes>(tcp).await else {
                return;
            };
            let mut n = 0u64;
            // Streams open at once on this connection.
            let open = Arc::new(AtomicU64::new(0));
            while let Some(Ok((req, mut respond))) = conn.accept().await {
                n += 1;
                match policy {
                    Policy::GoawayAfter(limit) if n == limit => conn.graceful_shutdown(),
                    Policy::ResetStorm if n.is_multiple_of(4) => {
                        counts.refused.fetch_add(1, Ordering::SeqCst);
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        continue;
                    }
                    Policy::ResetStorm if n.is_multiple_of(5) => {
                        counts.reset.fetch_add(1, Ordering::SeqCst);
                        respond.send_reset(h2::Reason::INTERNAL_ERROR);
                        continue;
                    }
                    _ => {}
                }
                let delay = match policy {
                    Policy::Answer { delay } => delay,
                    _ => Duration::ZERO,
                };
                let counts = counts.clone();
                let open = open.clone();
                tokio::spawn(async move {
                    let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
                    // Before the client has the server's SETTINGS it may open more streams than
                    // they allow (RFC 9113 §6.5.3): concurrency counts from the 20th stream on.
                    if n > 20 {
                        counts.most_open.fetch_max(now_open, Ordering::SeqCst);
                    }
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let path = req.uri().path().to_string();
                    let resp = if let Some(rest) = path.strip_prefix("/app") {
                        counts.redirected.fetch_add(1, Ordering::SeqCst);
                        http::Response::builder()
                            .status(302)
                            .header("location", format!("/arm{rest}"))
                            .body(())
                            .unwrap()
                    } else {
                        http::Response::builder()
                            .status(if path.contains("missing") { 404 } else { 200 })
                            .header("x-arch", "arm64")
                            .body(())
                            .unwrap()
                    };
                    open.fetch_sub(1, Ordering::SeqCst);
                    if let Ok(mut body) = respond.send_response(resp, false) {
                        counts.answered.fetch_add(1, Ordering::SeqCst);
                        let _ = body.send_data(Bytes::from_static(&[b'x'; 3000]), true);
                    }
                });
            }
        }
    })
    .await;
    (server, h2c)
}

fn h2c_config(server: &TestServer, path: &str) -> RunConfig {
    let mut config = run_config(&server.url(""), "amd64", path);
    config.targets[0].http = HttpVersion::Http2 as i32;
    config.requests[0].timeout_ms = 2_000;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_counts_arch_redirects_and_expect_like_http11() {
    let (server, counts) = h2_server(
        Policy::Answer {
            delay: Duration::from_millis(2),
        },
        None,
    )
    .await;
    let mut config = h2c_config(&server, "/app/x");
    config.max_redirects = 3;
    config.requests[0].expect = vec![200];
    config.requests.push(proto::Request {
        name: "missing".into(),
        method: "GET".into(),
        path: "/arm/missing".into(),
        weight: 1,
        timeout_ms: 2_000,
        expect: vec![200],
        ..Default::default()
    });
    config.targets[0].connections = 2;
    let mut engine = Engine::build(&config, 2).unwrap();
    let rec = run_all(&mut engine, 8, Duration::from_millis(800)).await;
    let answered = counts.answered.load(Ordering::SeqCst);
    let redirected = counts.redirected.load(Ordering::SeqCst);
    let recorded = total(&rec.latencies);
    assert!(recorded > 50, "requests {recorded}");
    eprintln!(
        "recorded {recorded} {:?}; server answered {answered}, redirected {redirected}",
        by_outcome_arch(&rec.latencies)
    );
    // Each redirected request is one recorded request that took two streams.
    assert_eq!(recorded, answered - redirected);
    let by = by_outcome_arch(&rec.latencies);
    assert_eq!(by.len(), 2, "{by:?}");
    let ok = by[&(Outcome::Status2xx, "arm64".to_string())];
    let missing = by[&(Outcome::Status4xx, "arm64".to_string())];
    assert_eq!(
        ok, redirected,
        "every /app request ended on /arm, attributed to arm64"
    );
    assert_eq!(ok + missing, recorded);
    for k in rec.latencies.keys() {
        assert_eq!(k.unexpected, k.outcome == Outcome::Status4xx, "{k:?}");
    }
    // One connection per engine thread (connections = 2 over 2 threads).
    assert_eq!(server.counts.accepted(), 2);
    assert_eq!(rec.phase_count(Phase::Connect), 2);
    assert_eq!(rec.phase_count(Phase::Ttfb), recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_open_model_and_timeouts_are_counted_once() {
    let (server, counts) = h2_server(
        Policy::Answer {
            delay: Duration::from_millis(150),
        },
        None,
    )
    .await;
    let mut config = h2c_config(&server, "/arm/x");
    config.model = LoadModel::Open as i32;
    // Half the requests time out before the server answers.
    config.requests[0].timeout_ms = 100;
    config.requests.push(proto::Request {
        name: "patient".into(),
        method: "GET".into(),
        path: "/arm/y".into(),
        weight: 1,
        timeout_ms: 2_000,
        ..Default::default()
    });
    let mut engine = Engine::build(&config, 1).unwrap();
    engine
        .apply(
            0,
            &[stampede_worker::Level {
                rate: 200.0,
                ..Default::default()
            }],
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(engine.stop(Duration::from_secs(5)).await, 0);
    let recorded = stampede_worker::report::merge(engine.take_shards()).unwrap();
    let ok = count_outcome(&recorded, Outcome::Status2xx);
    let timeouts = count_outcome(&recorded, Outcome::ErrorTimeout);
    assert!(ok > 50 && timeouts > 50, "ok {ok}, timeouts {timeouts}");
    assert_eq!(ok + timeouts, total(&recorded));
    // The server may still answer a stream the worker gave up on; never the other way round.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(counts.answered.load(Ordering::SeqCst) >= ok);
    assert!(counts.answered.load(Ordering::SeqCst) <= total(&recorded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goaway_mid_run_is_survived_and_nothing_is_counted_twice() {
    let (server, counts) = h2_server(Policy::GoawayAfter(25), None).await;
    let config = h2c_config(&server, "/arm/x");
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 6, Duration::from_millis(800)).await;
    let answered = counts.answered.load(Ordering::SeqCst);
    let recorded = total(&rec.latencies);
    let ok = count_outcome(&rec.latencies, Outcome::Status2xx);
    eprintln!(
        "{recorded} recorded, {answered} answered over {} connections, reasons {:?}",
        server.counts.accepted(),
        rec.reasons
    );
    assert!(
        server.counts.accepted() >= 3,
        "the worker reconnected after each GOAWAY"
    );
    assert_eq!(ok, answered, "every answer recorded once");
    // A graceful GOAWAY lets every stream it let in finish: no request is lost.
    assert_eq!(recorded, ok, "{:?}", by_outcome_arch(&rec.latencies));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rst_stream_storm_is_retried_only_when_refused() {
    let (server, counts) = h2_server(Policy::ResetStorm, None).await;
    let config = h2c_config(&server, "/arm/x");
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 4, Duration::from_millis(800)).await;
    let (answered, refused, reset) = (
        counts.answered.load(Ordering::SeqCst),
        counts.refused.load(Ordering::SeqCst),
        counts.reset.load(Ordering::SeqCst),
    );
    let recorded = total(&rec.latencies);
    let refused_for_good = rec.reason("h2 RST_STREAM REFUSED_STREAM");
    eprintln!(
        "{recorded} recorded; server: {answered} answered, {refused} refused, {reset} reset; {:?}",
        rec.reasons
    );
    assert!(refused > 10 && reset > 10, "the storm happened");
    assert_eq!(count_outcome(&rec.latencies, Outcome::Status2xx), answered);
    // INTERNAL_ERROR may have been processed: an error, never sent again.
    assert_eq!(rec.reason("h2 RST_STREAM INTERNAL_ERROR"), reset);
    assert_eq!(
        count_outcome(&rec.latencies, Outcome::ErrorReset),
        reset + refused_for_good
    );
    // REFUSED_STREAM was not processed: sent again, and recorded once however often refused.
    assert!(
        refused_for_good < refused / 2,
        "refused streams are retried"
    );
    assert_eq!(recorded, answered + reset + refused_for_good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_allowing_one_stream_gets_one_at_a_time() {
    let (server, counts) = h2_server(
        Policy::Answer {
            delay: Duration::from_millis(5),
        },
        Some(1),
    )
    .await;
    let config = h2c_config(&server, "/arm/x");
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 8, Duration::from_millis(800)).await;
    let answered = counts.answered.load(Ordering::SeqCst);
    eprintln!(
        "recorded {:?} {:?}; server answered {answered}",
        by_outcome_arch(&rec.latencies),
        rec.reasons
    );
    assert!(answered > 20, "answered {answered}");
    assert_all_2xx(&rec.latencies, answered);
    assert_eq!(
        counts.most_open.load(Ordering::SeqCst),
        1,
        "SETTINGS honoured"
    );
    // The first burst may exceed the limit before the server's SETTINGS arrive: those streams
    // are refused and sent again on the same connection, and counted once.
    assert_eq!(server.counts.accepted(), 1);
}

/// HPACK: a literal header field without indexing, new name (RFC 7541 §6.2.2), short strings.
fn literal(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x00, name.len() as u8];
    out.extend_from_slice(name);
    out.push(0x7f);
    // Length 127 + (len - 127) as a varint.
    let mut rest = value.len() - 127;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
    out.extend_from_slice(value);
    out
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads the client preface and its first frames, then answers stream 1 with a HEADERS frame
/// that never ends: CONTINUATION after CONTINUATION, for at most `limit`.
async fn endless_headers(mut tcp: TcpStream, limit: Duration) -> u64 {
    let mut buf = vec![0u8; 4096];
    let mut seen = Vec::new();
    // The preface (24 bytes) and at least one frame header after it.
    while seen.len() < 24 + 9 {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return 0,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let _ = tcp.write_all(&frame(0x4, 0, 0, &[])).await; // SETTINGS
    let _ = tcp.write_all(&frame(0x4, 0x1, 0, &[])).await; // SETTINGS ACK
    let value = vec![b'v'; 1000];
    let mut block = vec![0x88]; // :status 200
    block.extend(literal(b"x-a", &value));
    let _ = tcp.write_all(&frame(0x1, 0, 1, &block)).await; // HEADERS, no END_HEADERS
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < limit {
        let more = literal(b"x-b", &value);
        if tcp.write_all(&frame(0x9, 0, 1, &more)).await.is_err() {
            break;
        }
        sent += 1;
        // Keep reading what the client sends (its GOAWAY), so it is not blocked.
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::ZERO, tcp.read(&mut buf)).await {
            break;
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_header_block_is_an_error_not_a_hang() {
    let frames = Arc::new(AtomicU64::new(0));
    let sent = frames.clone();
    let server = raw_server(move |tcp, counts| {
        let sent = sent.clone();
        async move {
            counts.served.fetch_add(1, Ordering::SeqCst);
            let n = endless_headers(tcp, Duration::from_secs(3)).await;
            sent.fetch_max(n, Ordering::SeqCst);
        }
    })
    .await;
    let config = h2c_config(&server, "/arm/x");
    let mut engine = Engine::build(&config, 1).unwrap();
    let started = Instant::now();
    let rec = run_all(&mut engine, 1, Duration::from_millis(600)).await;
    let recorded = total(&rec.latencies);
    eprintln!(
        "{recorded} recorded in {:?}; most CONTINUATION frames sent on one connection {}; {:?}",
        started.elapsed(),
        frames.load(Ordering::SeqCst),
        rec.reasons
    );
    assert!(recorded > 0);
    assert_eq!(count_outcome(&rec.latencies, Outcome::Status2xx), 0);
    assert_eq!(
        count_outcome(&rec.latencies, Outcome::ErrorTimeout),
        0,
        "the client gives up on the header block itself, long before the timeout"
    );
    let reasons: u64 = rec.reasons.iter().map(|r| r.count).sum();
    assert_eq!(reasons, recorded, "every failure has a reason");
    // One request per connection: the server's count of connections is the oracle.
    assert_eq!(recorded, server.counts.served());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_tls_handshake_is_a_tls_error() {
    let pki = Pki::new();
    let server = tls_server(
        pki.server_config(&[b"http/1.1"]),
        |mut tls, counts| async move {
            if read_tls_request(&mut tls).await {
                counts.served.fetch_add(1, Ordering::SeqCst);
                // Not a TLS record: straight onto the TCP connection.
                let _ = tls
                    .get_mut()
                    .0
                    .write_all(b"HTTP/1.1 200 OK\r\n\r\nplain text")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        },
    )
    .await;
    let mut config = run_config(
        &format!("https://127.0.0.1:{}", server.addr.port()),
        "amd64",
        "/",
    );
    config.targets[0].tls = Some(pki.trusting());
    config.requests[0].timeout_ms = 1_000;
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 2, Duration::from_millis(500)).await;
    let recorded = total(&rec.latencies);
    assert!(recorded > 5, "{recorded}");
    assert_eq!(
        count_outcome(&rec.latencies, Outcome::ErrorTls),
        recorded,
        "{:?}",
        rec.reasons
    );
    assert_eq!(rec.reason("bad TLS record"), recorded, "{:?}", rec.reasons);
    assert_eq!(recorded, server.counts.served());
}

async fn read_tls_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}
