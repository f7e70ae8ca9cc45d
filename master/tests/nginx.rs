//! Real master runs (a local worker) against nginx, whose access log is the oracle: over
//! HTTPS/1.1 keep-alive, h2 over TLS and h2c the summary's counts per arch and target equal
//! nginx's lines and nginx logs the protocol each target asked for; the summary's connect count
//! equals the connections nginx served on; an untrusted certificate makes every attempt a `tls`
//! error with its reason in the failures table while nginx logs nothing; and behind proxies that
//! hold the first response byte 20 ms (and the ServerHello 30 ms), the summary's TTFB (and TLS)
//! phase medians are those delays; the run's journal recovers to the same phases and failures.
//! Skipped, with the reason printed, without nginx.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::nginx::{Hold, Nginx, Pki, Proxy, free_port};
use common::{master_bin, read_summary, wait_exit};
use serde_json::Value;

fn target(name: &str, url: &str, arch: &str, extra: &str) -> String {
    format!("[[target]]\nname = \"{name}\"\nurl = \"{url}\"\narch = \"{arch}\"\n{extra}\n")
}

/// A run of `targets` (TOML) by `users` users; returns the scenario's path.
fn scenario(dir: &Path, name: &str, targets: &[String], users: usize) -> String {
    scenario_with(dir, name, targets, users, "")
}

