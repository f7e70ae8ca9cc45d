//! `stampede-master compare` on real runs: the master binary with an in-process worker against
//! counting HTTP servers on loopback. A base run, the same run again (A/A: nothing may be
//! significant, exit 0), and a run whose amd64 server answers 5 ms later (exit 1, the p99
//! regression named and significant), the three side by side; then bad input on the same
//! summaries (exit 2).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::{Behaviour, TestServer, master_bin, read_summary, run_master};

/// The servers' own delay, and the candidate's extra.
const DELAY: Duration = Duration::from_millis(2);
const EXTRA: Duration = Duration::from_millis(5);

/// 12 s of 250 ms intervals: 46 after the first and the last, 10 batches.
fn scenario(dir: &Path, name: &str, arm: &TestServer, amd: &TestServer) -> PathBuf {
    let text = format!(
        r#"
name = "{name}"
run_time = "12s"
report_interval = "250ms"
stop_timeout = "5s"

[[target]]
name = "arm"
url = "{}"
arch = "arm64"

[[target]]
name = "amd"
url = "{}"
arch = "amd64"

[[request]]
name = "runtime"
path = "/runtime"
timeout = "5s"

[load]
# Think time far above the latency: the three runs share two cores unevenly (a ms more of
# overhead in one of them), and that must move the throughput by far less than its
# batch-to-batch noise (with 40 ms of think time it moved it by a significant 2%).
users = 30
spawn_rate = 1000
wait = {{ kind = "between", min = "100ms", max = "300ms" }}
"#,
        arm.url("/arm"),
        amd.url("/amd")
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a scenario to its end and returns its summary's path.
fn run(dir: &Path, scenario: &Path, name: &str) -> PathBuf {
    let summary = dir.join(format!("{name}.json"));
    let args = [
        "run",
        scenario.to_str().unwrap(),
        "--headless",
        "--summary",
        summary.to_str().unwrap(),
    ];
    let (code, err) = run_master(&args, dir, Duration::from_secs(90));
    assert_eq!(code, Some(0), "run {name}: {err}");
    summary
}

/// `compare` with `args`: exit code, standard output, standard error.
fn compare(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(master_bin())
        .arg("compare")
        .args(args)
        .output()
        .expect("run stampede-master compare");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rows<'a>(json: &'a Value, kind: &str, name: &str) -> Vec<&'a Value> {
    json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind && r["name"] == name)
        .collect()
}

