//! The stampede master: loads a scenario, admits workers over gRPC, ramps users across them,
//! merges their interval histograms exactly, shows the run and writes the JSON summary.
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod auth;
pub mod capacity;
pub mod check;
pub mod cli;
pub mod command;
pub mod controller;
pub mod cost;
pub mod decode;
pub mod demo;
pub mod dispatch;
pub mod hdr64;
pub mod headless;
pub mod latencies;
pub mod local;
pub mod metrics;
pub mod plan;
pub mod registry;
pub mod report;
pub mod scenario;
pub mod server;
pub mod shutdown;
pub mod snapshot;
pub mod summary;
pub mod tally;
pub mod thresholds;
pub mod tls;
pub mod tui;
pub mod valid_load;
pub mod view;
