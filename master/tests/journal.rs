//! A run that survives its master: real master and worker processes against a loopback server
//! that counts what it serves (the oracle). The master is killed with SIGKILL mid-run and
//! restarted with `--resume` (closed model, then open model): the final totals equal the
//! server's count exactly and the outage is in the summary. Killed and never restarted,
//! `recover` rebuilds the summary as far as the journal went. A journal cut at every byte of
//! its last record, or with a flipped bit, loses that record and nothing else.

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "journal-token";

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server() -> TestServer {
    server_of("arm64")
}

fn server_of(arch: &'static str) -> TestServer {
    TestServer::start(Behaviour {
        arch,
        delay: Duration::from_millis(5),
        ..Default::default()
    })
}

fn worker(master: std::net::SocketAddr, id: &str) -> Reaped {
    Reaped(start_worker(master, id, &["--token", TOKEN]))
}

/// A headless master for `scenario` waiting for `workers`, on `bind`, its state in `dir`.
fn master(scenario: &str, dir: &Path, workers: usize, bind: &str, extra: &[&str]) -> MasterProcess {
    let summary = dir.join("summary.json");
    let n = workers.to_string();
    let mut args = vec![
        "run",
        scenario,
        "--headless",
        "--expect-workers",
        n.as_str(),
        "--bind",
        bind,
        "--summary",
        summary.to_str().unwrap(),
        "--token",
        TOKEN,
        "--wait-workers",
        "60s",
    ];
    args.extend_from_slice(extra);
    start_master(&args, dir)
}

