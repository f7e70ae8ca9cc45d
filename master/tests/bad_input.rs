//! Every class of bad scenario or flag: `stampede-master check` (and `run`) exits 2 with a
//! message naming the file, the key and what was expected. And every shipped scenario passes.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const GOOD: &str = r#"
name = "bad-input"
run_time = "10s"

[[target]]
name = "arm"
url = "http://127.0.0.1:9/arm"
arch = "arm64"

[[request]]
name = "runtime"
path = "/runtime"

[load]
users = 2
"#;

/// Runs `check` on `text` (written to `name`) with extra args; returns (exit code, stderr).
fn check(name: &str, text: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let mut args = vec!["check", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_master(&args, dir.path(), Duration::from_secs(30))
}

/// Asserts exit code 2 and that stderr names the file and every one of `wanted`.
fn rejected(name: &str, text: &str, extra: &[&str], wanted: &[&str]) {
    let (code, err) = check(name, text, extra);
    assert_eq!(code, Some(2), "{name}: expected exit 2, stderr:\n{err}");
    assert!(err.contains(name), "{name}: the file is not named:\n{err}");
    for w in wanted {
        assert!(err.contains(w), "{name}: `{w}` missing from:\n{err}");
    }
}

#[test]
fn the_good_base_passes() {
    let (code, err) = check("good.toml", GOOD, &[]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn toml_syntax_errors_give_line_and_column() {
    let text = GOOD.replace("users = 2", "users = = 2");
    // `users = = 2` is on line 15 of GOOD; the second `=` is at column 9.
    rejected(
        "syntax.toml",
        &text,
        &[],
        &["syntax.toml:15:9", "TOML syntax error"],
    );
}

#[test]
fn unknown_keys_are_named_with_their_path() {
    let text = GOOD.replace("users = 2", "users = 2\nusrs = 3");
    rejected("unknown.toml", &text, &[], &["load.usrs", "unknown key"]);
    let text = GOOD.replace("path = \"/runtime\"", "path = \"/runtime\"\nheader = {}");
    rejected(
        "unknown2.toml",
        &text,
        &[],
        &["request[0].header", "unknown key"],
    );
}

#[test]
fn wrong_types_name_the_key_and_the_expected_type() {
    let text = GOOD.replace("users = 2", "users = \"many\"");
    rejected(
        "type.toml",
        &text,
        &[],
        &["load.users", "expected", "integer"],
    );
    let text = GOOD.replace("arch = \"arm64\"", "arch = \"arm64\"\nweight = [1]");
    rejected("type2.toml", &text, &[], &["target[0].weight", "expected"]);
}

#[test]
fn bad_durations_name_the_key() {
    let text = GOOD.replace("run_time = \"10s\"", "run_time = \"ten seconds\"");
    rejected("duration.toml", &text, &[], &["run_time", "duration"]);
    let text = GOOD.replace(
        "users = 2",
        "users = 2\nwait = { kind = \"between\", min = \"1x\", max = \"2s\" }",
    );
    rejected("duration2.toml", &text, &[], &["load.wait.min"]);
}

#[test]
fn bad_urls_name_the_target() {
    for (url, why) in [
        ("ftp://127.0.0.1/x", "http://"),
        ("not a url", "http://"),
        ("http://127.0.0.1:9/x?q=1", "query"),
        ("https://127.0.0.1:9/x?q=1", "query"),
    ] {
        let text = GOOD.replace("http://127.0.0.1:9/arm", url);
        rejected("url.toml", &text, &[], &["target[0].url", why]);
    }
}

#[test]
fn empty_targets_or_requests_are_refused() {
    let no_targets = GOOD.replace(
        "[[target]]\nname = \"arm\"\nurl = \"http://127.0.0.1:9/arm\"\narch = \"arm64\"\n",
        "",
    );
    rejected(
        "targets.toml",
        &no_targets,
        &[],
        &["`target`", "at least one"],
    );
    let no_requests = GOOD.replace("[[request]]\nname = \"runtime\"\npath = \"/runtime\"\n", "");
    rejected(
        "requests.toml",
        &no_requests,
        &[],
        &["`request`", "at least one"],
    );
}

#[test]
fn zero_total_weight_is_refused() {
    let text = GOOD.replace("arch = \"arm64\"", "arch = \"arm64\"\nweight = 0");
    rejected(
        "weight.toml",
        &text,
        &[],
        &["`target`", "weights add up to zero"],
    );
    let text = GOOD.replace("path = \"/runtime\"", "path = \"/runtime\"\nweight = 0");
    rejected(
        "weight2.toml",
        &text,
        &[],
        &["`request`", "weights add up to zero"],
    );
}

#[test]
fn zero_or_negative_users_and_rates_are_refused() {
    rejected(
        "zero.toml",
        &GOOD.replace("users = 2", "users = 0"),
        &[],
        &["load.users", "at least 1"],
    );
    rejected(
        "negative.toml",
        &GOOD.replace("users = 2", "users = -5"),
        &[],
        &["load.users", "expected"],
    );
    let open = GOOD.replace("users = 2", "model = \"open\"\nrate = 0");
    rejected("rate.toml", &open, &[], &["load.rate", "positive"]);
    let open = GOOD.replace("users = 2", "model = \"open\"\nrate = -10.5");
    rejected("rate2.toml", &open, &[], &["load.rate", "positive"]);
    let stage = GOOD.replace(
        "users = 2",
        "model = \"open\"\nrate = 5\n[[stage]]\nduration = \"1s\"\nrate = -1",
    );
    rejected(
        "stage-rate.toml",
        &stage,
        &[],
        &["stage[0].rate", "non-negative"],
    );
}

#[test]
fn stages_that_can_never_end_are_refused() {
    // A fixed count at zero users.
    let text = GOOD.replace(
        "users = 2",
        "[[stage]]\nduration = \"5s\"\nusers = 4\n[[stage]]\nrequests = 100\nusers = 0",
    );
    rejected(
        "never.toml",
        &text,
        &[],
        &["stage[1].requests", "never end"],
    );
    // A ramp without a duration.
    let text = GOOD
        .replace("run_time = \"10s\"\n", "")
        .replace("users = 2", "users = 2\n[[stage]]\nusers = 4");
    rejected(
        "never2.toml",
        &text,
        &[],
        &["stage[0].duration", "never end"],
    );
    // No run time and no stages.
    let text = GOOD.replace("run_time = \"10s\"\n", "");
    rejected("never3.toml", &text, &[], &["run_time", "required"]);
}

#[test]
fn unknown_threshold_metrics_are_refused() {
    let text = format!("{GOOD}\n[thresholds]\n\"arch:arm64/p98\" = \"< 10ms\"\n");
    rejected(
        "metric.toml",
        &text,
        &[],
        &["thresholds.\"arch:arm64/p98\"", "unknown metric", "p99"],
    );
    let text = format!("{GOOD}\n[thresholds]\np99 = {{ expr = \"< 10ms\", abort = true }}\n");
    rejected(
        "metric2.toml",
        &text,
        &[],
        &["thresholds.p99.abort", "unknown key"],
    );
}

#[test]
fn bad_overrides_and_flags_exit_2() {
    rejected(
        "set.toml",
        GOOD,
        &["--set", "load.users=lots"],
        &["load.users", "expected"],
    );
    let (code, err) = check("set2.toml", GOOD, &["--set", "nonsense"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("KEY=VALUE"), "{err}");
    // An environment override names where the value came from.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.toml");
    std::fs::write(&path, GOOD).unwrap();
    let out = std::process::Command::new(master_bin())
        .args(["check", path.to_str().unwrap()])
        .env("STAMPEDE__LOAD__USERS", "-3")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("load.users"), "{err}");
}

#[test]
fn run_refuses_bad_files_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.toml");
    std::fs::write(&path, GOOD.replace("users = 2", "users = 0")).unwrap();
    let (code, err) = run_master(
        &["run", path.to_str().unwrap(), "--headless"],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("run.toml") && err.contains("load.users"),
        "{err}"
    );
}

#[test]
fn every_shipped_scenario_passes_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let (code, err) = run_master(
            &["check", path.to_str().unwrap()],
            &dir,
            Duration::from_secs(30),
        );
        assert_eq!(code, Some(0), "{}: {err}", path.display());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.trim_start().starts_with('#'),
            "{} opens with a comment saying what it is",
            path.display()
        );
        checked += 1;
    }
    assert!(
        checked >= 6,
        "only {checked} scenarios found in {}",
        dir.display()
    );
}
