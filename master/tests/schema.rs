//! The summary's published schema, `docs/summary.schema.json`: it is exactly what the Rust types
//! generate (refresh it with `STAMPEDE_BLESS=1 cargo test -p stampede-master --test schema`),
//! it is valid JSON Schema 2020-12 to an independent validator, a real run's summary passes it,
//! and it rejects what a reader would choke on.

mod common;

use std::time::Duration;

use common::schema::{check_against_schema, python_has, summary_schema_path};
use common::*;

#[test]
fn the_published_schema_is_the_one_the_types_generate() {
    let generated = stampede_master::outcome::schema_text();
    let path = summary_schema_path();
    if std::env::var_os("STAMPEDE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write docs/summary.schema.json");
        eprintln!("wrote {}", path.display());
        return;
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == generated,
        "{} is not what the summary's types generate (a field was added, renamed or \
         documented anew). Refresh it with\n\n    \
         STAMPEDE_BLESS=1 cargo test -p stampede-master --test schema\n\nand commit it.",
        path.display()
    );
    let schema: serde_json::Value = serde_json::from_str(&published).expect("the schema is JSON");
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "draft 2020-12"
    );
}

/// What spoils a summary.
type Breaks = fn(&mut serde_json::Value);

/// A real run's summary validates; the same summary with a wrong version, a count that is not
/// a count, or a missing section does not: the schema says something.
#[test]
fn a_real_summary_passes_and_broken_ones_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(Behaviour {
        arch: "arm64",
        every_5xx: 7,
        ..Behaviour::default()
    });
    let scenario = one_server_scenario(dir.path(), &srv, 2, "2s");
    let summary = dir.path().join("summary.json");
    let (code, err) = run_master(
        &[
            "run",
            &scenario,
            "--headless",
            "--summary",
            summary.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{err}");
    // Validated on reading.
    let good = read_summary(&summary);
    assert_eq!(
        good["totals"]["requests"].as_u64(),
        Some(srv.counts.served())
    );
    if !python_has("jsonschema") {
        eprintln!("SKIPPED: python3 with `jsonschema` is not available (.ci/run installs it)");
        return;
    }
    let schema = summary_schema_path();
    let broken: [(&str, Breaks); 4] = [
        ("another version", |s| {
            s["schema"] = "stampede.summary.v2".into()
        }),
        ("a negative count", |s| {
            s["totals"]["requests"] = (-1).into()
        }),
        ("a count as text", |s| {
            s["by_arch"]["arm64"]["status"]["5xx"] = "many".into()
        }),
        ("no totals", |s| {
            s.as_object_mut().unwrap().remove("totals");
        }),
    ];
    for (what, breaks) in broken {
        let mut s = good.clone();
        breaks(&mut s);
        let text = serde_json::to_string(&s).unwrap();
        let verdict = check_against_schema(&text, &schema);
        eprintln!("{what}: {verdict:?}");
        assert!(verdict.is_err(), "{what} passed the schema");
    }
}
