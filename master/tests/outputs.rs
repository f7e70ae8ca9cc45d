//! What a run leaves behind and says, end to end with the real binary: output paths are checked
//! before the first request (a missing folder is created, an impossible path refused with exit
//! 2 while the servers see nothing), logs written to a pipe carry no colour codes and no
//! per-step chatter, and a capacity search on an open-model scenario really sends load.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn server(arch: &'static str) -> TestServer {
    TestServer::start(Behaviour {
        arch,
        ..Behaviour::default()
    })
}

#[test]
fn a_summary_in_a_new_folder_is_written_and_logs_in_a_pipe_are_plain() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server("arm64");
    let scenario = one_server_scenario(dir.path(), &srv, 2, "2s");
    let summary = dir.path().join("new/deeper/x.json");
    let report = dir.path().join("reports/r.html");
    let (code, err) = run_master(
        &[
            "run",
            &scenario,
            "--headless",
            "--summary",
            summary.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{err}");
    let s = read_summary(&summary);
    assert_eq!(s["totals"]["requests"].as_u64(), Some(srv.counts.served()));
    assert!(report.is_file(), "the report beside it");
    // stderr is a pipe here: no ANSI escape, and the ramp's steps are not news.
    assert!(!err.contains('\u{1b}'), "colour codes in a pipe:\n{err}");
    assert!(
        !err.contains("load applied"),
        "per-step chatter at INFO:\n{err}"
    );
    assert!(err.contains("run started"), "{err}");
}

/// Each impossible output is refused before the run: exit 2, the path named, nothing sent.
#[test]
fn an_output_that_cannot_be_written_is_refused_before_the_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server("arm64");
    let scenario = one_server_scenario(dir.path(), &srv, 2, "2s");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let inside_a_file = file.join("x.json");
    let cases: [(&str, &Path, &str); 3] = [
        ("--summary", &inside_a_file, "cannot write the summary"),
        ("--report", &inside_a_file, "cannot write the HTML report"),
        ("--csv", &inside_a_file, "cannot write the CSV files"),
    ];
    for (flag, path, says) in cases {
        let (code, err) = run_master(
            &["run", &scenario, "--headless", flag, path.to_str().unwrap()],
            dir.path(),
            Duration::from_secs(30),
        );
        assert_eq!(code, Some(2), "{flag}: {err}");
        assert!(err.contains(says), "{flag}: {err}");
        assert!(err.contains(path.to_str().unwrap()), "{flag}: {err}");
    }
    assert_eq!(srv.counts.served(), 0, "no request went out");
}

/// `scenarios/slo.toml` is an open-model scenario: `--capacity` searches in req/s and every
/// level tried sends load (it used to send none: users in an open-model run).
#[test]
fn capacity_on_an_open_model_scenario_sends_rates() {
    let dir = tempfile::tempdir().unwrap();
    let arm = server("arm64");
    let amd = server("amd64");
    let slo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/slo.toml");
    let summary = dir.path().join("summary.json");
    let arm_url = format!("target[0].url={}", arm.url("/arm"));
    let amd_url = format!("target[1].url={}", amd.url("/amd"));
    let (code, err) = run_master(
        &[
            "run",
            slo.to_str().unwrap(),
            "--headless",
            "--capacity",
            "--set",
            &arm_url,
            "--set",
            &amd_url,
            "--set",
            "capacity.start=20",
            "--set",
            "capacity.step=20",
            "--set",
            "capacity.max=40",
            "--set",
            "capacity.hold=2s",
            "--set",
            "capacity.settle=1s",
            "--set",
            "capacity.confirm=false",
            "--summary",
            summary.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(90),
    );
    // The SLO thresholds may pass or fail; the run must have been carried out.
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {err}");
    let s = read_summary(&summary);
    let capacity = &s["capacity"];
    assert_eq!(capacity["unit"], "req/s", "{capacity}");
    let (arm_served, amd_served) = (arm.counts.served(), amd.counts.served());
    eprintln!("served: arm {arm_served}, amd {amd_served}");
    assert!(arm_served > 0 && amd_served > 0, "both arches got load");
    assert_eq!(
        s["totals"]["requests"].as_u64(),
        Some(arm_served + amd_served)
    );
    for arch in ["arm64", "amd64"] {
        let steps = capacity["by_arch"][arch]["steps"].as_array().unwrap();
        assert!(!steps.is_empty(), "{arch}: no level tried");
        for step in steps {
            let (level, rps) = (
                step["level"].as_f64().unwrap(),
                step["rps"].as_f64().unwrap(),
            );
            eprintln!("{arch}: level {level} req/s measured {rps:.1} req/s");
            // Poisson arrivals over a 2 s hold: well within half of the level either way.
            assert!(
                (rps - level).abs() < level * 0.5,
                "{arch}: level {level} req/s but {rps} measured"
            );
        }
    }
}
