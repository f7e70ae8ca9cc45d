//! Checks a deserialized scenario for values serde cannot reject on its own. Each error names
//! the key path (`target[1].url`) and what was expected.

use std::collections::HashSet;
use std::time::Duration;

use super::compile::request_uri;
use super::model::{Connection, LoadSection, Model, ScenarioFile, Stage, Wait};

use super::invalid::Invalid;

/// The smallest report interval workers accept; below it reports cost more than they tell.
const MIN_REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// More redirects than this is a loop, not a splitter.
const MAX_REDIRECTS: u32 = 30;

pub fn validate(s: &ScenarioFile) -> Result<(), Invalid> {
    if s.name.trim().is_empty() {
        return bad("name", "must not be empty");
    }
    if s.report_interval < MIN_REPORT_INTERVAL {
        return bad("report_interval", "must be at least 100ms");
    }
    if http::HeaderName::from_bytes(s.arch_header.as_bytes()).is_err() {
        return bad("arch_header", "must be a valid HTTP header name");
    }
    if s.connect_timeout.is_zero() {
        return bad("connect_timeout", "must be greater than zero");
    }
    if s.max_redirects > MAX_REDIRECTS {
        return bad(
            "max_redirects",
            format!("at most {MAX_REDIRECTS} (0 disables following redirects)"),
        );
    }
    validate_targets(s)?;
    validate_requests(s)?;
    // A capacity search sets its own levels; the load needs none then.
    validate_load(&s.load, s.stages.is_empty() && !s.is_capacity_search())?;
    validate_stages(s)?;
    match s.run_time {
        Some(t) if t.is_zero() => return bad("run_time", "must be greater than zero"),
        // A capacity search ends by itself; run_time, when given, caps it.
        None if s.stages.is_empty() && !s.is_capacity_search() => {
            return bad("run_time", "required when there are no [[stage]]s");
        }
        _ => {}
    }
    if let Some(c) = &s.capacity {
        c.validate()?;
    }
    if let Some(c) = &s.cost {
        c.validate()?;
    }
    // The thresholds are checked as they are parsed, once (`Scenario::parse`).
    Ok(())
}

fn bad<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, Invalid> {
    Err((key.into(), message.into()))
}

fn validate_targets(s: &ScenarioFile) -> Result<(), Invalid> {
    if s.targets.is_empty() {
        return bad("target", "at least one [[target]] is required");
    }
    let mut names = HashSet::new();
    for (i, t) in s.targets.iter().enumerate() {
        let key = |field: &str| format!("target[{i}].{field}");
        if t.name.trim().is_empty() {
            return bad(key("name"), "must not be empty");
        }
        if !names.insert(t.name.as_str()) {
            return bad(key("name"), format!("duplicate target name `{}`", t.name));
        }
        if t.arch.trim().is_empty() {
            return bad(key("arch"), "must not be empty (e.g. arm64, amd64)");
        }
        let https = match url::Url::parse(&t.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if u.query().is_some() {
                    return bad(
                        key("url"),
                        "must not carry a query; put it in the request's `path` or `query`",
                    );
                }
                u.scheme() == "https"
            }
            Ok(_) => {
                return bad(
                    key("url"),
                    format!("`{}`: expected an http:// or https:// URL", t.url),
                );
            }
            Err(e) => {
                return bad(
                    key("url"),
                    format!("`{}`: expected an http:// or https:// URL ({e})", t.url),
                );
            }
        };
        super::target::validate_target(i, t, https)?;
    }
    if s.targets.iter().all(|t| t.weight == 0) {
        return bad("target", "the weights add up to zero");
    }
    Ok(())
}

