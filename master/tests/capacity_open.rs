//! The open-model capacity search end to end: `--capacity` on an open-model scenario against two
//! bundled workload servers of different capacity (one compute slot vs two, the same matrix and
//! queue) on loopback. The search climbs in req/s; the knees it reports are checked against the
//! servers' own answered rates over the very windows it measured, and their ratio against the
//! servers' ratio, as the closed-model test (verdicts.rs) does for users.

mod common;

use std::time::{Duration, SystemTime};

use common::workload::{Poller, Workload, served_rps};
use common::{read_summary, run_master};

/// Requests waiting for a slot. Evenly spaced arrivals below a server's capacity need little
/// room; a shallow queue also drains at once after a breach, so the next level is measured on
/// an idle server, not on the backlog of the last one.
const QUEUE: usize = 4;
/// Tens of milliseconds of CPU per request in a debug build: the slots limit each server.
const DIM: usize = 96;

fn scenario(arm: std::net::SocketAddr, amd: std::net::SocketAddr) -> String {
    format!(
        r#"
name = "open capacity test"
run_time = "240s"
report_interval = "500ms"
stop_timeout = "5s"

[[target]]
name = "arm"
url = "http://{arm}/arm"
arch = "arm64"

[[target]]
name = "amd"
url = "http://{amd}/amd"
arch = "amd64"

[[request]]
name = "runtime"
path = "/runtime"
timeout = "20s"
expect = [200]

[load]
model = "open"
rate = 10
# Evenly spaced: the rate offered over a window is the level, exactly, so the knee can be
# held to the servers' own rate (Poisson arrivals vary by a few percent over a 4 s hold).
arrivals = "uniform"
max_in_flight = 500

# Off here: `--capacity` turns it on.
[capacity]
enabled = false
start = 8
step = 8
fine_step = 2
max = 400
hold = "4s"
settle = "1s"
consecutive = 2
"#
    )
}

#[test]
fn open_model_knees_in_req_per_s_are_the_servers_own_rates() {
    let arm = Workload::start("arm64", 2, QUEUE, DIM);
    let amd = Workload::start("amd64", 1, QUEUE, DIM);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("open.toml");
    std::fs::write(&file, scenario(arm.addr, amd.addr)).unwrap();
    let poller = Poller::start(vec![(arm.addr, "/arm/runtime"), (amd.addr, "/amd/runtime")]);
    let (code, err) = run_master(
        &[
            "run",
            file.to_str().unwrap(),
            "--headless",
            "--capacity",
            "--summary",
            "summary.json",
        ],
        dir.path(),
        Duration::from_secs(300),
    );
    let polled = poller.finish();
    assert_eq!(code, Some(0), "{err}");
    let s = read_summary(&dir.path().join("summary.json"));
    let c = &s["capacity"];
    eprintln!(
        "capacity: {}",
        serde_json::to_string_pretty(&c["by_arch"]).unwrap()
    );
    assert_eq!(c["unit"], "req/s", "{c}");
    let started = humantime::parse_rfc3339(s["started_at"].as_str().unwrap()).unwrap();

    let mut truth = Vec::new();
    for (which, arch) in ["arm64", "amd64"].into_iter().enumerate() {
        let a = &c["by_arch"][arch];
        assert_eq!(a["end"], "knee", "{arch}: {a}");
        let knee = a["knee"]["level"].as_f64().unwrap();
        let breach = a["breach"]["level"].as_f64().unwrap();
        assert!(
            breach > knee,
            "{arch}: breach {breach} at or below the knee {knee}"
        );
        let confirmed = &a["confirmed"];
        assert_eq!(confirmed["level"].as_f64(), Some(knee), "{arch}");
        let secs = |key: &str| Duration::from_secs_f64(confirmed[key].as_f64().unwrap());
        let (from, to): (SystemTime, SystemTime) = (
            started + secs("measured_from_s"),
            started + secs("measured_to_s"),
        );
        let served = served_rps(&polled, which, from, to);
        let measured = a["max_sustainable_rps"].as_f64().unwrap();
        eprintln!(
            "{arch}: knee {knee} req/s offered, {measured:.1} req/s sustained; the server's own \
             count over the same window: {served:.1} req/s (first breach at {breach} req/s)"
        );
        assert!(
            (measured - served).abs() <= 0.05 * served,
            "{arch}: measured {measured:.1} req/s, the server answered {served:.1} req/s"
        );
        // The knee in req/s is a rate the server kept up with when it was found: over the
        // knee's own measured span the server answered it. (The confirmation, with both
        // servers at their knees on shared cores, may serve less: that is what it is for.)
        let found = &a["knee"];
        let span = |key: &str| started + Duration::from_secs_f64(found[key].as_f64().unwrap());
        let answered = served_rps(
            &polled,
            which,
            span("measured_from_s"),
            span("measured_to_s"),
        );
        eprintln!("{arch}: over the knee's own span the server answered {answered:.1} req/s");
        assert!(
            (knee - answered).abs() <= 0.05 * answered,
            "{arch}: knee {knee} req/s, but the server answered {answered:.1} req/s"
        );
        // Its uncertainty: the fine step, and the spread of the confirmation's windows around
        // the throughput they average to.
        let u = &a["uncertainty"];
        assert_eq!(u["fine_step"].as_f64(), Some(2.0), "{arch}: {u}");
        assert_eq!(u["breach_level"].as_f64(), Some(breach), "{arch}: {u}");
        let w = &u["windows"];
        // The confirmation's own windows: the whole 4 s hold of 500 ms ones when it kept the
        // SLO, at least the two breaching in a row when it did not.
        assert_eq!(w, &confirmed["ok_rps_windows"], "{arch}");
        let least = if confirmed["passed"] == true { 8 } else { 2 };
        assert!(w["count"].as_u64() >= Some(least), "{arch}: {w}");
        let (lo, hi) = (w["min"].as_f64().unwrap(), w["max"].as_f64().unwrap());
        assert!(
            lo <= measured && measured <= hi,
            "{arch}: {measured} outside {w}"
        );
        truth.push(served);
    }
    let truth = truth[0] / truth[1];
    let ratio = c["comparison"]["rps_ratio"]["arm64"].as_f64().unwrap();
    eprintln!("knee ratio {ratio:.3}; the servers' own ratio in the window: {truth:.3}");
    assert!(
        truth > 1.1,
        "two compute slots vs one should serve more: {truth:.3}"
    );
    assert!(
        (ratio - truth).abs() <= 0.15 * truth,
        "knee ratio {ratio:.3}, want the true {truth:.3} within 15%"
    );

    // Every answer the servers sent is in the summary, once, and no arrival was dropped.
    for (arch, srv, route) in [
        ("arm64", &arm, "/arm/runtime"),
        ("amd64", &amd, "/amd/runtime"),
    ] {
        let status = &s["by_arch"][arch]["status"];
        assert_eq!(
            status["2xx"].as_u64(),
            Some(srv.answered(route, 200)),
            "{arch}"
        );
        assert_eq!(
            status["5xx"].as_u64(),
            Some(srv.answered(route, 503)),
            "{arch}"
        );
    }
    assert_eq!(s["dropped"].as_u64(), Some(0));
}
