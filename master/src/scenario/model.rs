//! The scenario file as typed serde structs. Every struct denies unknown keys, so a typo is an
//! error that names the key instead of a silently ignored setting.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One scenario file, resolved (file, then environment, then flags).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Run name, shown in outputs.
    pub name: String,
    /// Total run time; optional when stages are given.
    #[serde(default, with = "humantime_serde")]
    pub run_time: Option<Duration>,
    /// How often workers report.
    #[serde(default = "default_report_interval", with = "humantime_serde")]
    pub report_interval: Duration,
    /// Response header naming the arch that served a request.
    #[serde(default = "default_arch_header")]
    pub arch_header: String,
    /// How long in-flight requests may take to finish once the run stops.
    #[serde(default = "default_stop_timeout", with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// The fleets under test.
    #[serde(rename = "target", default)]
    pub targets: Vec<Target>,
    /// What each user does, picked by weight.
    #[serde(rename = "request", default)]
    pub requests: Vec<Request>,
    /// The load model.
    pub load: Load,
    /// Optional ramp profile.
    #[serde(rename = "stage", default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
    /// k6-style thresholds: `"[scope/]metric" = "op value"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, String>,
    /// Output paths.
    #[serde(default)]
    pub output: Output,
    /// SLO-driven capacity search per arch (instead of the plan's levels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<super::CapacitySpec>,
    /// Fleet prices, for cost per request and nodes needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<super::CostSpec>,
}

fn default_report_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_arch_header() -> String {
    "x-arch".to_owned()
}

fn default_stop_timeout() -> Duration {
    Duration::from_secs(10)
}

/// One fleet: a base URL and the arch it is declared to run on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    pub url: String,
    pub arch: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// One kind of request a user makes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Expected statuses; empty means "any status below 400".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<u16>,
}

fn default_method() -> String {
    "GET".to_owned()
}

fn default_path() -> String {
    "/".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Closed (users) or open (arrival rate) load.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    #[default]
    Closed,
    Open,
}

/// How users hold connections.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    /// Each user keeps its own keep-alive connection (real users).
    #[default]
    PerUser,
    /// Users share a pool of connections.
    Shared,
    /// A new connection for every request.
    Close,
}

/// `[load]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default)]
    pub model: Model,
    /// Total users across workers and targets (closed model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    /// Users started per second, globally; absent means all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_rate: Option<f64>,
    /// Think time between a user's requests.
    #[serde(default)]
    pub wait: Wait,
    #[serde(default)]
    pub connection: Connection,
}

/// Think time. `{ kind = "between", min = "500ms", max = "1500ms" }`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Wait {
    /// No think time.
    #[default]
    None,
    /// The same wait every time.
    Constant {
        #[serde(with = "humantime_serde")]
        duration: Duration,
    },
    /// Uniform between `min` and `max`.
    Between {
        #[serde(with = "humantime_serde")]
        min: Duration,
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
}

/// One stage of a ramp profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
}

/// `[output]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Where the JSON summary goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<std::path::PathBuf>,
    /// Where the HTML report goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<std::path::PathBuf>,
    /// Prefix of the Locust-format CSV files and the HdrHistogram interval logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<std::path::PathBuf>,
}
