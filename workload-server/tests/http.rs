//! The server over real HTTP on 127.0.0.1: answers, the splitter, bad input, metrics.

mod common;

use std::collections::BTreeSet;

use common::{Client, bounded, config, get, sample, start};
use http::{Method, StatusCode};
use stampede_workload_server::{ServerConfig, matmul};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn reference_checksum(dim: usize, seed: u64) -> String {
    let (a, b) = matmul::random_pair(dim, seed);
    format!(
        "{:016x}",
        matmul::checksum(&matmul::multiply_naive(&a, &b, dim))
    )
}

#[tokio::test]
async fn runtime_answers_identity_and_an_exact_checksum() {
    bounded(async {
        let server = start(config()).await;
        let mut client = Client::connect(server.addr).await;
        for path in ["/runtime", "/arm/runtime", "/amd/runtime"] {
            let reply = client.get(&format!("{path}?dim=7&seed=42")).await;
            assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
            assert_eq!(reply.header("x-arch"), "arm64");
            assert_eq!(reply.header("x-instance-type"), "m7g.test");
            assert_eq!(reply.header("x-served-by"), "test-pod-0");
            assert_eq!(reply.header("content-type"), "application/json");
            let json = reply.json();
            assert_eq!(json["arch"], "arm64");
            assert_eq!(json["instance_type"], "m7g.test");
            assert_eq!(json["served_by"], "test-pod-0");
            assert_eq!(json["route"], path);
            assert_eq!(json["dim"], 7);
            assert_eq!(json["seed"], 42);
            assert_eq!(json["checksum"], reference_checksum(7, 42));
            assert!(json["compute_ms"].as_f64().unwrap() >= 0.0);
            assert!(json["elapsed_ms"].as_f64().unwrap() >= json["compute_ms"].as_f64().unwrap());
        }

        // Without ?dim= the configured dim is used; without ?seed= a random one, reported, from
        // which the answer can be checked all the same. Sizes past the kernel's tiles too.
        let mut seeds = BTreeSet::new();
        for path in [
            "/runtime",
            "/runtime?dim=1",
            "/runtime?dim=70",
            "/runtime?dim=300",
        ] {
            let json = client.get(path).await.json();
            let dim = json["dim"].as_u64().unwrap() as usize;
            let seed = json["seed"].as_u64().unwrap();
            assert_eq!(json["checksum"], reference_checksum(dim, seed), "{path}");
            seeds.insert(seed);
        }
        assert_eq!(seeds.len(), 4, "random seeds repeat: {seeds:?}");
        assert_eq!(client.get("/runtime").await.json()["dim"], 16);
    })
    .await;
}

#[tokio::test]
async fn health_and_readiness() {
    bounded(async {
        let server = start(config()).await;
        let mut client = Client::connect(server.addr).await;
        for path in ["/healthz", "/readyz"] {
            let reply = client.get(path).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.header("x-arch"), "arm64");
            let head = client.send(Method::HEAD, path, "").await;
            assert_eq!(head.status, StatusCode::OK);
            assert!(head.body.is_empty());
        }
    })
    .await;
}

/// Counts the redirects to /arm among `n` requests to /app/runtime?dim=3.
async fn arm_share(split: f64, n: usize) -> usize {
    let server = start(ServerConfig {
        app_split: split,
        ..config()
    })
    .await;
    let mut client = Client::connect(server.addr).await;
    let mut arm = 0;
    for _ in 0..n {
        let reply = client.get("/app/runtime?dim=3").await;
        assert_eq!(reply.status, StatusCode::FOUND);
        match reply.header("location") {
            "/arm/runtime?dim=3" => arm += 1,
            "/amd/runtime?dim=3" => {}
            other => panic!("unexpected location {other}"),
        }
    }
    arm
}

/// Whether `k` successes in `n` trials are within 5 standard deviations of `n * p`.
fn within_five_sigma(k: usize, n: usize, p: f64) -> bool {
    let mean = n as f64 * p;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    (k as f64 - mean).abs() <= 5.0 * sigma
}

#[tokio::test]
async fn app_splits_half_and_half_by_default() {
    bounded(async {
        let n = 2000;
        let arm = arm_share(0.5, n).await;
        // 5 sigma = 112 requests: a fair splitter fails this about once in 1.7 million runs.
        assert!(within_five_sigma(arm, n, 0.5), "{arm} of {n} went to arm");
    })
    .await;
}

#[tokio::test]
async fn app_split_is_honoured() {
    bounded(async {
        let n = 2000;
        let arm = arm_share(0.8, n).await;
        assert!(within_five_sigma(arm, n, 0.8), "{arm} of {n} went to arm");
        assert_eq!(arm_share(1.0, 50).await, 50);
        assert_eq!(arm_share(0.0, 50).await, 0);
    })
    .await;
}

