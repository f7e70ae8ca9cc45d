//! Scenario files: typed model, layered loading, validation, and compilation to the
//! [`RunConfig`](stampede_proto::RunConfig) that workers receive.

mod compile;
mod load;
mod model;
mod validate;

pub use compile::{compile, redacted, shown_header};
pub use load::{ScenarioError, load, parse};
pub use model::*;
