//! Scenario files: typed model, layered loading, validation, and compilation to the
//! [`RunConfig`](stampede_proto::RunConfig) that workers receive.

mod capacity;
mod compile;
mod cost;
mod load;
mod model;
mod tls;
mod validate;

pub use capacity::{After, CapacitySpec};
pub use compile::{compile, redacted, shown_header};
pub use cost::{ArchPrice, CostSpec};
pub use load::{ScenarioError, load, parse};
pub use model::*;
pub use tls::{HttpVersion, Pem, TargetTls, warnings};
