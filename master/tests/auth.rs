//! Authentication with real processes: a token is required by default, a wrong one is refused
//! with a reason on both sides while the run goes on with the right one, `--insecure` is loud,
//! and the token never shows in logs or the summary.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const TOKEN: &str = "s3cret-t0ken-for-the-test";

fn counting_server() -> TestServer {
    TestServer::start(Behaviour {
        arch: "arm64",
        every_5xx: 0,
        delay: Duration::from_millis(10),
        ..Default::default()
    })
}

#[test]
fn remote_workers_need_a_token_or_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let server = counting_server();
    let s = one_server_scenario(dir.path(), &server, 1, "1s");
    let (code, err) = run_master(
        &["run", &s, "--headless", "--expect-workers", "1"],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--token") && err.contains("--insecure"),
        "{err}"
    );

    let out = Command::new(worker_bin())
        .args(["--master", "http://127.0.0.1:9"])
        .env_remove("STAMPEDE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("token is required") && err.contains("--insecure"),
        "{err}"
    );
    assert_eq!(server.counts.served(), 0);
}

#[test]
fn a_wrong_token_is_refused_while_the_run_proceeds_with_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = counting_server();
    let s = one_server_scenario(dir.path(), &server, 4, "3s");
    let summary = dir.path().join("summary.json");
    let mut master = start_run(&s, 1, &summary, &["--token", TOKEN], dir.path());
    let master_url = format!("http://{}", master.addr);
    for bad in [&["--token", "not-the-token"][..], &["--insecure"][..]] {
        let out = Command::new(worker_bin())
            .args(["--master", &master_url, "--id", "intruder"])
            .args(bad)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("UNAUTHENTICATED") && err.contains("wrong or missing token"),
            "the worker says why: {err}"
        );
    }
    let mut good = start_worker(master.addr, "good", &["--token", TOKEN]);
    let code = wait_exit(&mut master.child, Duration::from_secs(60));
    let log = master.log.lock().unwrap().join("\n");
    assert_eq!(code, Some(0), "master log:\n{log}");
    assert_eq!(wait_exit(&mut good, Duration::from_secs(10)), Some(0));
    assert_eq!(
        log.matches("refused a worker: wrong or missing token")
            .count(),
        2,
        "the master logs each refusal:\n{log}"
    );
    let s = read_summary(&summary);
    let served = server.counts.served();
    assert!(served > 20, "{served}");
    assert_eq!(s["totals"]["requests"], served);
    let ids: Vec<&str> = s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["good"], "the intruder never joined");
    // The token is in no log line, no status line and not in the summary.
    let out = master.stdout.lock().unwrap().join("\n");
    let text = std::fs::read_to_string(&summary).unwrap();
    for (what, body) in [("log", &log), ("stdout", &out), ("summary", &text)] {
        assert!(!body.contains(TOKEN), "the token leaked into the {what}");
    }
}

#[test]
fn insecure_is_loud_and_admits_workers_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = counting_server();
    let s = one_server_scenario(dir.path(), &server, 2, "2s");
    let summary = dir.path().join("summary.json");
    let mut master = start_run(&s, 1, &summary, &["--insecure"], dir.path());
    let mut worker = start_worker(master.addr, "w", &["--insecure"]);
    let code = wait_exit(&mut master.child, Duration::from_secs(60));
    let log = master.log.lock().unwrap().join("\n");
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(wait_exit(&mut worker, Duration::from_secs(10)), Some(0));
    assert!(
        log.contains("INSECURE: authentication is disabled"),
        "{log}"
    );
    assert_eq!(
        read_summary(&summary)["totals"]["requests"],
        server.counts.served()
    );
}