fn wait_served(server: &TestServer, n: u64, limit: Duration) {
    let start = Instant::now();
    while server.counts.served() < n {
        assert!(
            start.elapsed() < limit,
            "only {} served",
            server.counts.served()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn journals(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "journal"))
        .collect()
}

/// Waits until the master's stream to its workers is quiet, then kills it with SIGKILL.
fn kill(m: &mut MasterProcess) -> Instant {
    m.child.kill().unwrap();
    let at = Instant::now();
    let _ = m.child.wait();
    at
}

fn requests(s: &Value) -> u64 {
    s["totals"]["requests"].as_u64().unwrap()
}

/// Kill the master 3 s into a 10 s run, restart it with `--resume auto` 3 s later: the run
/// finishes on plan and counts exactly what each server served, per target and per arch.
fn killed_and_resumed(load: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (arm, amd) = (server_of("arm64"), server_of("amd64"));
    let served = || arm.counts.served() + amd.counts.served();
    let scenario = dir.path().join("s.toml");
    let text = two_target_scenario(&arm.url("/arm"), &amd.url("/amd"), 4, "10s", "").replace(
        "[load]\nusers = 4\nwait = { kind = \"constant\", duration = \"5ms\" }\n",
        load,
    );
    std::fs::write(&scenario, text).unwrap();
    let scenario = scenario.to_str().unwrap().to_owned();
    let mut m = master(&scenario, dir.path(), 2, "127.0.0.1:0", &[]);
    let bind = m.addr.to_string();
    let _w1 = worker(m.addr, "w1");
    let _w2 = worker(m.addr, "w2");
    wait_served(&arm, 1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    let killed = kill(&mut m);
    let at_kill = served();
    std::thread::sleep(Duration::from_secs(3));
    let quiet = served();
    let mut m2 = master(&scenario, dir.path(), 2, &bind, &["--resume", "auto"]);
    let code = wait_exit(&mut m2.child, Duration::from_secs(90));
    let log = m2.log.lock().unwrap().join("\n");
    assert_eq!(code, Some(0), "resumed master:\n{log}");
    let s = read_summary(&dir.path().join("summary.json"));
    let (arm_served, amd_served) = (arm.counts.served(), amd.counts.served());
    eprintln!(
        "{load:?}: served {at_kill} before the kill, {quiet} 3 s later, {arm_served} + {amd_served} in all; summary {} ({} s of load, outages {})",
        requests(&s),
        s["duration_s"],
        s["outages"]
    );
    if std::env::var_os("SHOW_LOG").is_some() {
        eprintln!("{log}");
    }
    assert!(
        quiet - at_kill < 200,
        "the workers stopped when the master died"
    );
    // The resumed master really drove the rest of the plan.
    assert!(
        arm_served + amd_served > quiet + 200,
        "load after the resume: {} requests",
        arm_served + amd_served - quiet
    );
    assert_eq!(
        requests(&s),
        arm_served + amd_served,
        "every request counted once:\n{log}"
    );
    for (target, arch, n) in [("arm", "arm64", arm_served), ("amd", "amd64", amd_served)] {
        assert_eq!(
            s["by_target"][target]["requests"].as_u64(),
            Some(n),
            "{target}"
        );
        assert_eq!(s["by_arch"][arch]["requests"].as_u64(), Some(n), "{arch}");
    }
    let outages = s["outages"].as_array().unwrap();
    assert_eq!(outages.len(), 1, "{outages:?}");
    let gap = outages[0]["to_s"].as_f64().unwrap() - outages[0]["from_s"].as_f64().unwrap();
    assert!((2.5..20.0).contains(&gap), "outage of {gap} s");
    // The plan's 10 s of load were all given: the run lasted them plus the outage.
    let load_s = s["duration_s"].as_f64().unwrap();
    assert!((9.0..13.0).contains(&load_s), "{load_s} s of load");
    assert_eq!(s["ended"], "completed");
    assert!(killed.elapsed() > Duration::from_secs(6));
    assert!(log.contains("run resumed"), "{log}");
}

#[test]
fn a_killed_master_resumed_counts_every_request_once_closed_model() {
    killed_and_resumed("[load]\nusers = 4\nwait = { kind = \"constant\", duration = \"5ms\" }\n");
}

#[test]
fn a_killed_master_resumed_counts_every_request_once_open_model() {
    killed_and_resumed("[load]\nmodel = \"open\"\nrate = 200\n");
}

/// Killed and never restarted: `recover` writes the summary as far as the journal went; what
/// the server served beyond it is at most the last report interval of each worker.
#[test]
fn recover_writes_what_the_journal_holds() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server();
    let scenario = one_server_scenario(dir.path(), &srv, 4, "30s");
    let mut m = master(&scenario, dir.path(), 1, "127.0.0.1:0", &[]);
    let _w = worker(m.addr, "w1");
    wait_served(&srv, 1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    let killed = kill(&mut m);
    std::thread::sleep(Duration::from_secs(2));
    let served = srv.counts.served();
    let journal = journals(dir.path()).pop().expect("a journal");
    let out = dir.path().join("recovered.json");
    let (code, err) = run_master(
        &[
            "recover",
            journal.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "{err}");
    let s = read_summary(&out);
    let counted = requests(&s);
    // The requests of the last interval the journal did not hold: those that arrived within a
    // report interval (plus slack for a busy machine) before the kill.
    let last_interval = srv
        .counts
        .arrived_after(killed - Duration::from_millis(1500));
    eprintln!(
        "served {served}, recovered {counted}, journal until {} s, the last 1.5 s before the kill {last_interval}",
        s["recovered"]["journal_until_s"]
    );
    assert!(counted <= served);
    assert!(served - counted <= last_interval, "{err}");
    assert!(counted > 0);
    assert_eq!(s["ended"], "recovered");
    assert!(
        s["recovered"]["note"]
            .as_str()
            .unwrap()
            .contains("not in it")
    );
    assert_eq!(s["workers"][0]["id"], "w1");
}

/// A finished run's journal recovers to the run's own summary; the same journal cut at every
/// byte of its last records, or with a flipped bit, drops only what is torn and never more.
#[test]
fn a_torn_or_corrupt_journal_loses_only_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server();
    let scenario = one_server_scenario(dir.path(), &srv, 2, "3s");
    let mut m = master(&scenario, dir.path(), 1, "127.0.0.1:0", &[]);
    let _w = worker(m.addr, "w1");
    assert_eq!(wait_exit(&mut m.child, Duration::from_secs(60)), Some(0));
    let summary = read_summary(&dir.path().join("summary.json"));
    let journal = journals(dir.path()).pop().expect("a journal");
    let bytes = std::fs::read(&journal).unwrap();
    let recover = |bytes: &[u8], name: &str| -> (Option<i32>, String, Option<Value>) {
        let path = dir.path().join(format!("{name}.journal.cut"));
        std::fs::write(&path, bytes).unwrap();
        let out = dir.path().join(format!("{name}.json"));
        let (code, err) = run_master(
            &[
                "recover",
                path.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            dir.path(),
            Duration::from_secs(30),
        );
        let s = out.exists().then(|| read_summary(&out));
        (code, err, s)
    };
    let (code, err, whole) = recover(&bytes, "whole");
    assert_eq!(code, Some(0), "{err}");
    let whole = whole.unwrap();
    assert_eq!(requests(&whole), requests(&summary));
    // The same figures, histograms included; throughput from a duration kept to the ms.
    let without_rps = |s: &Value| {
        let mut a = s["by_arch"]["arm64"].clone();
        let rps = a["rps"].as_f64().unwrap();
        a.as_object_mut().unwrap().remove("rps");
        (a, rps)
    };
    let ((a, rps_a), (b, rps_b)) = (without_rps(&whole), without_rps(&summary));
    assert_eq!(a, b);
    assert!((rps_a - rps_b).abs() < rps_b * 0.001, "{rps_a} vs {rps_b}");
    // Cut anywhere in the last 600 bytes (the last records: the end, a progress, a batch):
    // never a crash, never more than the whole.
    let mut dropped = 0;
    for cut in bytes.len().saturating_sub(600)..bytes.len() {
        let (code, err, s) = recover(&bytes[..cut], "cut");
        assert_eq!(code, Some(0), "cut at {cut}: {err}");
        let n = requests(&s.unwrap());
        assert!(n <= requests(&summary), "cut at {cut}: {n}");
        if err.contains("dropped") {
            dropped += 1;
        }
    }
    assert!(dropped > 0, "torn tails are said");
    // A flipped bit in the middle: the journal ends before it, with a warning.
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    let (code, err, s) = recover(&flipped, "flipped");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("dropped"), "{err}");
    assert!(requests(&s.unwrap()) < requests(&summary));
    // Not a journal at all: exit 2, said.
    let (code, err, _) = recover(b"definitely not a journal", "garbage");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a stampede journal"), "{err}");
}
