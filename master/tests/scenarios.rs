//! The scenario language end to end: the real master with local workers against counting
//! loopback servers, each feature checked against what the servers saw. Kept short: each run
//! lasts a few seconds.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use serde_json::Value;

/// Writes `scenario`, runs it with `local_workers` in-process workers, returns the exit code,
/// stderr and the summary.
fn run(scenario: &str, local_workers: usize, limit: Duration) -> (Option<i32>, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, scenario).unwrap();
    let summary = dir.path().join("summary.json");
    let workers = local_workers.to_string();
    let (code, err) = run_master(
        &[
            "run",
            path.to_str().unwrap(),
            "--headless",
            "--local-workers",
            &workers,
            "--summary",
            summary.to_str().unwrap(),
        ],
        dir.path(),
        limit,
    );
    let s = if summary.exists() {
        read_summary(&summary)
    } else {
        Value::Null
    };
    (code, err, s)
}

fn started_at(s: &Value) -> SystemTime {
    humantime::parse_rfc3339(s["started_at"].as_str().unwrap()).unwrap()
}

fn secs(t: SystemTime, since: SystemTime) -> f64 {
    match t.duration_since(since) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The plan of `ramp_follows_its_profile`: 0 -> 6 users over 3 s, hold 2 s, down to 2 in 2 s.
fn ramp_plan(t: f64) -> f64 {
    match t {
        t if t < 3.0 => 2.0 * t,
        t if t < 5.0 => 6.0,
        t if t < 7.0 => 6.0 - 2.0 * (t - 5.0),
        _ => 0.0,
    }
}

#[test]
fn ramp_follows_its_profile() {
    let server = TestServer::start(Behaviour {
        arch: "arm64",
        delay: Duration::from_millis(40),
        ..Default::default()
    });
    let scenario = format!(
        r#"
name = "ramp"
[[target]]
name = "arm"
url = "{}"
arch = "arm64"
[[request]]
name = "r"
[load]
wait = {{ kind = "none" }}
[[stage]]
duration = "3s"
users = 6
[[stage]]
duration = "2s"
users = 6
[[stage]]
duration = "2s"
users = 2
"#,
        server.url("/")
    );
    let workers = 2;
    let (code, err, s) = run(&scenario, workers, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(s["totals"]["requests"], server.counts.served());
    // The dispatcher rounds down and moves every 100 ms; a worker moves when told: allow one
    // user per worker, and up to 300 ms of lag behind the plan.
    let tolerance = workers as f64;
    let plan_range = |from: f64, to: f64| {
        let points: Vec<f64> = (0..=20)
            .map(|i| ramp_plan(from - 0.3 + (to - from + 0.3) * f64::from(i) / 20.0))
            .collect();
        let lo = points.iter().copied().fold(f64::MAX, f64::min);
        let hi = points.iter().copied().fold(f64::MIN, f64::max);
        (lo.floor() - tolerance, hi + tolerance)
    };
    // 1. What the workers reported, per interval.
    let series = s["series"].as_array().unwrap();
    assert!(series.len() >= 6, "{series:?}");
    for p in series {
        let (t, users) = (p["t"].as_f64().unwrap(), p["users"].as_f64().unwrap());
        let (lo, hi) = plan_range(t, t);
        if t <= 7.0 {
            assert!(
                (lo..=hi).contains(&users),
                "series at {t}s: {users} users, plan {}",
                ramp_plan(t)
            );
        }
    }
    // 2. What the server saw: with no think time every user has a request in flight all but a
    // moment between answer and next request, so the most requests in flight within a
    // quarter second is the users running (a worker thread descheduled for a moment, on a
    // busy machine, can only make it lower at one instant, not over the whole window).
    let start = started_at(&s);
    let mut t = 0.25;
    let mut seen = Vec::new();
    while t < 6.8 {
        let (from, to) = (t, t + 0.25);
        let most = server.counts.most_in_flight(
            start + Duration::from_secs_f64(from),
            start + Duration::from_secs_f64(to),
        ) as f64;
        let (lo, hi) = plan_range(from, to);
        assert!(
            (lo..=hi).contains(&most),
            "{from}..{to}s: the server had up to {most} requests in flight, plan {}..{}",
            ramp_plan(from),
            ramp_plan(to)
        );
        seen.push(format!("{from:.2}s: {most} (plan {:.1})", ramp_plan(from)));
        t += 0.25;
    }
    eprintln!("ramp, in flight at the server: {}", seen.join(", "));
}

#[test]
fn open_model_holds_its_rate_and_weights_split_the_load() {
    let arm = TestServer::start(Behaviour {
        arch: "arm64",
        ..Default::default()
    });
    let amd = TestServer::start(Behaviour {
        arch: "amd64",
        ..Default::default()
    });
    let scenario = format!(
        r#"
name = "open"
run_time = "10s"
[[target]]
name = "arm"
url = "{}"
arch = "arm64"
weight = 1
[[target]]
name = "amd"
url = "{}"
arch = "amd64"
weight = 3
[[request]]
name = "light"
path = "/light"
weight = 3
[[request]]
name = "heavy"
path = "/heavy"
weight = 1
[load]
model = "open"
rate = 500
arrivals = "uniform"
max_in_flight = 500
"#,
        arm.url(""),
        amd.url("")
    );
    let (code, err, s) = run(&scenario, 1, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    let (arm_n, amd_n) = (arm.counts.served(), amd.counts.served());
    let total = arm_n + amd_n;
    assert_eq!(s["totals"]["requests"], total, "every request counted once");
    assert_eq!(s["dropped"], 0, "the bound was never reached");
    // Every arrival sent has its send-time error in the summary.
    assert_eq!(s["send_lag_ms"]["count"], total, "{}", s["send_lag_ms"]);
    assert!(s["send_lag_ms"]["p99"].as_f64().unwrap() >= 0.0);
    // The rate the servers saw, first to last arrival.
    let mut arrivals: Vec<SystemTime> = arm
        .counts
        .spans()
        .into_iter()
        .chain(amd.counts.spans())
        .map(|(start, _)| start)
        .collect();
    arrivals.sort();
    let span = secs(*arrivals.last().unwrap(), arrivals[0]);
    let rate = (arrivals.len() - 1) as f64 / span;
    assert!(
        (rate - 500.0).abs() <= 10.0,
        "{rate:.1} req/s over {span:.2} s, not 500 within 2%"
    );
    assert!(span > 9.0, "load lasted {span:.2} s");
    // Target weights 1:3 split the rate exactly (uniform arrivals: no sampling noise beyond
    // the schedule's phase, a request or two).
    let arm_share = arm_n as f64 / total as f64;
    assert!((arm_share - 0.25).abs() < 0.005, "arm got {arm_share:.4}");
    // Request weights 3:1: a weighted random choice, Binomial(n, 1/4): 5 sigma.
    let heavy = arm.counts.path_count("/heavy") + amd.counts.path_count("/heavy");
    let p = heavy as f64 / total as f64;
    let sigma = (0.25f64 * 0.75 / total as f64).sqrt();
    eprintln!(
        "open model: {rate:.1} req/s over {span:.2} s (the server's arrivals), arm share {arm_share:.4}, heavy share {p:.4} (sigma {sigma:.4}), dropped {}, send lag p99 {} ms",
        s["dropped"], s["send_lag_ms"]["p99"]
    );
    assert!(
        (p - 0.25).abs() < 5.0 * sigma,
        "heavy share {p:.4}, sigma {sigma:.4}"
    );
}

#[test]
fn requests_stages_send_exactly_their_count_around_a_pause() {
    let arm = TestServer::start(Behaviour {
        arch: "arm64",
        delay: Duration::from_millis(2),
        ..Default::default()
    });
    let amd = TestServer::start(Behaviour {
        arch: "amd64",
        delay: Duration::from_millis(2),
        ..Default::default()
    });
    let scenario = format!(
        r#"
name = "counts"
[[target]]
name = "arm"
url = "{}"
arch = "arm64"
[[target]]
name = "amd"
url = "{}"
arch = "amd64"
[[request]]
name = "r"
[load]
users = 5
[[stage]]
requests = 301
[[stage]]
duration = "1500ms"
pause = true
[[stage]]
requests = 200
users = 8
"#,
        arm.url(""),
        amd.url("")
    );
    let (code, err, s) = run(&scenario, 2, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    let served = arm.counts.served() + amd.counts.served();
    assert_eq!(served, 501, "exactly 301 + 200 requests");
    assert_eq!(s["totals"]["requests"], 501);
    // The pause: a gap of at least 1.5 s with nothing in flight, splitting 301 from 200.
    let mut spans: Vec<_> = arm
        .counts
        .spans()
        .into_iter()
        .chain(amd.counts.spans())
        .collect();
    spans.sort();
    let (i, gap) = spans
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i, secs(w[1].0, w[0].1)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(gap >= 1.45, "longest quiet gap {gap:.3} s");
    eprintln!(
        "requests stages: served {served} (301 + 200), quiet gap {gap:.3} s after request {}",
        i + 1
    );
    assert_eq!(i + 1, 301, "the gap falls after the first stage's requests");
}

#[test]
fn between_waits_follow_their_distribution() {
    let server = TestServer::start(Behaviour {
        arch: "arm64",
        ..Default::default()
    });
    let scenario = format!(
        r#"
name = "between"
run_time = "5s"
[[target]]
name = "arm"
url = "{}"
arch = "arm64"
[[request]]
name = "r"
[load]
users = 20
wait = {{ kind = "between", min = "100ms", max = "300ms" }}
"#,
        server.url("")
    );
    let (code, err, _) = run(&scenario, 1, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    // From one answer to the same user's next request, as the server saw it: the think time
    // plus the client's own overhead (a little, and only ever more).
    let gaps: Vec<f64> = server
        .counts
        .gaps_us
        .lock()
        .unwrap()
        .iter()
        .map(|&us| us as f64 / 1000.0)
        .collect();
    let n = gaps.len() as f64;
    assert!(n >= 300.0, "{n} gaps");
    let below = |ms: f64| gaps.iter().filter(|&&g| g < ms).count() as f64 / n;
    assert_eq!(below(100.0), 0.0, "no wait shorter than min");
    // Uniform on [100, 300] ms: mean 200, sd 57.7. Overhead may add up to 20 ms here.
    let mean = gaps.iter().sum::<f64>() / n;
    eprintln!(
        "between 100..300 ms: {n} gaps, mean {mean:.1} ms, below 150/200/250 ms: {:.3}/{:.3}/{:.3}",
        below(150.0),
        below(200.0),
        below(250.0)
    );
    let se = 57.7 / n.sqrt();
    assert!(
        mean > 200.0 - 5.0 * se && mean < 200.0 + 5.0 * se + 20.0,
        "mean {mean:.1} ms"
    );
    // Each quartile of the range holds a quarter of the waits (5 sigma, plus the overhead's
    // shift of up to 20 ms = 10% of the range).
    let sigma = (0.25f64 * 0.75 / n).sqrt();
    for k in 1..=3 {
        let edge = 100.0 + 50.0 * k as f64;
        let got = below(edge);
        let want = 0.25 * k as f64;
        assert!(
            got <= want + 5.0 * sigma && got >= want - 5.0 * sigma - 0.1,
            "below {edge} ms: {got:.3}, want {want}"
        );
    }
    assert!(below(340.0) > 0.95, "waits above max + overhead");
}

#[test]
fn redirects_are_attributed_by_the_final_arch_header() {
    let arm = TestServer::start(Behaviour {
        arch: "arm64",
        ..Default::default()
    });
    let amd = TestServer::start(Behaviour {
        arch: "amd64",
        ..Default::default()
    });
    let splitter = TestServer::start(Behaviour {
        arch: "splitter",
        redirect_to: vec![arm.url("/arm/runtime"), amd.url("/amd/runtime")],
        ..Default::default()
    });
    let scenario = format!(
        r#"
name = "split"
run_time = "2s"
max_redirects = 2
[[target]]
name = "app"
url = "{}"
arch = "declared"
[[request]]
name = "r"
path = "/runtime"
expect = [200]
[load]
users = 4
wait = {{ kind = "constant", duration = "5ms" }}
"#,
        splitter.url("/app")
    );
    let (code, err, s) = run(&scenario, 1, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    let (arm_n, amd_n) = (arm.counts.served(), amd.counts.served());
    assert!(arm_n > 20 && amd_n > 20, "{arm_n} {amd_n}");
    eprintln!(
        "redirects: {} followed; arm64 {arm_n} served / {} in the summary, amd64 {amd_n} / {}",
        splitter.counts.redirected(),
        s["by_arch"]["arm64"]["requests"],
        s["by_arch"]["amd64"]["requests"]
    );
    assert_eq!(s["by_arch"]["arm64"]["requests"], arm_n);
    assert_eq!(s["by_arch"]["amd64"]["requests"], amd_n);
    assert!(s["by_arch"].get("declared").is_none(), "{}", s["by_arch"]);
    assert!(s["by_arch"].get("splitter").is_none(), "{}", s["by_arch"]);
    // One request per redirect followed, all under the one target.
    assert_eq!(
        s["by_target"]["app"]["requests"],
        splitter.counts.redirected()
    );
    assert_eq!(s["totals"]["status"]["2xx"], arm_n + amd_n);
    assert_eq!(arm.counts.path_count("/arm/runtime"), arm_n);
}

#[test]
fn abort_on_fail_stops_the_run_early() {
    let server = TestServer::start(Behaviour {
        arch: "arm64",
        every_5xx: 4,
        ..Default::default()
    });
    let scenario = format!(
        r#"
name = "abort"
run_time = "60s"
[[target]]
name = "arm"
url = "{}"
arch = "arm64"
[[request]]
name = "r"
[load]
users = 2
wait = {{ kind = "constant", duration = "10ms" }}
[thresholds]
"arch:arm64/5xx_ratio" = {{ expr = "< 0.01", abort_on_fail = true, delay = "1s" }}
"p50" = "< 5s"
"#,
        server.url("")
    );
    let started = std::time::Instant::now();
    let (code, err, s) = run(&scenario, 1, Duration::from_secs(90));
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{err}");
    assert!(took < Duration::from_secs(20), "ran {took:?} of 60 s");
    assert!(err.contains("arch:arm64/5xx_ratio < 0.01"), "{err}");
    assert!(
        s["aborted"].as_str().unwrap().contains("5xx_ratio"),
        "{}",
        s["aborted"]
    );
    assert!(
        s["duration_s"].as_f64().unwrap() >= 1.0,
        "not before the delay"
    );
    // Everything sent before the abort is still counted.
    assert_eq!(s["totals"]["requests"], server.counts.served());
    assert_eq!(s["totals"]["status"]["5xx"], server.counts.served_5xx());
}