fn row<'a>(json: &'a Value, kind: &str, name: &str, metric: &str) -> &'a Value {
    rows(json, kind, name)
        .into_iter()
        .find(|r| r["metric"] == metric)
        .unwrap_or_else(|| panic!("no {kind}:{name} {metric} row"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn compare_names_a_5ms_regression_and_nothing_in_an_a_a_pair() {
    let dir = tempfile::tempdir().unwrap();
    let server = |arch: &'static str, delay: Duration| {
        TestServer::start(Behaviour {
            arch,
            delay,
            ..Behaviour::default()
        })
    };
    // Each run its own two servers, and the three runs at the same time: on a shared machine,
    // runs made one after another differ for real (other builds come and go), and batch means
    // measure the noise within a run, not that drift. Side by side, the runs share the
    // machine, and what differs between them is what the test changed.
    let runs = [
        ("base", DELAY),
        ("again", DELAY),
        ("candidate", DELAY + EXTRA),
    ];
    let servers: Vec<(TestServer, TestServer)> = runs
        .iter()
        .map(|&(_, amd_delay)| (server("arm64", DELAY), server("amd64", amd_delay)))
        .collect();
    let scenarios: Vec<PathBuf> = runs
        .iter()
        .zip(&servers)
        .map(|(&(name, _), (arm, amd))| scenario(dir.path(), name, arm, amd))
        .collect();
    let at = dir.path();
    let summaries: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .zip(&scenarios)
            .map(|(&(name, _), scenario)| scope.spawn(move || run(at, scenario, name)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let [base, again, candidate] = [&summaries[0], &summaries[1], &summaries[2]];

    // The summary records the method, the window and each ratio's interval.
    let s = read_summary(base);
    let window = &s["comparison"]["window"];
    assert_eq!(window["method"], "batch_means");
    assert_eq!(window["batches"], 10, "{window}");
    assert!(window["to_s"].as_f64().unwrap() > window["from_s"].as_f64().unwrap());
    let ci = &s["comparison"]["by_arch"]["arm64"]["ci"];
    for figure in ["rps_ratio", "p50_ratio", "p99_ratio", "ratio_5xx_diff"] {
        let i = &ci[figure];
        assert!(
            i["lo"].as_f64().unwrap() <= i["hi"].as_f64().unwrap(),
            "{figure}: {ci}"
        );
    }
    assert!(s["comparison"]["by_target"]["arm"]["rps_ci"]["lo"].is_f64());

    // A/A: exit 0, nothing significant.
    let rules = ["--fail-on", "p99 > +5%", "--fail-on", "rps < -5%"];
    let mut args = vec![path(base), path(again), "--json"];
    args.extend(rules);
    let (code, out, err) = compare(&args);
    let aa: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let significant: Vec<String> = aa["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["significant"] == true)
        .map(|r| {
            format!(
                "{}:{} {} {}",
                r["kind"], r["name"], r["metric"], r["change"]
            )
        })
        .collect();
    assert!(significant.is_empty(), "A/A found {significant:?}");
    assert_eq!(code, Some(0), "{out}\n{err}");

    // 5 ms more on amd64: exit 1, its p99 named, significant.
    let mut args = vec![path(base), path(candidate), "--json"];
    args.extend(rules);
    let (code, out, err) = compare(&args);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let ab: Value = serde_json::from_str(&out).unwrap();
    let p99 = row(&ab, "arch", "amd64", "p99");
    assert_eq!(p99["significant"], true, "{p99}");
    assert!(p99["change"].as_f64().unwrap() > 0.5, "{p99}");
    let fired = &ab["rules"][0];
    assert_eq!(fired["fired"], true, "{fired}");
    assert!(
        fired["detail"][0]
            .as_str()
            .unwrap()
            .starts_with("arch:amd64 p99 +")
    );
    assert!(err.contains("significant regression: p99 > +5%"), "{err}");
    // The text table and the Markdown say the same.
    let (code, text, _) = compare(&[path(base), path(candidate), "--fail-on", "p99 > +5%"]);
    assert_eq!(code, Some(1));
    let line = text
        .lines()
        .find(|l| l.starts_with("arch:amd64") && l.split_whitespace().nth(1) == Some("p99"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.trim_end().ends_with("yes"), "{line}");
    assert!(text.contains("FAIL  p99 > +5%"), "{text}");
    let (_, md, _) = compare(&[path(base), path(candidate), "--markdown"]);
    assert!(md.contains("| arch:amd64 | p99 |"), "{md}");

    bad_input(dir.path(), base, candidate);
}

/// Exit 2 with a clear message: other schemas, unmatched targets, bad maps and rules.
fn bad_input(dir: &Path, base: &Path, candidate: &Path) {
    let mut other: Value = read_summary(candidate);
    other["schema"] = "stampede.summary.v0".into();
    let v0 = dir.join("v0.json");
    std::fs::write(&v0, other.to_string()).unwrap();
    let renamed = std::fs::read_to_string(candidate)
        .unwrap()
        .replace("\"arm64\"", "\"graviton4\"");
    let graviton = dir.join("graviton.json");
    std::fs::write(&graviton, renamed).unwrap();
    for (args, says) in [
        (vec![path(base), path(&v0)], "different schemas"),
        (vec![path(base), path(&graviton)], "arches do not match"),
        (
            vec![path(base), path(candidate), "--map", "arm=blue"],
            "targets do not match",
        ),
        (
            vec![path(base), path(candidate), "--map", "x"],
            "BASE=CANDIDATE",
        ),
        (
            vec![path(base), path(candidate), "--fail-on", "p99 >> 5"],
            "--fail-on",
        ),
        (
            vec![
                path(base),
                path(candidate),
                "--fail-on",
                "arch:riscv/p99 > +5%",
            ],
            "no row",
        ),
        (vec![path(base), "missing.json"], "missing.json"),
    ] {
        let (code, out, err) = compare(&args);
        assert_eq!(code, Some(2), "{args:?}: {out}\n{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Told which is which, the renamed arch compares.
    let (code, out, err) = compare(&[path(base), path(&graviton), "--map", "arm64=graviton4"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("arch:arm64→graviton4"), "{out}");
}
