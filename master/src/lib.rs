//! The stampede master: loads a scenario, admits workers over gRPC, ramps users across them,
//! merges their interval histograms exactly, shows the run and writes the JSON summary.
//!
//! # Map
//!
//! | folder | what lives there | may import |
//! | --- | --- | --- |
//! | [`app`] | the binary's edge: command line, carrying out a run and its outputs, the demo, local workers, signals, logs, exit codes | everything |
//! | `run` | one run: the controller loop, the fleet of workers, the pacing (plan, ramps, capacity search), dispatch, the views' snapshots | `journal`, `stats`, `wire`, `view`, `outcome`, `scenario` |
//! | `journal` | the run's journal: framed, checksummed records of what was counted, written before acknowledging, replayed by `recover` and `--resume` | `stats`, `outcome`, `scenario` |
//! | [`wire`] | the gRPC service: admission (token, TLS), worker streams as events, report decoding | `stats` |
//! | [`stats`] | counting: tallies, report histograms, the exact aggregator and its series | `outcome`, `scenario` |
//! | `view` | live views of one snapshot: terminal UI, headless printer, Prometheus metrics | `outcome`, `scenario` |
//! | [`report`] | files from a summary: HTML, Locust CSV, HdrHistogram logs, the verdict in words | `outcome`, `scenario` |
//! | [`outcome`] | the `stampede.summary.v1` schema in one place, and what is judged on it alone (thresholds, cost, comparison, confidence intervals by batch means, the diff of two summaries for `compare`) | `scenario` |
//! | [`scenario`] | the scenario file: model, layered loading, validation, threshold grammar, load plan, compilation for workers, `check`'s description | nothing |
//!
//! Imports run one way, down this table: views and reports read snapshots and summaries,
//! never the controller; the summary's types are defined once, in `outcome`.
#![forbid(unsafe_code)]

pub mod app;
mod journal;
pub mod outcome;
pub mod report;
mod run;
pub mod scenario;
pub mod stats;
mod view;
pub mod wire;
