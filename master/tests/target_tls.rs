//! HTTPS targets as a user writes them: `[target.tls]`, `http`, `connect_to` and `dns_ttl` are
//! checked at load (each error names its key, a missing CA file included), `insecure_skip_verify`
//! is warned about, and a run against an in-test TLS server counts what the server served, or
//! counts every attempt as a `tls` error when the certificate is not trusted.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn scenario(url: &str, target_extra: &str) -> String {
    format!(
        r#"
name = "https"
run_time = "2s"
report_interval = "500ms"

[[target]]
name = "arm"
url = "{url}"
arch = "arm64"
{target_extra}

[[request]]
name = "get"
path = "/"
timeout = "2s"

[load]
users = 2
wait = {{ kind = "constant", duration = "10ms" }}
"#
    )
}

/// A CA and a certificate for 127.0.0.1 signed by it, as (ca, cert, key) PEM.
fn pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "target CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn check(dir: &Path, text: &str) -> (Option<i32>, String) {
    let path = dir.join("s.toml");
    std::fs::write(&path, text).unwrap();
    run_master(
        &["check", path.to_str().unwrap()],
        dir,
        Duration::from_secs(30),
    )
}

#[test]
fn https_targets_and_their_keys_pass_check() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pki();
    std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
    let text = scenario(
        "https://pool.example.test/arm",
        r#"http = "auto"
streams_per_connection = 50
connections = 4
connect_to = ["127.0.0.1:8443", "[::1]:8443", "pool-b.internal:443"]
dns_ttl = "30s"
[target.tls]
ca = "ca.pem"
server_name = "pool.example.test"
versions = ["1.2", "1.3"]
resumption = false"#,
    );
    let (code, err) = check(dir.path(), &text);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("WARNING"), "{err}");
}

#[test]
fn bad_target_connection_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "https://127.0.0.1:9/",
            "[target.tls]\nca = \"missing.pem\"",
            "target[0].tls.ca",
        ),
        (
            "https://127.0.0.1:9/",
            "[target.tls]\nversions = [\"1.1\"]",
            "target[0].tls.versions",
        ),
        (
            "https://127.0.0.1:9/",
            "[target.tls]\ncert = \"c.pem\"",
            "target[0].tls.key",
        ),
        (
            "http://127.0.0.1:9/",
            "[target.tls]\ninsecure_skip_verify = true",
            "target[0].tls",
        ),
        ("https://127.0.0.1:9/", "http = \"3\"", "target[0].http"),
        (
            "https://127.0.0.1:9/",
            "http = \"2\"\nstreams_per_connection = 0",
            "target[0].streams_per_connection",
        ),
        (
            "http://127.0.0.1:9/",
            "connections = 4",
            "target[0].connections",
        ),
        (
            "https://127.0.0.1:9/",
            "connect_to = [\"10.0.0.1\"]",
            "target[0].connect_to[0]",
        ),
        (
            "https://127.0.0.1:9/",
            "dns_ttl = \"soon\"",
            "target[0].dns_ttl",
        ),
        (
            "https://127.0.0.1:9/",
            "[target.tls]\nresumption = false\nsni = \"x\"",
            "sni",
        ),
    ];
    for (url, extra, key) in cases {
        let (code, err) = check(dir.path(), &scenario(url, extra));
        assert_eq!(code, Some(2), "{extra}: expected exit 2:\n{err}");
        assert!(err.contains(key), "{extra}: `{key}` not named:\n{err}");
    }
    // A CA file that holds no certificate.
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let (code, err) = check(
        dir.path(),
        &scenario("https://127.0.0.1:9/", "[target.tls]\nca = \"junk.pem\""),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("target[0].tls.ca") && err.contains("junk.pem"),
        "{err}"
    );
}

#[test]
fn insecure_skip_verify_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = check(
        dir.path(),
        &scenario(
            "https://127.0.0.1:9/",
            "[target.tls]\ninsecure_skip_verify = true",
        ),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("WARNING")
            && err.contains("insecure_skip_verify")
            && err.contains("NOT verified"),
        "{err}"
    );
}

/// A TLS server on 127.0.0.1 answering `200 ok` with keep-alive; counts what it served.
fn tls_server(cert: &str, key: &str) -> (u16, Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            // Bounded: the run lasts two seconds.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let accepted = tokio::time::timeout_at(deadline, listener.accept()).await;
                let Ok(Ok((tcp, _))) = accepted else { return };
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match tls.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        buf.drain(..end);
                        counter.fetch_add(1, Ordering::SeqCst);
                        let resp =
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-arch: arm64\r\n\r\nok";
                        if tls.write_all(resp).await.is_err() || tls.flush().await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    });
    (port, served, thread)
}

#[test]
fn a_run_against_https_counts_what_the_server_served_and_tls_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki();
    std::fs::write(dir.path().join("ca.pem"), &ca).unwrap();
    let (port, served, _server) = tls_server(&cert, &key);
    let url = format!("https://127.0.0.1:{port}/");

    // Trusted through `ca`: every request a 2xx, as many as the server served.
    let path = dir.path().join("ok.toml");
    std::fs::write(&path, scenario(&url, "[target.tls]\nca = \"ca.pem\"")).unwrap();
    let summary = dir.path().join("ok.json");
    let (code, err) = run_master(
        &[
            "run",
            path.to_str().unwrap(),
            "--headless",
            "--summary",
            summary.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{err}");
    let s = read_summary(&summary);
    let requests = s["totals"]["requests"].as_u64().unwrap();
    assert!(requests > 10, "{requests}");
    assert_eq!(requests, served.load(Ordering::SeqCst));
    assert_eq!(s["totals"]["status"]["2xx"].as_u64(), Some(requests));

    // Not trusted: every attempt is a `tls` error, and the server served nothing more.
    let before = served.load(Ordering::SeqCst);
    let path = dir.path().join("untrusted.toml");
    std::fs::write(&path, scenario(&url, "")).unwrap();
    let summary = dir.path().join("untrusted.json");
    let (code, err) = run_master(
        &[
            "run",
            path.to_str().unwrap(),
            "--headless",
            "--summary",
            summary.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    assert!(code.is_some(), "{err}");
    let s = read_summary(&summary);
    let requests = s["totals"]["requests"].as_u64().unwrap();
    assert!(requests > 0);
    assert_eq!(s["totals"]["errors"]["tls"].as_u64(), Some(requests), "{s}");
    assert_eq!(served.load(Ordering::SeqCst), before);
}
