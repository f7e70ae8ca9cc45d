//! HTTPS targets against nginx (skipped, with the reason printed, when nginx is absent) and
//! in-test rustls servers: what the engine records must match nginx's own access log, which
//! also shows the protocol each request really used; the phases must match what a proxy in
//! front of the server was told to hold back.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::tls::{Hold, Logged, Nginx, Pki, Proxy, free_port, serve_ok, tls_server};
use common::*;
use stampede_worker::Engine;
use stampede_worker::proto::{ConnectionMode, HttpVersion, Outcome, Phase, RunConfig, Target};

/// Two targets on one nginx: `arm` (`/arm/`) and `amd` (`/amd/`), answering with their arch.
fn two_targets(base: &str, pki: &Pki) -> RunConfig {
    let mut config = run_config(&format!("{base}/arm"), "arm64", "/x");
    config.targets[0].name = "arm".into();
    config.targets[0].tls = Some(pki.trusting());
    config.targets.push(Target {
        name: "amd".into(),
        url: format!("{base}/amd"),
        arch: "amd64".into(),
        weight: 1,
        tls: Some(pki.trusting()),
        ..Default::default()
    });
    config
}

/// Requests nginx logged per arch (by path).
fn logged_by_arch(lines: &[Logged]) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for l in lines {
        let arch = if l.uri.starts_with("/arm/") {
            "arm64"
        } else if l.uri.starts_with("/amd/") {
            "amd64"
        } else {
            "?"
        };
        *out.entry(arch.to_string()).or_insert(0) += 1;
    }
    out
}

fn connections(lines: &[Logged]) -> u64 {
    lines
        .iter()
        .map(|l| l.connection)
        .collect::<HashSet<_>>()
        .len() as u64
}

