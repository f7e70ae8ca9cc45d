//! JUnit XML, the format CI systems turn into test results and annotations: one test suite of
//! checks, each a test case with what was measured, failing with a message when the check did.
//! [`render`] takes any suite of [`Case`]s, so every judged rule (the thresholds here,
//! `compare`'s rules) is written the same way; [`threshold_cases`] makes the thresholds' cases.
//! quick-xml does the writing and the escaping.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::outcome::{Outcome, Summary};

/// One check as a JUnit test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The rule as written (`arch:arm64/p99 < 500ms`).
    pub name: String,
    /// What it was measured at; `None` when there was nothing to measure.
    pub measured: Option<f64>,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
}

/// A suite's name and the run it belongs to, for the attributes around its cases.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SuiteInfo {
    /// The suite (`stampede thresholds`); also every case's `classname`.
    pub name: String,
    /// When the judged run started (RFC 3339), if there was one.
    pub timestamp: Option<String>,
    /// How long it ran, seconds.
    pub time_s: f64,
    /// Said as `<property>`s of the suite (run id, scenario, ...).
    pub properties: Vec<(String, String)>,
}

/// The thresholds of a summary, one case each, in the summary's order.
pub fn threshold_cases(summary: &Summary) -> Vec<Case> {
    summary.thresholds.iter().map(threshold_case).collect()
}

fn threshold_case(t: &Outcome) -> Case {
    let failure = (!t.pass).then(|| match t.value {
        Some(v) => format!("measured {}, want {}", figure(v), t.expr),
        None => format!("no requests in scope, want {}", t.expr),
    });
    Case {
        name: t.expr.clone(),
        measured: t.value,
        failure,
    }
}

/// The thresholds of a summary as a JUnit document.
pub fn thresholds_document(summary: &Summary) -> io::Result<Vec<u8>> {
    let info = SuiteInfo {
        name: "stampede thresholds".to_owned(),
        timestamp: Some(summary.started_at.clone()).filter(|t| !t.is_empty()),
        time_s: summary.duration_s,
        properties: vec![
            ("run_id".to_owned(), summary.run_id.clone()),
            ("scenario".to_owned(), summary.name.clone()),
        ],
    };
    render(&info, &threshold_cases(summary))
}

/// A JUnit document of one suite: `<testsuites>` around one `<testsuite>` of `cases`.
pub fn render(info: &SuiteInfo, cases: &[Case]) -> io::Result<Vec<u8>> {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let (tests, failures) = (cases.len().to_string(), failures.to_string());
    let time = format!("{:.3}", info.time_s.max(0.0));
    let name = clean(&info.name);
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("testsuites")
        .with_attributes([
            ("name", name.as_str()),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", "0"),
            ("time", time.as_str()),
        ])
        .write_inner_content(|w| {
            let mut suite = w.create_element("testsuite").with_attributes([
                ("name", name.as_str()),
                ("tests", tests.as_str()),
                ("failures", failures.as_str()),
                ("errors", "0"),
                ("skipped", "0"),
                ("time", time.as_str()),
            ]);
            let stamp = info.timestamp.as_deref().map(clean);
            if let Some(stamp) = &stamp {
                suite = suite.with_attribute(("timestamp", stamp.as_str()));
            }
            suite.write_inner_content(|w| {
                properties(w, &info.properties)?;
                cases.iter().try_for_each(|c| case(w, &name, c))
            })?;
            Ok(())
        })?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

fn properties(w: &mut Writer<Vec<u8>>, props: &[(String, String)]) -> io::Result<()> {
    if props.is_empty() {
        return Ok(());
    }
    w.create_element("properties").write_inner_content(|w| {
        for (name, value) in props {
            let (name, value) = (clean(name), clean(value));
            w.create_element("property")
                .with_attributes([("name", name.as_str()), ("value", value.as_str())])
                .write_empty()?;
        }
        Ok(())
    })?;
    Ok(())
}

fn case(w: &mut Writer<Vec<u8>>, classname: &str, c: &Case) -> io::Result<()> {
    let name = clean(&c.name);
    let element = w.create_element("testcase").with_attributes([
        ("name", name.as_str()),
        ("classname", classname),
        ("time", "0"),
    ]);
    // The measured value as a property (pytest's and GitLab's place for it), in full so a
    // script reads the summary's own figure; none to say when nothing was measured.
    let measured = c
        .measured
        .map(|v| vec![("measured".to_owned(), v.to_string())]);
    if measured.is_none() && c.failure.is_none() {
        element.write_empty()?;
        return Ok(());
    }
    element.write_inner_content(|w| {
        properties(w, measured.as_deref().unwrap_or_default())?;
        if let Some(why) = &c.failure {
            let why = clean(why);
            w.create_element("failure")
                .with_attributes([("message", why.as_str()), ("type", "threshold")])
                .write_text_content(BytesText::new(&why))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// A measured figure as text: up to 4 decimals, no trailing zeros (`812.3`, `0.0125`, `40`).
fn figure(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    // What rounds to zero is 0, not `-0`.
    if s.parse::<f64>().is_ok_and(|x| x == 0.0) {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// `text` without the control characters XML 1.0 cannot carry even escaped (a name from a
/// scenario file could hold one); quick-xml escapes the rest.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(info: &SuiteInfo, cases: &[Case]) -> String {
        String::from_utf8(render(info, cases).unwrap()).unwrap()
    }

    #[test]
    fn counts_failures_and_escapes_what_the_rules_say() {
        let info = SuiteInfo {
            name: "checks".into(),
            timestamp: Some("2026-12-02T10:00:00.000Z".into()),
            time_s: 12.5,
            properties: vec![("scenario".into(), "a<b & \"c\"".into())],
        };
        let cases = [
            Case {
                name: "p99 < 500ms".into(),
                measured: Some(812.3),
                failure: Some("measured 812.3, want p99 < 500ms".into()),
            },
            Case {
                name: "requests > 0".into(),
                measured: Some(40.0),
                failure: None,
            },
            Case {
                name: "arch:x/5xx_ratio <= 0.01\u{1}".into(),
                measured: None,
                failure: Some("no requests in scope".into()),
            },
        ];
        let xml = text(&info, &cases);
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{xml}"
        );
        assert!(xml.contains(r#"<testsuite name="checks" tests="3" failures="2" errors="0" skipped="0" time="12.500" timestamp="2026-12-02T10:00:00.000Z">"#), "{xml}");
        assert!(xml.contains(r#"name="p99 &lt; 500ms""#), "{xml}");
        assert!(
            xml.contains(r#"value="a&lt;b &amp; &quot;c&quot;""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<property name="measured" value="812.3"/>"#),
            "{xml}"
        );
        assert!(xml.contains("measured 812.3, want"), "{xml}");
        assert!(
            xml.contains(r#"<property name="measured" value="40"/>"#),
            "{xml}"
        );
        assert!(!xml.contains('\u{1}'), "a control character went through");
        assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    }

    #[test]
    fn an_empty_suite_is_a_document_too() {
        let xml = text(&SuiteInfo::default(), &[]);
        assert!(xml.contains(r#"tests="0" failures="0""#), "{xml}");
    }

    #[test]
    fn figures_are_short() {
        assert_eq!(figure(812.3), "812.3");
        assert_eq!(figure(40.0), "40");
        assert_eq!(figure(0.0125), "0.0125");
        assert_eq!(figure(0.0), "0");
        assert_eq!(figure(-0.00001), "0");
    }
}
