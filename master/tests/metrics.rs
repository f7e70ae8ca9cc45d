//! The master's `/metrics` end to end: a real master with two real worker processes against
//! counting loopback servers. Every scrape must parse as OpenMetrics text (a strict parser
//! below); counts never run ahead of what the servers served, never go down, and once the run
//! is over they equal the summary's and the servers' own counts.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// One sample's identity: metric name and its labels, sorted.
type Key = (String, Labels);

/// A strictly parsed exposition: every sample by name and labels.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<Key, f64>,
    /// Family name to its declared type.
    types: BTreeMap<String, String>,
}

impl Exposition {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        l.sort();
        *self
            .samples
            .get(&(name.to_owned(), l))
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }

    /// A count, 0 when the sample is not there yet (no report has come in).
    fn count_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        l.sort();
        match self.samples.get(&(name.to_owned(), l)) {
            Some(_) => self.count(name, labels),
            None => 0,
        }
    }

    fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let v = self.get(name, labels);
        assert!(v >= 0.0 && v.fract() == 0.0, "{name}{labels:?} = {v}");
        v as u64
    }

    /// Sum of every sample of `name` whose labels include `with`.
    fn sum(&self, name: &str, with: (&str, &str)) -> f64 {
        self.samples
            .iter()
            .filter(|((n, l), _)| n == name && l.iter().any(|(k, v)| k == with.0 && v == with.1))
            .map(|(_, v)| v)
            .sum()
    }
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Suffixes a sample of a family of this type may add to the family name.
fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "info" => &["_info"],
        "histogram" => &["_bucket", "_count", "_sum", "_created"],
        "summary" => &["", "_count", "_sum", "_created"],
        _ => &[""],
    }
}

type Labels = Vec<(String, String)>;

/// Parses `{k="v",...}` at the start of `s`; returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let key = &rest[..eq];
        if !valid_name(key) || key.contains(':') {
            return Err(format!("bad label name {key:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, '\n')) | None => return Err("unterminated label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(k, _)| k == key) {
            return Err(format!("label {key} twice"));
        }
        labels.push((key.to_owned(), value));
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse::<f64>()
            .map_err(|e| format!("bad value {s:?}: {e}")),
    }
}

/// Parses OpenMetrics text strictly: metadata before samples, every sample in the family last
/// declared with a suffix its type allows, no duplicate family or sample, counters not
/// negative, and `# EOF` as the very last line.
fn parse(text: &str) -> Result<Exposition, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("does not end with `# EOF`")?;
    let mut out = Exposition::default();
    let mut family: Option<(String, String)> = None;
    let mut seen_families = HashSet::new();
    for (n, line) in body.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (word, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let rest = parts.next().unwrap_or("");
            if !valid_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            match word {
                "TYPE" => {
                    let known = [
                        "counter",
                        "gauge",
                        "info",
                        "histogram",
                        "summary",
                        "unknown",
                        "stateset",
                        "gaugehistogram",
                    ];
                    if !known.contains(&rest) {
                        return Err(at(format!("unknown type {rest:?}")));
                    }
                    if !seen_families.insert(name.to_owned()) {
                        return Err(at("family declared twice".into()));
                    }
                    out.types.insert(name.to_owned(), rest.to_owned());
                    family = Some((name.to_owned(), rest.to_owned()));
                }
                "HELP" | "UNIT" => {
                    if word == "UNIT" && !name.ends_with(&format!("_{rest}")) {
                        return Err(at("metric name does not end with its unit".into()));
                    }
                }
                _ => return Err(at(format!("unknown metadata {word:?}"))),
            }
            continue;
        }
        if line.is_empty() {
            return Err(at("empty line".into()));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (fam, kind) = family
            .as_ref()
            .ok_or_else(|| at("sample before any # TYPE".into()))?;
        let suffix = name
            .strip_prefix(fam.as_str())
            .ok_or_else(|| at(format!("sample outside its family {fam}")))?;
        if !suffixes(kind).contains(&suffix) {
            return Err(at(format!("suffix {suffix:?} not allowed for a {kind}")));
        }
        let (mut labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let value_text = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?;
        if value_text.contains(' ') {
            return Err(at("timestamps or exemplars are not expected here".into()));
        }
        let value = parse_value(value_text).map_err(at)?;
        if kind == "counter" && (value.is_nan() || value < 0.0) {
            return Err(at("negative or NaN counter".into()));
        }
        labels.sort();
        if out
            .samples
            .insert((name.to_owned(), labels), value)
            .is_some()
        {
            return Err(at("duplicate sample".into()));
        }
    }
    Ok(out)
}