fn validate_requests(s: &ScenarioFile) -> Result<(), Invalid> {
    if s.requests.is_empty() {
        return bad("request", "at least one [[request]] is required");
    }
    let targets: HashSet<&str> = s.targets.iter().map(|t| t.name.as_str()).collect();
    let mut names = HashSet::new();
    for (i, r) in s.requests.iter().enumerate() {
        let key = |field: &str| format!("request[{i}].{field}");
        if r.name.trim().is_empty() {
            return bad(key("name"), "must not be empty");
        }
        if !names.insert(r.name.as_str()) {
            return bad(key("name"), format!("duplicate request name `{}`", r.name));
        }
        if http::Method::from_bytes(r.method.as_bytes()).is_err() {
            return bad(
                key("method"),
                format!("`{}` is not an HTTP method", r.method),
            );
        }
        if !r.path.starts_with('/') {
            return bad(key("path"), format!("`{}` must start with /", r.path));
        }
        if let Some(name) = r.query.keys().find(|k| k.is_empty()) {
            return bad(key("query"), format!("`{name}`: empty parameter name"));
        }
        if let Err(e) = request_uri(r).parse::<http::Uri>() {
            return bad(
                key("path"),
                format!("`{}` is not a valid path: {e}", r.path),
            );
        }
        if r.timeout.is_zero() {
            return bad(key("timeout"), "must be greater than zero");
        }
        if let Some(code) = r.expect.iter().find(|c| !(100..=599).contains(*c)) {
            return bad(
                key("expect"),
                format!("{code} is not an HTTP status (100..=599)"),
            );
        }
        for (name, value) in &r.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return bad(key("headers"), format!("`{name}` is not a header name"));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return bad(
                    key("headers"),
                    format!("`{name}`: the value is not a valid header value"),
                );
            }
        }
        if r.body.is_some() && r.json.is_some() {
            return bad(key("json"), "give either `body` (text) or `json`, not both");
        }
        if r.max_redirects.is_some_and(|n| n > MAX_REDIRECTS) {
            return bad(key("max_redirects"), format!("at most {MAX_REDIRECTS}"));
        }
        let mut seen = HashSet::new();
        for name in &r.targets {
            if !targets.contains(name.as_str()) {
                return bad(
                    key("targets"),
                    format!("`{name}` is not the name of a [[target]]"),
                );
            }
            if !seen.insert(name) {
                return bad(key("targets"), format!("`{name}` is listed twice"));
            }
        }
    }
    if s.requests.iter().all(|r| r.weight == 0) {
        return bad("request", "the weights add up to zero");
    }
    // Every target that gets load needs something to send.
    for (i, t) in s.targets.iter().enumerate() {
        let served = s
            .requests
            .iter()
            .any(|r| r.weight > 0 && (r.targets.is_empty() || r.targets.contains(&t.name)));
        if t.weight > 0 && !served {
            return bad(
                format!("target[{i}]"),
                format!(
                    "no request with a positive weight may be sent to `{}` (see the requests' `targets`)",
                    t.name
                ),
            );
        }
    }
    match (s.load.pool_size, s.load.connection) {
        (Some(0), _) => return bad("load.pool_size", "must be at least 1"),
        (Some(_), c) if c != Connection::Shared => {
            return bad("load.pool_size", "only applies to connection = \"shared\"");
        }
        _ => {}
    }
    Ok(())
}

fn positive_rate(key: &str, rate: f64, what: &str) -> Result<(), Invalid> {
    if rate.is_finite() && rate > 0.0 {
        Ok(())
    } else {
        bad(key, format!("must be a positive number of {what}"))
    }
}

