//! `--junit PATH` end to end: a real run with passing and failing thresholds writes one JUnit
//! test case per threshold with its measured value (the servers' own counts say what that value
//! must be), the document validates against a JUnit XSD (master/tests/data/junit.xsd) with
//! Python's `xmlschema`, and a path that cannot be written is refused before the first request.

mod common;

use std::time::Duration;

use common::schema::{junit_xsd_path, read_junit};
use common::*;

const THRESHOLDS: &str = r#"
[thresholds]
"requests" = "> 0"
"arch:amd64/5xx_ratio" = "== 0"
"arch:arm64/5xx_ratio" = "< 0.01"
"#;

#[test]
fn thresholds_become_junit_cases_with_their_measured_values() {
    let dir = tempfile::tempdir().unwrap();
    // Every fifth answer of arm's server is a 503: its 5XX threshold fails, the others pass.
    let arm = TestServer::start(Behaviour {
        arch: "arm64",
        every_5xx: 5,
        delay: Duration::from_millis(2),
        ..Behaviour::default()
    });
    let amd = TestServer::start(Behaviour {
        arch: "amd64",
        delay: Duration::from_millis(2),
        ..Behaviour::default()
    });
    let scenario = dir.path().join("s.toml");
    let text = two_target_scenario(&arm.url("/arm"), &amd.url("/amd"), 4, "3s", THRESHOLDS);
    std::fs::write(&scenario, text).unwrap();
    let summary = dir.path().join("summary.json");
    let junit = dir.path().join("ci/junit.xml");
    let (code, err) = run_master(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--headless",
            "--summary",
            summary.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "a threshold failed: exit 1\n{err}");
    assert!(err.contains(&format!("wrote {}", junit.display())), "{err}");
    let s = read_summary(&summary);

    let Some(doc) = read_junit(&junit, &junit_xsd_path()) else {
        return;
    };
    let doc = doc.unwrap_or_else(|why| panic!("the JUnit XML does not validate: {why}"));
    eprintln!("{}", serde_json::to_string_pretty(&doc).unwrap());
    assert_eq!(doc["root"], "testsuites");
    assert_eq!(doc["attrs"]["tests"], "3");
    assert_eq!(doc["attrs"]["failures"], "1");
    let suite = &doc["suites"][0];
    assert_eq!(suite["attrs"]["timestamp"], s["started_at"]);
    assert_eq!(suite["properties"]["run_id"], s["run_id"]);
    let cases = suite["cases"].as_array().unwrap();
    let thresholds = s["thresholds"].as_array().unwrap();
    assert_eq!(cases.len(), thresholds.len());
    for (case, t) in cases.iter().zip(thresholds) {
        assert_eq!(case["name"], t["expr"]);
        let (measured, value) = (case["measured"].as_f64(), t["value"].as_f64());
        let (measured, value) = (measured.unwrap(), value.unwrap());
        assert_eq!(measured, value, "{case} vs {t}");
        let pass = t["pass"].as_bool().unwrap();
        assert_eq!(case["failure"].is_null(), pass, "{case}");
        if !pass {
            let message = case["failure"].as_str().unwrap();
            assert!(
                message.contains("measured 0.") && message.contains("< 0.01"),
                "{message}"
            );
            assert_eq!(case["failure_text"].as_str(), Some(message));
        }
    }
    // The values are the servers' own: every request, and arm's share of 503s.
    let by_name = |name: &str| {
        let case = cases.iter().find(|c| c["name"] == name);
        case.and_then(|c| c["measured"].as_f64()).unwrap()
    };
    let served = arm.counts.served() + amd.counts.served();
    assert_eq!(by_name("requests > 0"), served as f64);
    assert_eq!(by_name("arch:amd64/5xx_ratio == 0"), 0.0);
    let arm_ratio = arm.counts.served_5xx() as f64 / arm.counts.served() as f64;
    let measured = by_name("arch:arm64/5xx_ratio < 0.01");
    eprintln!("arm's 5XX ratio: measured {measured}, the server's own {arm_ratio:.5}");
    assert!(
        (measured - arm_ratio).abs() <= 1e-9,
        "{measured} vs {arm_ratio}"
    );

    // The XSD says something: a case without a name, or a negative count, does not validate.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let broken = [
        (
            "a nameless case",
            xml.replacen("<testcase name=", "<testcase label=", 1),
        ),
        (
            "a negative count",
            xml.replacen("tests=\"3\"", "tests=\"-3\"", 1),
        ),
    ];
    for (what, text) in broken {
        let path = dir.path().join("broken.xml");
        std::fs::write(&path, text).unwrap();
        let verdict = read_junit(&path, &junit_xsd_path()).unwrap();
        eprintln!("{what}: {verdict:?}");
        assert!(verdict.is_err(), "{what} validated");
    }
}

#[test]
fn a_junit_path_that_cannot_be_written_is_refused_before_the_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(Behaviour {
        arch: "arm64",
        ..Behaviour::default()
    });
    let scenario = one_server_scenario(dir.path(), &srv, 2, "2s");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let inside_a_file = file.join("junit.xml");
    let (code, err) = run_master(
        &[
            "run",
            &scenario,
            "--headless",
            "--junit",
            inside_a_file.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot write the JUnit XML"), "{err}");
    assert!(err.contains(inside_a_file.to_str().unwrap()), "{err}");
    assert_eq!(srv.counts.served(), 0, "no request went out");
}
