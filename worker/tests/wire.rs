//! The HTTP/1.1 framings a server may answer with, each from a raw TCP server on loopback that
//! counts the connections it accepted and the requests it served: every answer is read to its
//! true end (no timeouts, every request a 2xx), and a connection is kept exactly when the
//! response allows it.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use stampede_worker::proto::{Outcome, RunConfig};
use stampede_worker::record::Histograms;
use stampede_worker::{Engine, report};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// One user with a short think time against `config`'s target for 400 ms.
async fn one_user(config: RunConfig) -> Histograms {
    let mut engine = Engine::build(&config, 1).unwrap();
    engine.set_users(0, 1).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(engine.stop(Duration::from_secs(5)).await, 0);
    report::merge(engine.take_shards()).unwrap()
}

fn config(server: &TestServer) -> RunConfig {
    let mut config = run_config(&server.url(""), "amd64", "/");
    // Long enough never to fire unless a body's end is missed.
    config.requests[0].timeout_ms = 2_000;
    config
}

/// Every request a 2xx, as many as the server served.
fn all_answered(recorded: &Histograms, server: &TestServer) -> u64 {
    let n = total(recorded);
    assert!(n >= 5, "only {n} requests in 400 ms");
    assert_all_2xx(recorded, server.counts.served());
    n
}

/// One user against `server`: every request answered, each on a connection of its own.
async fn a_connection_per_request(server: &TestServer, config: RunConfig) {
    let recorded = one_user(config).await;
    let n = all_answered(&recorded, server);
    assert_eq!(server.counts.accepted(), n, "a new connection per request");
}

/// One user against `server`: every request answered, all on one kept-alive connection.
async fn one_connection(server: &TestServer, config: RunConfig) -> Histograms {
    let recorded = one_user(config).await;
    let n = all_answered(&recorded, server);
    assert_eq!(
        server.counts.accepted(),
        1,
        "one connection for {n} requests"
    );
    recorded
}

/// A keep-alive server answering every request on a connection with `parts`, written one by
/// one with `gap` between them.
async fn keep_alive_server(parts: &'static [&'static [u8]], gap: Duration) -> TestServer {
    raw_server(move |mut stream, counts| async move {
        while read_request(&mut stream).await {
            counts.served.fetch_add(1, Ordering::SeqCst);
            if !write_parts(&mut stream, parts, gap).await {
                return;
            }
        }
    })
    .await
}

/// A server that answers one request per connection with `parts`, then (if `close`) closes
/// it, or else holds it open without reading: a reused connection would never be answered.
async fn one_shot_server(parts: &'static [&'static [u8]], close: bool) -> TestServer {
    raw_server(move |mut stream, counts| async move {
        if !read_request(&mut stream).await {
            return;
        }
        counts.served.fetch_add(1, Ordering::SeqCst);
        if write_parts(&mut stream, parts, Duration::ZERO).await && !close {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    })
    .await
}

async fn write_parts(stream: &mut TcpStream, parts: &[&[u8]], gap: Duration) -> bool {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        if stream.write_all(part).await.is_err() || stream.flush().await.is_err() {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_arriving_in_pieces_keep_the_connection() {
    let server = keep_alive_server(
        &[
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-arch: arm64\r\n\r\n5;ext=1\r\nhel",
            b"lo\r\n1",
            b"0\r\n0123456789abcdef\r\n0\r\ntrailer: t\r\n",
            b"\r\n",
        ],
        Duration::from_millis(1),
    )
    .await;
    let recorded = one_connection(&server, config(&server)).await;
    // The arch header of the response, not the declared one.
    assert_eq!(
        by_outcome_arch(&recorded)[&(Outcome::Status2xx, "arm64".into())],
        total(&recorded)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_runs_to_the_last_byte_of_the_body() {
    let server = keep_alive_server(
        &[
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234",
            b"56789",
        ],
        Duration::from_millis(30),
    )
    .await;
    let recorded = one_connection(&server, config(&server)).await;
    for h in recorded.values() {
        assert!(h.min() >= 30_000, "min latency {} µs", h.min());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_responses_are_skipped() {
    let server = keep_alive_server(
        &[
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\n",
            b"content-length: 2\r\n\r\nok",
        ],
        Duration::from_millis(1),
    )
    .await;
    one_connection(&server, config(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_response_has_no_body_whatever_its_length_says() {
    let server = keep_alive_server(
        &[b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"],
        Duration::ZERO,
    )
    .await;
    let mut config = config(&server);
    config.requests[0].method = "HEAD".into();
    one_connection(&server, config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_0_closes_unless_kept_alive() {
    let server = one_shot_server(&[b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"], false).await;
    a_connection_per_request(&server, config(&server)).await;

    let kept = keep_alive_server(
        &[b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok"],
        Duration::ZERO,
    )
    .await;
    one_connection(&kept, config(&kept)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_is_honoured() {
    let server = one_shot_server(
        &[b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 2\r\n\r\nok"],
        false,
    )
    .await;
    a_connection_per_request(&server, config(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_without_length_runs_to_the_close() {
    let server = one_shot_server(&[b"HTTP/1.1 200 OK\r\n\r\n", b"all of it"], true).await;
    a_connection_per_request(&server, config(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_past_the_response_retire_the_connection() {
    // A second, unasked-for response after the first: reusing the connection would read it as
    // the answer to the next request.
    let server = one_shot_server(
        &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 500 Oops\r\n\r\n"],
        false,
    )
    .await;
    a_connection_per_request(&server, config(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_body_goes_out_with_its_length() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let server = {
        let seen = Arc::clone(&seen);
        raw_server(move |mut stream, counts| {
            let seen = Arc::clone(&seen);
            async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 4096];
                let mut have = 0;
                // One request: head, then the body its content-length announces.
                while have < buf.len() {
                    let Ok(n) = stream.read(&mut buf[have..]).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    have += n;
                    let text = String::from_utf8_lossy(&buf[..have]).to_string();
                    if let Some(end) = text.find("\r\n\r\n")
                        && have >= end + 4 + 7
                    {
                        break;
                    }
                }
                *seen.lock().unwrap() = buf[..have].to_vec();
                counts.served.fetch_add(1, Ordering::SeqCst);
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 201 Created\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                    )
                    .await;
            }
        })
        .await
    };
    let mut config = config(&server);
    config.requests[0].method = "post".into();
    config.requests[0].body = b"{\"a\":1}".to_vec();
    config.requests[0].headers = vec![stampede_worker::proto::Header {
        name: "content-type".into(),
        value: "application/json".into(),
    }];
    let recorded = one_user(config).await;
    all_answered(&recorded, &server);
    let request = String::from_utf8(seen.lock().unwrap().clone()).unwrap();
    let host = format!("host: {}\r\n", server.addr);
    assert!(request.starts_with("POST / HTTP/1.1\r\n"), "{request}");
    assert!(request.contains(&host), "{request}");
    assert!(
        request.contains("content-type: application/json\r\n"),
        "{request}"
    );
    assert!(
        request.ends_with("content-length: 7\r\n\r\n{\"a\":1}"),
        "{request}"
    );
}