fn validate_load(l: &LoadSection, no_stages: bool) -> Result<(), Invalid> {
    let only = |key: &str, model: Model| -> Result<(), Invalid> {
        bad(
            format!("load.{key}"),
            format!(
                "applies to the {} model (set load.model = \"{}\")",
                model.name(),
                model.name()
            ),
        )
    };
    match l.model {
        Model::Closed => {
            if l.rate.is_some() {
                return only("rate", Model::Open);
            }
            if l.arrivals.is_some() {
                return only("arrivals", Model::Open);
            }
            if l.max_in_flight.is_some() {
                return only("max_in_flight", Model::Open);
            }
            match l.users {
                Some(0) => return bad("load.users", "must be at least 1"),
                None if no_stages => {
                    return bad("load.users", "required (or give [[stage]]s with users)");
                }
                _ => {}
            }
            if let Some(rate) = l.spawn_rate {
                positive_rate("load.spawn_rate", rate, "users per second")?;
            }
            if let Some(w) = &l.wait {
                validate_wait(w)?;
            }
        }
        Model::Open => {
            if l.users.is_some() {
                return only("users", Model::Closed);
            }
            if l.spawn_rate.is_some() {
                return only("spawn_rate", Model::Closed);
            }
            if l.wait.is_some() {
                return only("wait", Model::Closed);
            }
            match l.rate {
                Some(rate) => positive_rate("load.rate", rate, "requests per second")?,
                None if no_stages => {
                    return bad("load.rate", "required (or give [[stage]]s with rates)");
                }
                None => {}
            }
            if l.max_in_flight == Some(0) {
                return bad("load.max_in_flight", "must be at least 1");
            }
        }
    }
    Ok(())
}

fn validate_wait(w: &Wait) -> Result<(), Invalid> {
    let key = "load.wait";
    match *w {
        Wait::None | Wait::Constant { .. } => Ok(()),
        Wait::Between { min, max } if min > max => bad(key, "min must not exceed max"),
        Wait::Between { .. } => Ok(()),
        Wait::Exponential { mean } if mean.is_zero() => bad(key, "mean must be greater than zero"),
        Wait::Pacing { interval } if interval.is_zero() => {
            bad(key, "interval must be greater than zero")
        }
        Wait::Throughput { rate } => positive_rate(key, rate, "iterations per second per user"),
        Wait::Exponential { .. } | Wait::Pacing { .. } => Ok(()),
    }
}

fn validate_stages(s: &ScenarioFile) -> Result<(), Invalid> {
    let model = s.load.model;
    for (i, stage) in s.stages.iter().enumerate() {
        let key = |field: &str| format!("stage[{i}].{field}");
        let Stage {
            duration,
            users,
            rate,
            requests,
            pause,
        } = stage;
        if duration.is_some_and(|d| d.is_zero()) {
            return bad(key("duration"), "must be greater than zero");
        }
        match model {
            Model::Closed if rate.is_some() => {
                return bad(
                    key("rate"),
                    "the closed model takes `users` (rates need load.model = \"open\")",
                );
            }
            Model::Open if users.is_some() => {
                return bad(
                    key("users"),
                    "the open model takes `rate` (users need load.model = \"closed\")",
                );
            }
            _ => {}
        }
        if let Some(r) = rate
            && !(r.is_finite() && *r >= 0.0)
        {
            return bad(
                key("rate"),
                "must be a non-negative number of requests per second",
            );
        }
        let level = stage.level();
        if *pause {
            if duration.is_none() {
                return bad(key("duration"), "a pause needs a duration");
            }
            if level.is_some() || requests.is_some() {
                return bad(
                    key("pause"),
                    "a pause has only a duration (no users, rate or requests)",
                );
            }
            continue;
        }
        if let Some(n) = requests {
            if *n == 0 {
                return bad(key("requests"), "must be at least 1");
            }
            let level = level.or(s.load.level()).unwrap_or(0.0);
            if level <= 0.0 {
                return bad(
                    key("requests"),
                    format!(
                        "this stage can never end: it sends at 0 {}; give the stage `{}` or set load.{}",
                        model.unit(),
                        level_key(model),
                        level_key(model)
                    ),
                );
            }
            continue;
        }
        if duration.is_none() {
            return bad(
                key("duration"),
                "required (a stage can never end without one, unless it sends a fixed number of `requests`)",
            );
        }
        if level.is_none() {
            return bad(
                key(level_key(model)),
                format!(
                    "required: the {} at the end of the stage (or `requests = N`, or `pause = true`)",
                    model.unit()
                ),
            );
        }
    }
    Ok(())
}

fn level_key(model: Model) -> &'static str {
    match model {
        Model::Closed => "users",
        Model::Open => "rate",
    }
}
