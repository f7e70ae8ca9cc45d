//! The scenario: the TOML file as typed serde structs (`model`), loaded in layers (`load`),
//! checked (`validate`, and `capacity`, `cost` for their sections), parsed once into what the
//! run uses ([`Scenario`]: the load model, the plan of stages, the thresholds), compiled into
//! the `RunConfig` workers receive (`compile`) and described for `check` (`describe`).
//!
//! The bottom layer: it imports nothing else of the crate, and everything may read it. Nothing
//! downstream parses a string of the scenario again.

mod capacity;
mod compile;
mod cost;
mod describe;
mod invalid;
mod load;
mod model;
mod names;
mod plan;
mod target;
mod threshold;
mod tls;
mod valid_load;
mod validate;
mod wait;

pub use capacity::{After, CapacitySpec};
pub use compile::{compile, redacted, shown_header};
pub use cost::{ArchPrice, CostSpec};
pub use describe::describe;
pub use load::{ScenarioError, load, parse};
pub use model::*;
pub use plan::{Plan, Step, StepKind};
pub use target::warnings;
pub use threshold::{Metric, Op, Scope, Threshold, parse_op, parse_scope};
pub use tls::{HttpVersion, Pem, TargetTls};
pub use valid_load::{DEFAULT_LIMIT, Limit, ValidLoad};

use invalid::Invalid;

/// The scenario as the run uses it: the file's settings, and what was parsed out of them once.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file as written and layered (file, environment, flags); outputs show it redacted.
    pub file: ScenarioFile,
    /// The load model that applies, with its settings.
    pub load: Load,
    /// The stages as steps of levels (users or req/s).
    pub plan: Plan,
    /// `[thresholds]`, parsed, in key order.
    pub thresholds: Vec<Threshold>,
    /// Each arch's 5XX limit of valid load, from the thresholds.
    pub valid_load: ValidLoad,
    /// The capacity search, when this run is one (instead of the plan).
    pub capacity: Option<CapacitySpec>,
}

/// The load model of a run, with the settings of that model only.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// Users that wait for each answer (Locust's model).
    Closed {
        /// Total users without stages.
        users: Option<u32>,
        /// Users started or stopped per second, globally; `None`: at once.
        spawn_rate: Option<f64>,
        wait: Wait,
    },
    /// An arrival rate, whatever the servers do (wrk2's and k6's).
    Open {
        /// Total arrivals per second without stages.
        rate: Option<f64>,
        arrivals: Arrivals,
        /// Requests outstanding at once per worker; arrivals beyond are dropped and counted.
        max_in_flight: u32,
    },
}

impl Load {
    fn of(l: &LoadSection) -> Load {
        match l.model {
            Model::Closed => Load::Closed {
                users: l.users,
                spawn_rate: l.spawn_rate,
                wait: l.wait.clone().unwrap_or_default(),
            },
            Model::Open => Load::Open {
                rate: l.rate,
                arrivals: l.arrivals.unwrap_or_default(),
                max_in_flight: l.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT),
            },
        }
    }

    pub fn model(&self) -> Model {
        match self {
            Load::Closed { .. } => Model::Closed,
            Load::Open { .. } => Model::Open,
        }
    }

    /// How fast levels may move, per second: the spawn rate of the closed model; rates jump.
    pub fn spawn_rate(&self) -> Option<f64> {
        match self {
            Load::Closed { spawn_rate, .. } => *spawn_rate,
            Load::Open { .. } => None,
        }
    }
}

impl Scenario {
    /// The scenario a file (as a summary or a journal keeps it) describes; errors name the key.
    pub fn from_file(file: ScenarioFile) -> Result<Scenario, Invalid> {
        validate::validate(&file)?;
        Scenario::parse(file)
    }

    /// Parses what the run uses out of a validated file; errors name the key.
    fn parse(file: ScenarioFile) -> Result<Scenario, Invalid> {
        let thresholds = file
            .thresholds
            .iter()
            .map(|(key, spec)| {
                Threshold::parse(key, spec).map_err(|e| (format!("thresholds.\"{key}\""), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scenario {
            load: Load::of(&file.load),
            plan: Plan::of(&file),
            valid_load: ValidLoad::of(&thresholds),
            thresholds,
            capacity: file.capacity.clone().filter(|c| c.enabled),
            file,
        })
    }

    pub fn name(&self) -> &str {
        &self.file.name
    }

    pub fn targets(&self) -> &[Target] {
        &self.file.targets
    }

    pub fn model(&self) -> Model {
        self.load.model()
    }

    /// Whether this run searches capacity instead of following its plan.
    pub fn is_capacity_search(&self) -> bool {
        self.capacity.is_some()
    }
}