#[tokio::test]
async fn app_keeps_the_rest_of_the_path() {
    bounded(async {
        let server = start(ServerConfig {
            app_split: 1.0,
            ..config()
        })
        .await;
        let reply = get(server.addr, "/app/some/where?x=1&dim=2").await;
        assert_eq!(reply.status, StatusCode::FOUND);
        assert_eq!(reply.header("location"), "/arm/some/where?x=1&dim=2");
        assert_eq!(get(server.addr, "/app").await.header("location"), "/arm");
    })
    .await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    bounded(async {
        let server = start(ServerConfig {
            max_matrix_dim: 64,
            max_body_bytes: 1024,
            ..config()
        })
        .await;
        let mut client = Client::connect(server.addr).await;
        let cases = [
            ("/runtime?dim=abc", StatusCode::BAD_REQUEST, "whole number"),
            ("/runtime?dim=-3", StatusCode::BAD_REQUEST, "positive"),
            ("/runtime?dim=0", StatusCode::BAD_REQUEST, "positive"),
            ("/runtime?dim=65", StatusCode::BAD_REQUEST, "maximum 64"),
            (
                "/arm/runtime?dim=1000000000000",
                StatusCode::BAD_REQUEST,
                "maximum",
            ),
            ("/runtime?dim=4&seed=x", StatusCode::BAD_REQUEST, "seed"),
            ("/nope", StatusCode::NOT_FOUND, "no such path"),
            ("/runtime/extra", StatusCode::NOT_FOUND, "no such path"),
        ];
        for (path, status, reason) in cases {
            let reply = client.get(path).await;
            assert_eq!(reply.status, status, "{path}: {reply:?}");
            assert!(reply.body.contains(reason), "{path}: {}", reply.body);
            assert_eq!(reply.header("x-arch"), "arm64");
        }

        let reply = client.send(Method::POST, "/runtime", "").await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(reply.header("allow"), "GET");
        let reply = client.send(Method::DELETE, "/healthz", "").await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(reply.header("allow"), "GET, HEAD");

        // A body within the limit is read and ignored; over it, 413 by Content-Length.
        let reply = client
            .send(Method::GET, "/runtime?dim=2", vec![b'x'; 1000])
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let reply = client
            .send(Method::GET, "/runtime?dim=2", vec![b'x'; 4096])
            .await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(reply.body.contains("1024 bytes"), "{}", reply.body);

        // Far over it: answered from the Content-Length alone, before any body is sent.
        let head_only = b"GET /runtime?dim=2 HTTP/1.1\r\nhost: 127.0.0.1\r\n\
            content-length: 10000000\r\n\r\n";
        assert_eq!(raw_status(server.addr, head_only).await, 413);

        // A chunked body has no length up front: counted as it streams.
        assert_eq!(chunked_upload(server.addr, 8).await, 413);
        assert_eq!(chunked_upload(server.addr, 1).await, 200);

        // Still serving.
        assert_eq!(get(server.addr, "/healthz").await.status, StatusCode::OK);
    })
    .await;
}

/// Sends GET /runtime?dim=2 with a chunked body of `chunks` × 256 bytes; returns the status.
async fn chunked_upload(addr: std::net::SocketAddr, chunks: usize) -> u16 {
    let mut request = b"GET /runtime?dim=2 HTTP/1.1\r\nhost: 127.0.0.1\r\n\
        transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        .to_vec();
    for _ in 0..chunks {
        request.extend_from_slice(b"100\r\n");
        request.extend_from_slice(&[b'y'; 256]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    raw_status(addr, &request).await
}

/// Writes `request` as is and returns the status of the answer (read until the server closes or
/// the head is complete).
async fn raw_status(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await.unwrap() {
            0 => break,
            n => response.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&response);
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn metrics_parse_and_count_the_requests() {
    bounded(async {
        let server = start(config()).await;
        let mut client = Client::connect(server.addr).await;
        for _ in 0..3 {
            assert_eq!(client.get("/runtime?dim=2").await.status, StatusCode::OK);
        }
        assert_eq!(
            client.get("/arm/runtime?dim=x").await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(client.get("/missing").await.status, StatusCode::NOT_FOUND);

        let reply = client.get("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply
                .header("content-type")
                .starts_with("application/openmetrics-text")
        );
        let text = reply.body;
        check_exposition(&text);

        let requests = |route: &str, status: &str| {
            sample(
                &text,
                &format!(
                    r#"stampede_workload_requests_total{{route="{route}",status="{status}"}}"#
                ),
            )
        };
        assert_eq!(requests("/runtime", "200"), Some(3.0));
        assert_eq!(requests("/arm/runtime", "400"), Some(1.0));
        assert_eq!(requests("other", "404"), Some(1.0));
        assert_eq!(requests("/amd/runtime", "503"), Some(0.0));
        assert_eq!(
            sample(&text, "stampede_workload_compute_seconds_count"),
            Some(3.0)
        );
        assert_eq!(sample(&text, "stampede_workload_in_flight"), Some(0.0));
        assert_eq!(sample(&text, "stampede_workload_queue_depth"), Some(0.0));
        assert!(text.contains(r#"arch="arm64""#));

        // The scrape itself is counted by the next one.
        let text = client.get("/metrics").await.body;
        assert_eq!(
            sample(
                &text,
                r#"stampede_workload_requests_total{route="/metrics",status="200"}"#
            ),
            Some(1.0)
        );
    })
    .await;
}

/// Checks the OpenMetrics text format line by line: metadata comments, then samples of the form
/// `name{label="value",...} number`, ending in `# EOF`.
fn check_exposition(text: &str) {
    let name_ok = |name: &str| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut described = BTreeSet::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "no # EOF at the end");
    for line in &lines[..lines.len() - 1] {
        if let Some(meta) = line.strip_prefix("# ") {
            let mut words = meta.splitn(3, ' ');
            let kind = words.next().unwrap();
            assert!(
                ["HELP", "TYPE", "UNIT"].contains(&kind),
                "bad comment {line}"
            );
            let name = words.next().unwrap();
            assert!(name_ok(name), "bad name in {line}");
            described.insert(name.to_owned());
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                for label in labels.split(',') {
                    let (key, value) = label.split_once('=').unwrap();
                    assert!(name_ok(key), "bad label in {line}");
                    assert!(value.starts_with('"') && value.ends_with('"'), "{line}");
                }
                name
            }
            None => series,
        };
        assert!(name_ok(name), "bad name in {line}");
        assert!(
            described
                .iter()
                .any(|family| name.starts_with(family.as_str())),
            "sample before its metadata: {line}"
        );
    }
}