/// GET /metrics over plain HTTP/1.1; the status and the body.
fn scrape(addr: SocketAddr) -> (u16, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: stampede\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

fn wait_for_line(log: &std::sync::Mutex<Vec<String>>, needle: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Some(line) = log.lock().unwrap().iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        assert!(
            start.elapsed() < limit,
            "no `{needle}` in the log within {limit:?}:\n{}",
            log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const REQUESTS: &str = "stampede_arch_requests_total";

#[test]
fn metrics_parse_and_end_equal_to_the_summary_and_the_servers() {
    let arm = TestServer::start(Behaviour {
        arch: "arm64",
        every_5xx: 4,
        delay: Duration::from_millis(10),
        ..Default::default()
    });
    let amd = TestServer::start(Behaviour {
        arch: "amd64",
        every_5xx: 9,
        delay: Duration::from_millis(15),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        two_target_scenario(&arm.url("/arm"), &amd.url("/amd"), 6, "4s", ""),
    )
    .unwrap();
    let summary_path = dir.path().join("summary.json");
    let mut master = start_run(
        scenario.to_str().unwrap(),
        2,
        &summary_path,
        &[
            "--metrics-bind",
            "127.0.0.1:0",
            "--print-summary",
            "--linger",
            "2m",
            "--token",
            "metrics-test",
        ],
        dir.path(),
    );
    let line = wait_for_line(
        &master.log,
        "metrics listening on ",
        Duration::from_secs(30),
    );
    let metrics: SocketAddr = line
        .split("metrics listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    // Before any worker: the endpoint answers, with the run's identity and zero workers.
    let (status, content_type, body) = scrape(metrics);
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let first = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert_eq!(first.get("stampede_run_info", &[("name", "e2e")]), 1.0);
    assert_eq!(first.get("stampede_run_finished", &[]), 0.0);
    assert_eq!(first.types["stampede_arch_requests"], "counter");
    assert_eq!(first.types["stampede_arch_latency_seconds"], "gauge");

    let mut w1 = start_worker(master.addr, "w1", &["--token", "metrics-test"]);
    let mut w2 = start_worker(master.addr, "w2", &["--token", "metrics-test"]);

    // While the run goes: every scrape parses, counts never exceed what the servers served
    // (a request is reported after it was answered) and never go down.
    let mut last = (0u64, 0u64);
    let mut scrapes = 0;
    let start = Instant::now();
    while !master
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("summary written to"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the run did not end"
        );
        let (status, _, body) = scrape(metrics);
        assert_eq!(status, 200);
        let e = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        let (served_arm, served_amd) = (arm.counts.served(), amd.counts.served());
        let now = (
            e.count_or_zero(REQUESTS, &[("arch", "arm64")]),
            e.count_or_zero(REQUESTS, &[("arch", "amd64")]),
        );
        assert!(
            now.0 <= served_arm && now.1 <= served_amd,
            "{now:?} ahead of the servers"
        );
        assert!(
            now.0 >= last.0 && now.1 >= last.1,
            "{now:?} went below {last:?}"
        );
        last = now;
        scrapes += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(scrapes >= 2, "only {scrapes} scrape(s) during the run");

    // The run is over and the master lingers: the figures are final.
    let (status, _, body) = scrape(metrics);
    assert_eq!(status, 200);
    let e = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let s = read_summary(&summary_path);
    assert_eq!(e.get("stampede_run_finished", &[]), 1.0);
    assert_eq!(e.count("stampede_workers_connected", &[]), 2);
    assert_eq!(e.get("stampede_run_planned_seconds", &[]), 4.0);
    // The plan is over: it asks for no users any more, and the workers stopped theirs.
    assert_eq!(e.count("stampede_users_goal", &[]), 0);
    assert_eq!(e.count("stampede_users_running", &[]), 0);

    let servers = [("arm64", "arm", &arm), ("amd64", "amd", &amd)];
    for (arch, target, server) in servers {
        let (served, served_5xx) = (server.counts.served(), server.counts.served_5xx());
        assert!(served > 20, "too little traffic on {arch}: {served}");
        for (group, labels, results) in [
            ("arch", vec![("arch", arch)], &s["by_arch"][arch]),
            (
                "target",
                vec![("target", target), ("arch", arch)],
                &s["by_target"][target],
            ),
        ] {
            let with = |k: &'static str, v: &'static str| {
                let mut l = labels.clone();
                l.push((k, v));
                l
            };
            let requests = e.count(&format!("stampede_{group}_requests_total"), &labels);
            assert_eq!(requests, served, "{group} {arch}: metrics vs server");
            assert_eq!(
                requests, results["requests"],
                "{group} {arch}: metrics vs summary"
            );
            let responses = format!("stampede_{group}_responses_total");
            assert_eq!(e.count(&responses, &with("class", "5xx")), served_5xx);
            for class in ["2xx", "3xx", "4xx", "5xx"] {
                assert_eq!(
                    e.count(&responses, &with("class", class)),
                    results["status"][class],
                    "{group} {arch} {class}"
                );
            }
            let errors = format!("stampede_{group}_errors_total");
            for kind in ["connect", "reset", "timeout", "other"] {
                assert_eq!(
                    e.count(&errors, &with("kind", kind)),
                    results["errors"][kind],
                    "{group} {arch} {kind}"
                );
            }
            let latency = format!("stampede_{group}_latency_seconds");
            for (q, key) in [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")] {
                let ms = e.get(&latency, &with("quantile", q)) * 1000.0;
                let want = results["latency_ms"][key].as_f64().unwrap();
                assert!(
                    (ms - want).abs() < 1e-6 * want.max(1.0),
                    "{group} {arch} {key}: metrics {ms} ms, summary {want} ms"
                );
            }
        }
        // The latency oracle: the delay the server really applied.
        let p50_ms = e.get(
            "stampede_arch_latency_seconds",
            &[("arch", arch), ("quantile", "0.5")],
        ) * 1000.0;
        let delay_ms = server.counts.median_delay_ms();
        assert!(
            p50_ms >= delay_ms - 0.02 && p50_ms <= delay_ms + 1.0,
            "{arch} p50 {p50_ms} ms vs applied delay {delay_ms} ms"
        );
    }
    assert_eq!(
        e.sum(REQUESTS, ("arch", "arm64")) + e.sum(REQUESTS, ("arch", "amd64")),
        s["totals"]["requests"].as_f64().unwrap()
    );

    // --print-summary: the log carries the same summary as the file.
    let out = master.stdout.lock().unwrap().join("\n");
    let printed = out
        .split("-----BEGIN STAMPEDE SUMMARY-----\n")
        .nth(1)
        .and_then(|rest| rest.split("\n-----END STAMPEDE SUMMARY-----").next())
        .unwrap_or_else(|| panic!("no summary in the output:\n{out}"));
    let printed: Value = serde_json::from_str(printed).expect("the printed summary is JSON");
    assert_eq!(printed, s);

    // A signal ends the linger at once, with the run's exit code.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &master.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let code = wait_exit(&mut master.child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{}", master.log.lock().unwrap().join("\n"));
    assert_eq!(wait_exit(&mut w1, Duration::from_secs(10)), Some(0));
    assert_eq!(wait_exit(&mut w2, Duration::from_secs(10)), Some(0));
}

#[test]
fn the_parser_rejects_malformed_text() {
    for bad in [
        "stampede_x 1\n# EOF\n",                                   // no TYPE
        "# TYPE a counter\na_total 1\n",                           // no EOF
        "# TYPE a counter\na 1\n# EOF\n",                          // counter without _total
        "# TYPE a gauge\na{x=\"1} 1\n# EOF\n",                     // unterminated value
        "# TYPE a gauge\na{x=1} 1\n# EOF\n",                       // unquoted value
        "# TYPE a gauge\na 1\na 2\n# EOF\n",                       // duplicate sample
        "# TYPE a gauge\na one\n# EOF\n",                          // bad value
        "# TYPE a counter\na_total -1\n# EOF\n",                   // negative counter
        "# TYPE a gauge\n# TYPE a gauge\n# EOF\n",                 // family twice
        "# TYPE a gauge\nb 1\n# EOF\n",                            // outside its family
        "# TYPE a_seconds gauge\n# UNIT a_seconds bytes\n# EOF\n", // unit mismatch
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
    let good = "# HELP a_seconds x\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\n\
                a_seconds{k=\"q\\\"\\\\\\n\"} 0.5\n# EOF\n";
    let e = parse(good).unwrap();
    assert_eq!(e.get("a_seconds", &[("k", "q\"\\\n")]), 0.5);
}
