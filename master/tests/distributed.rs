//! End to end: the real master with real workers (separate processes, then in-process) against
//! counting loopback servers; the summary must equal what the servers saw.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use hdrhistogram::serialization::Deserializer;
use serde_json::Value;

const DELAY: Duration = Duration::from_millis(20);

fn servers() -> (TestServer, TestServer) {
    let arm = TestServer::start(Behaviour {
        arch: "arm64",
        every_5xx: 5,
        delay: DELAY,
        ..Default::default()
    });
    let amd = TestServer::start(Behaviour {
        arch: "amd64",
        every_5xx: 7,
        delay: DELAY,
        ..Default::default()
    });
    (arm, amd)
}

fn hdr_count(results: &Value) -> u64 {
    let b64 = results["hdr"].as_str().expect("hdr present");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let h: hdrhistogram::Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .expect("V2 histogram");
    h.len()
}

/// The summary equals the servers' own counts, exactly, and latency reflects the delay.
fn assert_matches_servers(s: &Value, arm: &TestServer, amd: &TestServer) {
    let (arm_n, amd_n) = (arm.counts.served(), amd.counts.served());
    let (arm_5, amd_5) = (arm.counts.served_5xx(), amd.counts.served_5xx());
    assert!(
        arm_n > 50 && amd_n > 50,
        "too little traffic: {arm_n} {amd_n}"
    );
    assert_eq!(s["schema"], "stampede.summary.v1");
    assert_eq!(s["totals"]["requests"], arm_n + amd_n);
    assert!(
        s.get("send_lag_ms").is_none(),
        "no arrival schedule in a closed-model run"
    );
    assert_eq!(s["totals"]["status"]["5xx"], arm_5 + amd_5);
    assert_eq!(s["totals"]["status"]["2xx"], arm_n + amd_n - arm_5 - amd_5);
    for kind in ["connect", "reset", "timeout", "other"] {
        assert_eq!(s["totals"]["errors"][kind], 0, "{kind}");
    }
    assert_eq!(s["by_arch"]["arm64"]["requests"], arm_n);
    assert_eq!(s["by_arch"]["amd64"]["requests"], amd_n);
    assert_eq!(s["by_arch"]["arm64"]["status"]["5xx"], arm_5);
    assert_eq!(s["by_arch"]["amd64"]["status"]["5xx"], amd_5);
    assert_eq!(s["by_target"]["arm"]["requests"], arm_n);
    assert_eq!(s["by_target"]["amd"]["arch"], "amd64");
    assert_eq!(hdr_count(&s["by_arch"]["arm64"]), arm_n);
    assert_eq!(hdr_count(&s["by_target"]["amd"]), amd_n);
    let ratio = s["by_arch"]["arm64"]["ratio_5xx"].as_f64().unwrap();
    assert!((ratio - arm_5 as f64 / arm_n as f64).abs() < 1e-12);
    for (arch, server) in [("arm64", arm), ("amd64", amd)] {
        let delay_ms = server.counts.median_delay_ms();
        assert!(delay_ms >= DELAY.as_secs_f64() * 1000.0);
        let p50 = s["by_arch"][arch]["latency_ms"]["p50"].as_f64().unwrap();
        // HDR keeps 3 figures: at 20 ms a value may read up to 16 µs lower or higher.
        assert!(
            p50 >= delay_ms - 0.02 && p50 <= delay_ms + 1.0,
            "{arch} p50 {p50} ms not within 1 ms above the server's applied delay {delay_ms} ms"
        );
    }
    let series = s["series"].as_array().unwrap();
    assert!(series.len() >= 2, "series: {series:?}");
    let in_series: u64 = series
        .iter()
        .flat_map(|p| p["by_arch"].as_object().unwrap().values())
        .map(|a| a["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        in_series,
        arm_n + amd_n,
        "every request lands in one interval"
    );
    let cmp = &s["comparison"];
    assert_eq!(cmp["baseline"], "amd64");
    let arm_rps = s["by_arch"]["arm64"]["rps"].as_f64().unwrap();
    let amd_rps = s["by_arch"]["amd64"]["rps"].as_f64().unwrap();
    let r = cmp["by_arch"]["arm64"]["rps_ratio"].as_f64().unwrap();
    assert!((r - arm_rps / amd_rps).abs() < 1e-9);
}

#[test]
fn remote_worker_processes_count_exactly_what_the_servers_served() {
    let (arm, amd) = servers();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        two_target_scenario(&arm.url("/arm"), &amd.url("/amd"), 8, "4s", ""),
    )
    .unwrap();
    let summary = dir.path().join("summary.json");
    let mut master = start_run(
        scenario.to_str().unwrap(),
        2,
        &summary,
        &["--token", "s3cret", "--status-every", "1s"],
        dir.path(),
    );
    let mut w1 = start_worker(master.addr, "w1", &["--token", "s3cret"]);
    let mut w2 = start_worker(master.addr, "w2", &["--token", "s3cret"]);
    let code = wait_exit(&mut master.child, Duration::from_secs(60));
    let log = master.log.lock().unwrap().join("\n");
    assert_eq!(code, Some(0), "master log:\n{log}");
    assert_eq!(wait_exit(&mut w1, Duration::from_secs(10)), Some(0));
    assert_eq!(wait_exit(&mut w2, Duration::from_secs(10)), Some(0));
    let s = read_summary(&summary);
    assert_matches_servers(&s, &arm, &amd);
    let workers = s["workers"].as_array().unwrap();
    let ids: Vec<&str> = workers.iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"w1") && ids.contains(&"w2"));
    // The headless view printed status blocks with both arches.
    let out = master.stdout.lock().unwrap().join("\n");
    assert!(
        out.contains("arch arm64") && out.contains("arch amd64"),
        "{out}"
    );
    assert!(out.contains("workers 2"), "{out}");
}