/// [`scenario`] with more `[load]` keys.
fn scenario_with(dir: &Path, name: &str, targets: &[String], users: usize, load: &str) -> String {
    let text = format!(
        r#"
name = "{name}"
run_time = "3s"
report_interval = "500ms"
stop_timeout = "5s"

{targets}
[[request]]
name = "get"
path = "/x"
timeout = "5s"

[load]
users = {users}
wait = {{ kind = "constant", duration = "10ms" }}
{load}
"#,
        targets = targets.concat(),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs `scenario` headless to its end; its summary, and what the master printed (the status
/// lines on stdout, then its logs).
fn run(dir: &Path, scenario: &str) -> (Value, String) {
    run_with(dir, scenario, &[])
}

fn run_with(dir: &Path, scenario: &str, extra: &[&str]) -> (Value, String) {
    let summary = dir.join("summary.json");
    let mut child = Command::new(master_bin())
        .args(["run", scenario, "--headless", "--status-every", "1s"])
        .args(extra)
        .args(["--local-workers", "1", "--summary"])
        .arg(&summary)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stampede-master");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let code = wait_exit(&mut child, Duration::from_secs(90));
    let printed = format!("{}\n{}", out.join().unwrap(), err.join().unwrap());
    assert!(code.is_some(), "the master did not finish:\n{printed}");
    (read_summary(&summary), printed)
}

/// The summary `recover` rebuilds from the run's journal (in `dir`, the master's state dir).
fn recovered(dir: &Path) -> Value {
    let journal = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "journal"))
        .expect("the run wrote a journal");
    let out = dir.join("recovered.json");
    let status = Command::new(master_bin())
        .arg("recover")
        .arg(&journal)
        .arg("-o")
        .arg(&out)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run recover");
    assert!(status.code().is_some(), "recover did not finish");
    read_summary(&out)
}

/// A resumed or recovered run keeps what the live one counted: the journal's phases and
/// failure reasons rebuild the same figures.
fn assert_journal_keeps_phases(dir: &Path, live: &Value) {
    let back = recovered(dir);
    assert_eq!(back["totals"]["phases_ms"], live["totals"]["phases_ms"]);
    assert_eq!(back["failures"], live["failures"]);
    for group in ["by_arch", "by_target"] {
        let names = live[group].as_object().cloned().unwrap_or_default();
        for name in names.keys() {
            assert_eq!(
                back[group][name]["phases_ms"], live[group][name]["phases_ms"],
                "{group} {name}"
            );
        }
    }
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[test]
fn https_h2_and_h2c_counts_and_protocols_equal_nginx_log() {
    let pki = Pki::new();
    let (tls_port, h2c_port) = (free_port(), free_port());
    let listens = [
        format!("127.0.0.1:{tls_port} ssl http2"),
        format!("127.0.0.1:{h2c_port} http2"),
    ];
    let Some(nginx) = Nginx::start(&pki, &listens) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
    let tls = "[target.tls]\nca = \"ca.pem\"";
    let https = |path: &str| format!("https://127.0.0.1:{tls_port}{path}");
    let h2c = |path: &str| format!("http://127.0.0.1:{h2c_port}{path}");
    let mut targets = Vec::new();
    for arch in ["arm", "amd"] {
        let arch64 = format!("{arch}64");
        let h1 = format!("http = \"1.1\"\n{tls}");
        let h2 = format!("http = \"2\"\n{tls}");
        targets.push(target(
            &format!("{arch}-h1"),
            &https(&format!("/{arch}/h1")),
            &arch64,
            &h1,
        ));
        targets.push(target(
            &format!("{arch}-h2"),
            &https(&format!("/{arch}/h2")),
            &arch64,
            &h2,
        ));
        targets.push(target(
            &format!("{arch}-h2c"),
            &h2c(&format!("/{arch}/h2c")),
            &arch64,
            "http = \"2\"",
        ));
    }
    let path = scenario(dir.path(), "protocols", &targets, 12);
    let (s, err) = run(dir.path(), &path);
    let logged = nginx.logged();
    assert!(logged.len() > 100, "{} lines logged\n{err}", logged.len());

    // Per target: the summary's count is nginx's, over the protocol the target asked for.
    for (suffix, protocol, ssl) in [
        ("h1", "HTTP/1.1", "TLSv1.3"),
        ("h2", "HTTP/2.0", "TLSv1.3"),
        ("h2c", "HTTP/2.0", "-"),
    ] {
        for arch in ["arm", "amd"] {
            let prefix = format!("/{arch}/{suffix}/");
            let lines: Vec<_> = logged
                .iter()
                .filter(|l| l.uri.starts_with(&prefix))
                .collect();
            let name = format!("{arch}-{suffix}");
            let summary_count = count(&s["by_target"][&name]["requests"]);
            assert!(summary_count > 0, "{name}: nothing counted\n{err}");
            assert_eq!(summary_count, lines.len() as u64, "{name}");
            assert_eq!(
                count(&s["by_target"][&name]["status"]["2xx"]),
                summary_count
            );
            for l in lines {
                assert_eq!(
                    (l.protocol.as_str(), l.ssl_protocol.as_str()),
                    (protocol, ssl),
                    "{l:?}"
                );
            }
        }
    }
    // Per arch (from each response's x-arch header): nginx's lines under /arm/ and /amd/.
    for arch in ["arm", "amd"] {
        let lines = logged
            .iter()
            .filter(|l| l.uri.starts_with(&format!("/{arch}/")))
            .count();
        assert_eq!(
            count(&s["by_arch"][format!("{arch}64")]["requests"]),
            lines as u64
        );
    }
    // Kept-alive connections: one connect phase per connection nginx served on, and one TLS
    // handshake per connection on the TLS port.
    let connections: BTreeSet<u64> = logged.iter().map(|l| l.connection).collect();
    let tls_connections: BTreeSet<u64> = logged
        .iter()
        .filter(|l| l.port == tls_port)
        .map(|l| l.connection)
        .collect();
    let phases = &s["totals"]["phases_ms"];
    assert_eq!(
        count(&phases["connect"]["count"]),
        connections.len() as u64,
        "{phases}"
    );
    assert_eq!(
        count(&phases["tls"]["count"]),
        tls_connections.len() as u64,
        "{phases}"
    );
    // Every response had a first byte; literal addresses need no DNS.
    assert_eq!(
        count(&phases["ttfb"]["count"]),
        count(&s["totals"]["requests"])
    );
    assert!(phases.get("dns").is_none(), "{phases}");
    for arch in ["arm64", "amd64"] {
        let p = &s["by_arch"][arch]["phases_ms"];
        for phase in ["connect", "tls", "ttfb"] {
            assert!(
                p[phase]["p99"].as_f64().unwrap_or(0.0) > 0.0,
                "{arch} {phase}: {p}"
            );
        }
    }
    assert!(s.get("failures").is_none(), "{}", s["failures"]);
    assert_journal_keeps_phases(dir.path(), &s);
}

#[test]
fn an_untrusted_certificate_is_a_tls_error_with_its_reason_and_nginx_serves_nothing() {
    let pki = Pki::new();
    let port = free_port();
    let Some(nginx) = Nginx::start(&pki, &[format!("127.0.0.1:{port} ssl http2")]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("https://127.0.0.1:{port}/arm");
    let targets = [target("arm", &url, "arm64", "")];
    let path = scenario(dir.path(), "untrusted", &targets, 2);
    let outputs = ["--report", "report.html", "--csv", "out/run"];
    let (s, err) = run_with(dir.path(), &path, &outputs);
    let requests = count(&s["totals"]["requests"]);
    assert!(requests > 0, "{err}");
    assert_eq!(
        count(&s["totals"]["errors"]["tls"]),
        requests,
        "{}",
        s["totals"]
    );
    let failures = s["failures"].as_array().cloned().unwrap_or_default();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["target"], "arm");
    assert_eq!(failures[0]["kind"], "tls");
    assert_eq!(failures[0]["reason"], "unknown issuer");
    assert_eq!(count(&failures[0]["count"]), requests);
    // The headless status line says so while the run goes.
    assert!(
        err.contains("tls errors") && err.contains("unknown issuer"),
        "{err}"
    );
    assert!(nginx.logged().is_empty(), "{:?}", nginx.logged());
    assert_journal_keeps_phases(dir.path(), &s);
    // The report and the CSV carry the reason too.
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap_or_default();
    let row = format!(
        "<td class=\"l\">arm</td><td class=\"l\">tls</td><td class=\"l\">unknown issuer</td><td>{requests}</td>"
    );
    assert!(
        html.contains("Failures by reason") && html.contains(&row),
        "{html}"
    );
    let csv = dir.path().join("out/run_failure_reasons.csv");
    let csv = std::fs::read_to_string(csv).unwrap_or_default();
    assert!(
        csv.contains(&format!("arm,tls,unknown issuer,{requests}")),
        "{csv}"
    );
}

#[test]
fn phases_behind_proxies_that_hold_the_first_byte_and_the_server_hello() {
    let pki = Pki::new();
    let (plain, tls) = (free_port(), free_port());
    let listens = [format!("127.0.0.1:{plain}"), format!("127.0.0.1:{tls} ssl")];
    let Some(nginx) = Nginx::start(&pki, &listens) else {
        return;
    };
    let upstream = |port: u16| format!("127.0.0.1:{port}").parse().unwrap();
    let first_byte = Proxy::start(
        upstream(plain),
        Hold::EachResponse(Duration::from_millis(20)),
    );
    let hello = Proxy::start(upstream(tls), Hold::FirstBytes(Duration::from_millis(30)));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
    let targets = [
        target(
            "arm",
            &format!("http://{}/arm", first_byte.addr),
            "arm64",
            "",
        ),
        target(
            "amd",
            &format!("https://{}/amd", hello.addr),
            "amd64",
            "[target.tls]\nca = \"ca.pem\"",
        ),
    ];
    // A new connection per request: a handshake per request too, so the TLS median stands on
    // many of them, not on the first two (which pay the process's cold start).
    let path = scenario_with(dir.path(), "proxied", &targets, 4, "connection = \"close\"");
    let (s, err) = run(dir.path(), &path);
    let ttfb = &s["by_arch"]["arm64"]["phases_ms"]["ttfb"];
    let p50 = ttfb["p50"].as_f64().unwrap_or(0.0);
    assert!(
        (20.0..=21.5).contains(&p50),
        "TTFB p50 {p50} ms: {ttfb}\n{err}"
    );
    assert_eq!(
        count(&ttfb["count"]),
        count(&s["by_arch"]["arm64"]["requests"])
    );
    let handshake = &s["by_arch"]["amd64"]["phases_ms"]["tls"];
    let p50 = handshake["p50"].as_f64().unwrap_or(0.0);
    assert!(
        (30.0..=33.0).contains(&p50),
        "TLS p50 {p50} ms: {handshake}\n{err}"
    );
    eprintln!("phases through the proxies: TTFB {ttfb}, TLS {handshake}");
    // The same figures per target, and nginx served every request counted.
    assert_eq!(s["by_target"]["arm"]["phases_ms"]["ttfb"], *ttfb);
    assert_eq!(count(&s["totals"]["requests"]), nginx.logged().len() as u64);
}

/// The shipped study `scenarios/tls-handshake.toml`, pointed at nginx: every request is a new
/// connection with a full handshake (nginx never resumes a session), and the summary's TLS
/// phase counts every one of them, per arch.
#[test]
fn the_tls_handshake_study_pays_a_full_handshake_per_request() {
    let pki = Pki::new();
    let port = free_port();
    let Some(nginx) = Nginx::start(&pki, &[format!("127.0.0.1:{port} ssl")]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let study = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/tls-handshake.toml");
    let sets = [
        format!("target[0].url=https://127.0.0.1:{port}/arm"),
        format!("target[1].url=https://127.0.0.1:{port}/amd"),
        format!("target[0].tls.ca={}", ca.display()),
        format!("target[1].tls.ca={}", ca.display()),
        "stage[0].duration=3s".to_owned(),
        "load.users=4".to_owned(),
        "load.spawn_rate=100".to_owned(),
        "report_interval=500ms".to_owned(),
    ];
    let mut extra = Vec::new();
    for set in &sets {
        extra.extend(["--set", set.as_str()]);
    }
    let (s, err) = run_with(dir.path(), study.to_str().unwrap(), &extra);
    let logged = nginx.logged();
    let requests = count(&s["totals"]["requests"]);
    assert!(requests > 20, "{requests} requests\n{err}");
    assert_eq!(requests, logged.len() as u64);
    assert!(logged.iter().all(|l| !l.reused), "a session was resumed");
    let connections: BTreeSet<u64> = logged.iter().map(|l| l.connection).collect();
    assert_eq!(
        connections.len(),
        logged.len(),
        "a connection carried two requests"
    );
    for arch in ["arm64", "amd64"] {
        let r = &s["by_arch"][arch];
        let tls = &r["phases_ms"]["tls"];
        assert_eq!(count(&tls["count"]), count(&r["requests"]), "{arch}: {tls}");
        assert!(tls["p50"].as_f64().unwrap_or(0.0) > 0.0, "{arch}: {tls}");
        assert_eq!(
            count(&r["phases_ms"]["connect"]["count"]),
            count(&r["requests"])
        );
    }
}
