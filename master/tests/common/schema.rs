//! The published schemas the tests hold outputs to, checked by independent validators
//! (Python's `jsonschema` for the summary, `xmlschema` for JUnit XML); each check says it was
//! skipped when python3 or its module is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The published schema of the summary.
pub fn summary_schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/summary.schema.json")
}

/// Checks a summary against `docs/summary.schema.json` with an independent validator (Python's
/// `jsonschema`, draft 2020-12), so the schema the users are given is the one the tests hold
/// every written summary to. Panics naming each violation; without python3 or the module it
/// says so and checks nothing (.ci/run installs it).
pub fn validate_summary(text: &str, what: &str) {
    if let Err(violations) = check_against_schema(text, &summary_schema_path()) {
        panic!("{what} does not match docs/summary.schema.json:\n{violations}");
    }
}

/// `Ok` when `text` validates against `schema` or no validator is installed (said once);
/// else the violations, one a line.
pub fn check_against_schema(text: &str, schema: &Path) -> Result<(), String> {
    static HAVE_JSONSCHEMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let have = *HAVE_JSONSCHEMA.get_or_init(|| {
        let ok = python_has("jsonschema");
        if !ok {
            eprintln!(
                "SKIPPED: summaries are not checked against the schema: python3 with the \
                 `jsonschema` module is not available (.ci/run installs it)"
            );
        }
        ok
    });
    if !have {
        return Ok(());
    }
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE_JSON)
        .arg(schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    // A summary is at most a few MB: written whole before reading the answer.
    let mut stdin = child.stdin.take().expect("python's stdin");
    stdin
        .write_all(text.as_bytes())
        .expect("summary sent to python");
    drop(stdin);
    let out = child.wait_with_output().expect("python3 ran");
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => panic!(
            "the validator failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Whether `python3` can import `module`.
pub fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Validates standard input against the schema file `argv[1]`; exit 1 with one line per
/// violation (its place in the document, then what is wrong).
const VALIDATE_JSON: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
with open(sys.argv[1]) as f:
    schema = json.load(f)
try:
    Draft202012Validator.check_schema(schema)
except Exception as e:
    print("the schema itself is not valid 2020-12: " + str(e)[:500], file=sys.stderr)
    sys.exit(2)
try:
    doc = json.load(sys.stdin)
except ValueError as e:
    print("(top): not JSON: " + str(e))
    sys.exit(1)
errors = sorted(Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
for e in errors[:30]:
    where = "/".join(map(str, e.absolute_path)) or "(top)"
    print(where + ": " + e.message[:300])
sys.exit(1 if errors else 0)
"#;

/// The JUnit XSD the tests hold `--junit` output to (master/tests/data/junit.xsd).
pub fn junit_xsd_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit.xsd")
}

/// Validates the JUnit XML at `xml` against `xsd` with Python's `xmlschema`, then reads it
/// back with Python's own XML parser: `Ok(document)` (root and suite attributes, each case's
/// name, classname, measured value and failure message), `Err(why)` when it does not validate,
/// `None` (said) when python3 or `xmlschema` is missing.
pub fn read_junit(xml: &Path, xsd: &Path) -> Option<Result<serde_json::Value, String>> {
    if !python_has("xmlschema") {
        eprintln!("SKIPPED: python3 with `xmlschema` is not available (.ci/run installs it)");
        return None;
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(READ_JUNIT)
        .arg(xsd)
        .arg(xml)
        .output()
        .expect("run python3");
    Some(match out.status.code() {
        Some(0) => Ok(serde_json::from_slice(&out.stdout).expect("python printed JSON")),
        _ => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    })
}

const READ_JUNIT: &str = r#"
import json, sys
import xml.etree.ElementTree as ET
import xmlschema
schema = xmlschema.XMLSchema(sys.argv[1])
errors = list(schema.iter_errors(sys.argv[2]))
if errors:
    for e in errors[:10]:
        print(str(e.reason) + " at " + str(e.path), file=sys.stderr)
    sys.exit(1)
root = ET.parse(sys.argv[2]).getroot()
suites = []
for s in root.iter("testsuite"):
    props = {p.get("name"): p.get("value") for p in s.findall("properties/property")}
    cases = []
    for c in s.iter("testcase"):
        measured = [p.get("value") for p in c.findall("properties/property") if p.get("name") == "measured"]
        failure = c.find("failure")
        cases.append({
            "name": c.get("name"),
            "classname": c.get("classname"),
            "measured": float(measured[0]) if measured else None,
            "failure": None if failure is None else failure.get("message"),
            "failure_text": None if failure is None else failure.text,
        })
    suites.append({"attrs": dict(s.attrib), "properties": props, "cases": cases})
print(json.dumps({"root": root.tag, "attrs": dict(root.attrib), "suites": suites}))
"#;
