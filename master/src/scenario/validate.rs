//! Checks a deserialized scenario for values serde cannot reject on its own. Each error names
//! the key path (`target[1].url`) and what was expected.

use std::collections::HashSet;
use std::time::Duration;

use super::model::{Model, Scenario, Wait};
use crate::thresholds::Threshold;

/// A key path and what is wrong with its value.
pub type Invalid = (String, String);

/// The smallest report interval workers accept; below it reports cost more than they tell.
const MIN_REPORT_INTERVAL: Duration = Duration::from_millis(100);

pub fn validate(s: &Scenario) -> Result<(), Invalid> {
    if s.name.trim().is_empty() {
        return bad("name", "must not be empty");
    }
    if s.report_interval < MIN_REPORT_INTERVAL {
        return bad("report_interval", "must be at least 100ms");
    }
    if http::HeaderName::from_bytes(s.arch_header.as_bytes()).is_err() {
        return bad("arch_header", "must be a valid HTTP header name");
    }
    validate_targets(s)?;
    validate_requests(s)?;
    validate_load(s)?;
    validate_duration(s)?;
    if let Some(c) = &s.capacity {
        c.validate()?;
    }
    if let Some(c) = &s.cost {
        c.validate()?;
    }
    for (key, expr) in &s.thresholds {
        Threshold::parse(key, expr).map_err(|e| (format!("thresholds.\"{key}\""), e))?;
    }
    Ok(())
}

fn bad<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, Invalid> {
    Err((key.into(), message.into()))
}

fn validate_targets(s: &Scenario) -> Result<(), Invalid> {
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
        match url::Url::parse(&t.url) {
            Ok(u) if u.scheme() == "http" && u.host().is_some() => {}
            Ok(u) if u.scheme() == "https" => {
                return bad(
                    key("url"),
                    "https targets are not supported yet; use http://",
                );
            }
            Ok(_) => return bad(key("url"), format!("`{}` must be an http:// URL", t.url)),
            Err(e) => return bad(key("url"), format!("`{}` is not a URL: {e}", t.url)),
        }
    }
    if s.targets.iter().all(|t| t.weight == 0) {
        return bad("target", "the weights add up to zero");
    }
    Ok(())
}

fn validate_requests(s: &Scenario) -> Result<(), Invalid> {
    if s.requests.is_empty() {
        return bad("request", "at least one [[request]] is required");
    }
    let mut names = HashSet::new();
    for (i, r) in s.requests.iter().enumerate() {
        let key = |field: &str| format!("request[{i}].{field}");
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
        if r.timeout.is_zero() {
            return bad(key("timeout"), "must be greater than zero");
        }
        if let Some(code) = r.expect.iter().find(|c| !(100..=599).contains(*c)) {
            return bad(key("expect"), format!("{code} is not an HTTP status"));
        }
        for name in r.headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return bad(key("headers"), format!("`{name}` is not a header name"));
            }
        }
    }
    if s.requests.iter().all(|r| r.weight == 0) {
        return bad("request", "the weights add up to zero");
    }
    Ok(())
}

fn validate_load(s: &Scenario) -> Result<(), Invalid> {
    if s.load.model == Model::Open {
        return bad(
            "load.model",
            "the open model is not supported yet; use \"closed\"",
        );
    }
    match s.load.users {
        Some(0) => return bad("load.users", "must be at least 1"),
        None if s.stages.is_empty() && !s.is_capacity_search() => {
            return bad("load.users", "required (or give [[stage]]s with users)");
        }
        _ => {}
    }
    if let Some(rate) = s.load.spawn_rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return bad(
            "load.spawn_rate",
            "must be a positive number of users per second",
        );
    }
    if let Wait::Between { min, max } = s.load.wait
        && min > max
    {
        return bad("load.wait", "min must not exceed max");
    }
    Ok(())
}

fn validate_duration(s: &Scenario) -> Result<(), Invalid> {
    for (i, stage) in s.stages.iter().enumerate() {
        if stage.duration.is_zero() {
            return bad(format!("stage[{i}].duration"), "must be greater than zero");
        }
        if stage.users.is_none() {
            return bad(format!("stage[{i}].users"), "required");
        }
    }
    match s.run_time {
        Some(t) if t.is_zero() => bad("run_time", "must be greater than zero"),
        // A capacity search ends by itself; run_time, when given, caps it.
        None if s.stages.is_empty() && !s.is_capacity_search() => {
            bad("run_time", "required when there are no stages")
        }
        _ => Ok(()),
    }
}