/// Waits for nginx to have logged `n` lines (it logs each request as it ends).
async fn settle(nginx: &Nginx, n: u64) -> Vec<Logged> {
    for _ in 0..100 {
        let lines = nginx.logged();
        if lines.len() as u64 >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nginx.logged()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_keep_alive_counts_match_nginx_per_arch() {
    let pki = Pki::new();
    let port = free_port();
    let Some(nginx) = Nginx::start(&pki, &[format!("127.0.0.1:{port} ssl")]) else {
        return;
    };
    let config = two_targets(&format!("https://localhost:{port}"), &pki);
    let mut engine = Engine::build(&config, 2).unwrap();
    let rec = run_all(&mut engine, 2, Duration::from_millis(800)).await;
    let recorded = total(&rec.latencies);
    let lines = settle(&nginx, recorded).await;
    assert!(recorded > 50, "the run made requests ({recorded})");
    assert_all_2xx(&rec.latencies, lines.len() as u64);
    assert_eq!(
        rec.by_arch(),
        logged_by_arch(&lines),
        "per arch, as nginx logged"
    );
    for l in &lines {
        assert_eq!(
            (l.protocol.as_str(), l.ssl_protocol.as_str()),
            ("HTTP/1.1", "TLSv1.3"),
            "{l:?}"
        );
        assert_eq!(
            (l.host.as_str(), l.sni.as_str()),
            ("localhost", "localhost")
        );
    }
    // Kept alive: one connect and one handshake per connection nginx saw, a TTFB per request.
    let conns = connections(&lines);
    assert_eq!(
        conns, 4,
        "two users on each of two targets, one connection each"
    );
    assert_eq!(rec.phase_count(Phase::Connect), conns);
    assert_eq!(rec.phase_count(Phase::Tls), conns);
    assert_eq!(rec.phase_count(Phase::Ttfb), recorded);
    // localhost is a name: resolved once per target (the cache keeps it), never per request.
    let dns = rec.phase_count(Phase::Dns);
    assert!((1..=4).contains(&dns), "dns lookups {dns}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_over_tls_and_auto_negotiate_http2_with_nginx() {
    let pki = Pki::new();
    let port = free_port();
    let Some(nginx) = Nginx::start(&pki, &[format!("127.0.0.1:{port} ssl http2")]) else {
        return;
    };
    let mut config = two_targets(&format!("https://127.0.0.1:{port}"), &pki);
    config.targets[0].http = HttpVersion::Http2 as i32;
    config.targets[0].connections = 2;
    config.targets[0].streams_per_connection = 4;
    config.targets[1].http = HttpVersion::Auto as i32;
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 6, Duration::from_millis(800)).await;
    let recorded = total(&rec.latencies);
    let lines = settle(&nginx, recorded).await;
    assert!(recorded > 50, "the run made requests ({recorded})");
    assert_all_2xx(&rec.latencies, lines.len() as u64);
    assert_eq!(rec.by_arch(), logged_by_arch(&lines));
    for l in &lines {
        assert_eq!(
            (l.protocol.as_str(), l.ssl_protocol.as_str()),
            ("HTTP/2.0", "TLSv1.3"),
            "{l:?}"
        );
    }
    let arm_conns = connections(
        &lines
            .iter()
            .filter(|l| l.uri.starts_with("/arm/"))
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(arm_conns, 2, "`connections = 2` on one engine thread");
    // `auto`'s probe connection became the thread's one h2 connection.
    let amd_conns = connections(
        &lines
            .iter()
            .filter(|l| l.uri.starts_with("/amd/"))
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(amd_conns, 1);
    assert_eq!(rec.phase_count(Phase::Tls), arm_conns + amd_conns);
    assert_eq!(rec.phase_count(Phase::Ttfb), recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_http11_and_h2c_uses_prior_knowledge() {
    let pki = Pki::new();
    let (tls_port, h2c_port) = (free_port(), free_port());
    let Some(nginx) = Nginx::start(
        &pki,
        &[
            format!("127.0.0.1:{tls_port} ssl"),
            format!("127.0.0.1:{h2c_port} http2"),
        ],
    ) else {
        return;
    };
    let mut config = run_config(&format!("https://127.0.0.1:{tls_port}/arm"), "arm64", "/x");
    config.targets[0].http = HttpVersion::Auto as i32;
    config.targets[0].tls = Some(pki.trusting());
    config.targets.push(Target {
        name: "h2c".into(),
        url: format!("http://127.0.0.1:{h2c_port}/amd"),
        arch: "amd64".into(),
        weight: 1,
        http: HttpVersion::Http2 as i32,
        ..Default::default()
    });
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 2, Duration::from_millis(600)).await;
    let recorded = total(&rec.latencies);
    let lines = settle(&nginx, recorded).await;
    assert_all_2xx(&rec.latencies, lines.len() as u64);
    assert_eq!(rec.by_arch(), logged_by_arch(&lines));
    let protocols: HashSet<(u16, String, String)> = lines
        .iter()
        .map(|l| (l.server_port, l.protocol.clone(), l.ssl_protocol.clone()))
        .collect();
    assert_eq!(
        protocols,
        HashSet::from([
            (tls_port, "HTTP/1.1".to_string(), "TLSv1.3".to_string()),
            (h2c_port, "HTTP/2.0".to_string(), "-".to_string()),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_tls_error_and_reaches_no_server() {
    let pki = Pki::new();
    let port = free_port();
    let Some(nginx) = Nginx::start(&pki, &[format!("127.0.0.1:{port} ssl")]) else {
        return;
    };
    let url = format!("https://127.0.0.1:{port}/arm");
    // No `ca`: the test CA is in no system store.
    let config = run_config(&url, "arm64", "/x");
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 2, Duration::from_millis(400)).await;
    let attempts = total(&rec.latencies);
    assert!(attempts > 10, "attempts {attempts}");
    assert_eq!(count_outcome(&rec.latencies, Outcome::ErrorTls), attempts);
    assert_eq!(rec.reason("unknown issuer"), attempts, "{:?}", rec.reasons);
    // The handshake got as far as the certificate: connect and DNS-free, no TLS phase.
    assert_eq!(rec.phase_count(Phase::Connect), attempts);
    assert_eq!(rec.phase_count(Phase::Tls), 0);

    // A name the certificate does not carry.
    let mut config = run_config(&url, "arm64", "/x");
    let mut tls = pki.trusting();
    tls.server_name = "elsewhere.test".into();
    config.targets[0].tls = Some(tls);
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 1, Duration::from_millis(200)).await;
    let attempts = total(&rec.latencies);
    assert!(attempts > 0);
    assert_eq!(rec.reason("name mismatch"), attempts, "{:?}", rec.reasons);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        nginx.logged().is_empty(),
        "nginx logged {:?}",
        nginx.logged()
    );

    // insecure_skip_verify reaches it.
    let mut config = run_config(&url, "arm64", "/x");
    config.targets[0].tls = Some(stampede_worker::proto::TargetTls {
        insecure_skip_verify: true,
        ..Default::default()
    });
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 1, Duration::from_millis(300)).await;
    let recorded = total(&rec.latencies);
    let lines = settle(&nginx, recorded).await;
    assert!(recorded > 0);
    assert_all_2xx(&rec.latencies, lines.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumption_off_forces_full_handshakes_and_on_resumes() {
    let pki = Pki::new();
    let port = free_port();
    let Some(nginx) = Nginx::start(&pki, &[format!("127.0.0.1:{port} ssl")]) else {
        return;
    };
    let url = format!("https://127.0.0.1:{port}/arm");
    let run = |resume: bool| {
        let mut config = run_config(&url, "arm64", "/x");
        config.connection = ConnectionMode::Close as i32;
        let mut tls = pki.trusting();
        tls.no_resumption = !resume;
        config.targets[0].tls = Some(tls);
        config
    };
    let mut engine = Engine::build(&run(false), 1).unwrap();
    let off = run_all(&mut engine, 2, Duration::from_millis(500)).await;
    let n_off = total(&off.latencies);
    let lines = settle(&nginx, n_off).await;
    assert!(n_off > 10, "requests {n_off}");
    assert_all_2xx(&off.latencies, lines.len() as u64);
    assert_eq!(connections(&lines), n_off, "a connection per request");
    assert_eq!(
        off.phase_count(Phase::Tls),
        n_off,
        "a handshake per request"
    );
    let reused = lines.iter().filter(|l| l.reused).count();
    assert_eq!(reused, 0, "resumption = false: no session reused");

    let mut engine = Engine::build(&run(true), 1).unwrap();
    let on = run_all(&mut engine, 2, Duration::from_millis(500)).await;
    let n_on = total(&on.latencies);
    let all = settle(&nginx, n_off + n_on).await;
    let lines = &all[n_off as usize..];
    assert_all_2xx(&on.latencies, lines.len() as u64);
    let reused = lines.iter().filter(|l| l.reused).count() as u64;
    // Only each user's very first connection can have had no ticket to offer.
    assert!(reused + 2 >= n_on, "{reused} of {n_on} resumed");
    eprintln!("resumption on: {reused} of {n_on} connections resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_pins_addresses_and_keeps_host_and_sni() {
    let pki = Pki::new();
    let port = free_port();
    let Some(nginx) = Nginx::start(
        &pki,
        &[
            format!("127.0.0.1:{port} ssl"),
            format!("127.0.0.2:{port} ssl"),
        ],
    ) else {
        return;
    };
    // `.invalid` never resolves: every connection must go to a pinned address.
    let mut config = run_config(
        &format!("https://pool.stampede.invalid:{port}/arm"),
        "arm64",
        "/x",
    );
    config.connection = ConnectionMode::Close as i32;
    config.targets[0].tls = Some(pki.trusting());
    config.targets[0].connect_to = vec![format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}")];
    let mut engine = Engine::build(&config, 2).unwrap();
    let rec = run_all(&mut engine, 3, Duration::from_millis(600)).await;
    let recorded = total(&rec.latencies);
    let lines = settle(&nginx, recorded).await;
    assert!(recorded > 10, "requests {recorded}");
    assert_all_2xx(&rec.latencies, lines.len() as u64);
    let mut by_addr: HashMap<&str, u64> = HashMap::new();
    for l in &lines {
        assert_eq!(
            (l.host.as_str(), l.sni.as_str()),
            ("pool.stampede.invalid", "pool.stampede.invalid"),
            "{l:?}"
        );
        *by_addr.entry(l.server_addr.as_str()).or_insert(0) += 1;
    }
    let (a, b) = (by_addr["127.0.0.1"], by_addr["127.0.0.2"]);
    assert!(a.abs_diff(b) <= 1, "round-robin split {a} / {b}");
    assert_eq!(rec.phase_count(Phase::Dns), 0, "pinned: nothing resolved");
}

/// A proxy holding each response's first byte 20 ms: the TTFB phase shows exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttfb_matches_a_proxy_holding_the_first_byte() {
    let hold = Duration::from_millis(20);
    let server = http_server(Behaviour::default()).await;
    let proxy = Proxy::start(server.addr, Hold::EachResponse(hold)).await;
    let config = run_config(&format!("http://{}", proxy.addr), "amd64", "/");
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 1, Duration::from_millis(1000)).await;
    let ttfb = rec.phase(Phase::Ttfb);
    let p50 = ttfb.value_at_quantile(0.5) as f64 / 1000.0;
    eprintln!(
        "ttfb p50 {p50:.3} ms over {} requests (held {hold:?})",
        ttfb.len()
    );
    assert_eq!(ttfb.len(), total(&rec.latencies));
    assert!((20.0..=21.5).contains(&p50), "ttfb p50 {p50} ms");
    // Kept alive: one connection, one connect phase, as the server counted.
    assert_eq!(rec.phase_count(Phase::Connect), server.counts.accepted());
}

/// A proxy holding the ServerHello 30 ms: the TLS phase shows exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_phase_matches_a_proxy_holding_the_server_hello() {
    let hold = Duration::from_millis(30);
    let pki = Pki::new();
    let server = tls_server(pki.server_config(&[b"http/1.1"]), serve_ok).await;
    let proxy = Proxy::start(server.addr, Hold::FirstBytes(hold)).await;
    let mut config = run_config(
        &format!("https://127.0.0.1:{}", proxy.addr.port()),
        "amd64",
        "/",
    );
    config.connection = ConnectionMode::Close as i32;
    let mut tls = pki.trusting();
    tls.no_resumption = true;
    config.targets[0].tls = Some(tls);
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 1, Duration::from_millis(1200)).await;
    let phase = rec.phase(Phase::Tls);
    let p50 = phase.value_at_quantile(0.5) as f64 / 1000.0;
    eprintln!(
        "tls p50 {p50:.3} ms over {} handshakes (held {hold:?})",
        phase.len()
    );
    assert!(phase.len() >= 10, "handshakes {}", phase.len());
    assert_eq!(phase.len(), server.counts.accepted());
    assert_eq!(
        total(&rec.latencies),
        server.counts.served.load(Ordering::SeqCst)
    );
    assert!((30.0..=33.0).contains(&p50), "tls p50 {p50} ms");
}

/// Kept-alive HTTPS against the in-test server: connect and TLS counts equal the
/// connections it accepted (no nginx needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_https_counts_one_connect_per_accepted_connection() {
    let pki = Pki::new();
    let server = tls_server(pki.server_config(&[b"http/1.1"]), serve_ok).await;
    let mut config = run_config(
        &format!("https://127.0.0.1:{}", server.addr.port()),
        "amd64",
        "/",
    );
    config.targets[0].tls = Some(pki.trusting());
    let mut engine = Engine::build(&config, 2).unwrap();
    let rec = run_all(&mut engine, 3, Duration::from_millis(600)).await;
    let served = server.counts.served.load(Ordering::SeqCst);
    assert!(served > 20);
    assert_all_2xx(&rec.latencies, served);
    assert_eq!(server.counts.accepted(), 3);
    assert_eq!(rec.phase_count(Phase::Connect), server.counts.accepted());
    assert_eq!(rec.phase_count(Phase::Tls), server.counts.accepted());
    assert_eq!(rec.phase_count(Phase::Dns), 0);
    assert_eq!(rec.phase_count(Phase::Ttfb), served);
}

/// Mutual TLS: with the client certificate every request is served; without it every attempt
/// is a `tls` error naming the refusal, and the server serves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_reach_a_server_that_requires_them() {
    let pki = Pki::new();
    let server = tls_server(pki.mtls_server_config(), serve_ok).await;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let mut config = run_config(&url, "amd64", "/");
    let (cert, key) = pki.client_identity();
    let mut tls = pki.trusting();
    tls.cert_pem = cert.into_bytes();
    tls.key_pem = key.into_bytes();
    config.targets[0].tls = Some(tls);
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 2, Duration::from_millis(400)).await;
    let served = server.counts.served.load(Ordering::SeqCst);
    assert!(served > 10, "{served}");
    assert_all_2xx(&rec.latencies, served);

    let mut config = run_config(&url, "amd64", "/");
    config.targets[0].tls = Some(pki.trusting());
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 2, Duration::from_millis(300)).await;
    let attempts = total(&rec.latencies);
    assert!(attempts > 0);
    assert_eq!(
        count_outcome(&rec.latencies, Outcome::ErrorTls),
        attempts,
        "{:?}",
        rec.reasons
    );
    assert_eq!(
        rec.reason("server rejected the client certificate"),
        attempts,
        "{:?}",
        rec.reasons
    );
    assert_eq!(server.counts.served.load(Ordering::SeqCst), served);
}

/// `versions` and `server_name` are what nginx sees: TLS 1.2 only, and the SNI asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_server_name_are_what_nginx_logs() {
    let pki = Pki::new();
    let port = free_port();
    let Some(nginx) = Nginx::start(&pki, &[format!("127.0.0.1:{port} ssl")]) else {
        return;
    };
    let mut config = run_config(&format!("https://127.0.0.1:{port}/arm"), "arm64", "/x");
    let mut tls = pki.trusting();
    tls.versions = vec![stampede_worker::proto::TlsVersion::Tls12 as i32];
    tls.server_name = "localhost".into();
    config.targets[0].tls = Some(tls);
    let mut engine = Engine::build(&config, 1).unwrap();
    let rec = run_all(&mut engine, 2, Duration::from_millis(300)).await;
    let recorded = total(&rec.latencies);
    let lines = settle(&nginx, recorded).await;
    assert!(recorded > 10);
    assert_all_2xx(&rec.latencies, lines.len() as u64);
    for l in &lines {
        assert_eq!(
            (l.ssl_protocol.as_str(), l.sni.as_str(), l.host.as_str()),
            ("TLSv1.2", "localhost", "127.0.0.1"),
            "{l:?}"
        );
    }
}