#[test]
fn local_workers_count_exactly_what_the_servers_served() {
    let (arm, amd) = servers();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        two_target_scenario(&arm.url("/arm"), &amd.url("/amd"), 6, "3s", ""),
    )
    .unwrap();
    let summary = dir.path().join("out.json");
    let (code, err) = run_master(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--headless",
            "--local-workers",
            "2",
            "--summary",
            summary.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{err}");
    let s = read_summary(&summary);
    assert_matches_servers(&s, &arm, &amd);
    assert_eq!(s["workers"].as_array().unwrap().len(), 2);
}

#[test]
fn thresholds_decide_the_exit_code() {
    let (arm, amd) = servers();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    let thresholds = "[thresholds]\n\"5xx_ratio\" = \"< 0.01\"\n\"arch:arm64/p50\" = \"< 5s\"\n";
    std::fs::write(
        &scenario,
        two_target_scenario(&arm.url("/"), &amd.url("/"), 2, "2s", thresholds),
    )
    .unwrap();
    let summary = dir.path().join("t.json");
    let (code, err) = run_master(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--headless",
            "--summary",
            summary.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    // One request in 5 or 7 is a 503: the 5xx threshold fails, the p50 one passes.
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("5xx_ratio < 0.01"), "{err}");
    let s = read_summary(&summary);
    let t = s["thresholds"].as_array().unwrap();
    assert_eq!(t.len(), 2);
    let by_expr = |e: &str| t.iter().find(|x| x["expr"] == e).unwrap().clone();
    assert_eq!(by_expr("5xx_ratio < 0.01")["pass"], false);
    assert_eq!(by_expr("arch:arm64/p50 < 5s")["pass"], true);
}

#[test]
fn no_workers_in_time_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        two_target_scenario("http://127.0.0.1:9/", "http://127.0.0.1:9/", 1, "1s", ""),
    )
    .unwrap();
    let (code, err) = run_master(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--headless",
            "--expect-workers",
            "1",
            "--bind",
            "127.0.0.1:0",
            "--wait-workers",
            "1s",
            "--token",
            "t",
        ],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("0 of 1 worker"), "{err}");
}

#[test]
fn bad_scenario_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("bad.toml");
    let text = two_target_scenario("ftp://127.0.0.1:9/", "http://127.0.0.1:9/", 1, "1s", "");
    std::fs::write(&scenario, text).unwrap();
    for cmd in ["check", "run"] {
        let (code, err) = run_master(
            &[cmd, scenario.to_str().unwrap(), "--headless"][..if cmd == "check" { 2 } else { 3 }],
            dir.path(),
            Duration::from_secs(30),
        );
        assert_eq!(code, Some(2), "{cmd}: {err}");
        assert!(
            err.contains("bad.toml") && err.contains("target[0].url"),
            "{err}"
        );
    }
}

#[test]
fn wrong_token_is_refused_and_the_worker_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        two_target_scenario("http://127.0.0.1:9/", "http://127.0.0.1:9/", 1, "1s", ""),
    )
    .unwrap();
    let mut master = start_master(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--headless",
            "--expect-workers",
            "1",
            "--bind",
            "127.0.0.1:0",
            "--token",
            "right",
            "--wait-workers",
            "5s",
        ],
        dir.path(),
    );
    let out = std::process::Command::new(worker_bin())
        .args([
            "--master",
            &format!("http://{}", master.addr),
            "--token",
            "wrong",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("token"), "{err}");
    assert_eq!(
        wait_exit(&mut master.child, Duration::from_secs(30)),
        Some(3)
    );
}
