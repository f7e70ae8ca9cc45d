//! TLS on the gRPC channel, with real processes and certificates made for the test: a worker
//! that trusts the master's CA and shows a client certificate runs the load and every request
//! is counted; a plain-text worker, one that does not trust the CA, and one without a client
//! certificate are all refused, and none of them sends a request.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

const TOKEN: &str = "tls-test-token";

/// A CA, a master certificate for 127.0.0.1 and a worker (client) certificate, as PEM files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    other_ca: PathBuf,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

fn leaf(names: &[&str], ca: &rcgen::Certificate, ca_key: &KeyPair) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let params = CertificateParams::new(names).unwrap();
    let cert = params.signed_by(&key, ca, ca_key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki(dir: &Path) -> Pki {
    let (ca_cert, ca_key) = ca("stampede test CA");
    let (other, _) = ca("someone else's CA");
    let (server_cert, server_key) = leaf(&["127.0.0.1", "localhost"], &ca_cert, &ca_key);
    let (client_cert, client_key) = leaf(&["worker"], &ca_cert, &ca_key);
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", &ca_cert.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server.key", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client.key", &client_key),
        other_ca: write("other-ca.pem", &other.pem()),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs a worker that should be refused; returns its exit code and what it said.
fn refused_worker(master: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(worker_bin())
        .args(["--master", master, "--id", "refused", "--no-reconnect"])
        .args(["--token", TOKEN])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (code, err)
}

#[test]
fn mutual_tls_admits_the_trusted_worker_and_refuses_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let server = TestServer::start(Behaviour {
        arch: "arm64",
        delay: Duration::from_millis(10),
        ..Default::default()
    });
    let scenario = one_server_scenario(dir.path(), &server, 4, "3s");
    let summary = dir.path().join("summary.json");
    let mut master = start_run(
        &scenario,
        1,
        &summary,
        &[
            "--token",
            TOKEN,
            "--tls-cert",
            s(&pki.server_cert),
            "--tls-key",
            s(&pki.server_key),
            "--tls-client-ca",
            s(&pki.ca),
        ],
        dir.path(),
    );
    let plain = format!("http://{}", master.addr);
    let client = [
        "--tls-cert",
        s(&pki.client_cert),
        "--tls-key",
        s(&pki.client_key),
    ];

    // Plain text to a TLS listener: no session.
    let (code, err) = refused_worker(&plain, &[]);
    assert_eq!(code, Some(1), "{err}");
    // TLS, but the master's certificate is not from a CA it trusts.
    let mut args = vec!["--tls-ca", s(&pki.other_ca)];
    args.extend(client);
    let (code, err) = refused_worker(&plain, &args);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    // Trusts the master, but shows no client certificate.
    let (code, err) = refused_worker(&plain, &["--tls-ca", s(&pki.ca)]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(server.counts.served(), 0, "a refused worker sent requests");

    let mut args = vec!["--token", TOKEN, "--tls-ca", s(&pki.ca)];
    args.extend(client);
    let mut good = start_worker(master.addr, "trusted", &args);
    let code = wait_exit(&mut master.child, Duration::from_secs(60));
    let log = master.log.lock().unwrap().join("\n");
    assert_eq!(code, Some(0), "master log:\n{log}");
    assert_eq!(wait_exit(&mut good, Duration::from_secs(10)), Some(0));
    assert!(
        log.contains("gRPC over TLS, client certificates required"),
        "{log}"
    );
    let summary = read_summary(&summary);
    let served = server.counts.served();
    assert!(served > 20, "{served}");
    assert_eq!(summary["totals"]["requests"].as_u64(), Some(served));
    let workers = summary["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(workers[0]["id"], "trusted");
}

#[test]
fn tls_flags_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Behaviour {
        arch: "arm64",
        ..Default::default()
    });
    let scenario = one_server_scenario(dir.path(), &server, 1, "1s");
    let missing = dir.path().join("nope.pem");
    let (code, err) = run_master(
        &[
            "run",
            &scenario,
            "--headless",
            "--expect-workers",
            "1",
            "--token",
            TOKEN,
            "--tls-cert",
            s(&missing),
            "--tls-key",
            s(&missing),
        ],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--tls-cert") && err.contains("nope.pem"),
        "{err}"
    );
    // Local workers have no certificate to show.
    let pki = pki(dir.path());
    let (code, err) = run_master(
        &[
            "run",
            &scenario,
            "--headless",
            "--local-workers",
            "1",
            "--tls-cert",
            s(&pki.server_cert),
            "--tls-key",
            s(&pki.server_key),
        ],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("local workers"), "{err}");
    // https without a CA to check the master against.
    let (code, err) = refused_worker("https://127.0.0.1:9", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--tls-ca"), "{err}");
    assert_eq!(server.counts.served(), 0);
}
