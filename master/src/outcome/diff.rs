//! Two summaries compared (`stampede-master compare BASE CANDIDATE`): per arch and per target,
//! throughput, latency percentiles, 5XX ratio, the capacity knee and the cost per million
//! requests, each with the change, its 95% interval from both runs' batch means (the runs are
//! independent: Welch) and whether it is significant; and the `--fail-on` rules judged on them.
//! Summaries of different schemas, or whose arches or targets differ, are refused unless a
//! mapping says which is which.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::batch::{self, Interval};
use super::confidence::{self, ArchBatches, Batches, Window};
use super::rule::{Rule, RuleOutcome};
use super::summary::{Results, Summary};

/// A change with its interval and the two window means it is between.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Windowed {
    ci: Interval,
    base: f64,
    candidate: f64,
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// The relative change between two runs' batch means.
fn relative_change(b: &[f64], c: &[f64]) -> Option<Windowed> {
    Some(Windowed {
        ci: batch::change_interval(b, c)?,
        base: mean(b),
        candidate: mean(c),
    })
}

/// The change in points between two runs' batch means of a ratio.
fn points_change(b: &[f64], c: &[f64]) -> Option<Windowed> {
    Some(Windowed {
        ci: batch::shift_interval(b, c)?,
        base: mean(b),
        candidate: mean(c),
    })
}

/// Why two summaries cannot be compared.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DiffError {
    #[error(
        "the summaries have different schemas (base `{base}`, candidate `{candidate}`): only \
         summaries of one schema compare"
    )]
    Schema { base: String, candidate: String },
    #[error(
        "the {what} do not match: the base has {base}, the candidate {candidate}; say which is \
         which with --map BASE=CANDIDATE (e.g. --map arm64=graviton4)"
    )]
    Mismatch {
        what: &'static str,
        base: String,
        candidate: String,
    },
    #[error("--map `{0}`")]
    Map(String),
    #[error("{0}")]
    Rule(String),
}

/// `--map BASE=CANDIDATE` values as a mapping from the base's names to the candidate's.
pub fn parse_map(values: &[String]) -> Result<BTreeMap<String, String>, DiffError> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((b, c)) if !b.trim().is_empty() && !c.trim().is_empty() => {
                Ok((b.trim().to_owned(), c.trim().to_owned()))
            }
            _ => Err(DiffError::Map(format!(
                "{v}: expected BASE=CANDIDATE, e.g. arm64=graviton4"
            ))),
        })
        .collect()
}

/// One run, as the comparison names it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRef {
    pub run_id: String,
    pub name: String,
    /// The steady window its batch means come from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

/// How a row's change is counted.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// candidate / base − 1.
    Relative,
    /// candidate − base, for figures that are ratios themselves (percentage points).
    Points,
}

/// One figure of one arch or target in both runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DiffRow {
    /// `arch` or `target`.
    pub kind: String,
    /// Its name in the base run, and in the candidate (the same unless mapped).
    pub name: String,
    pub candidate_name: String,
    pub metric: String,
    pub unit: String,
    /// The figures compared: the means over each run's steady window when there is an
    /// interval (per-interval percentiles averaged), else the whole-run figures.
    pub base: f64,
    pub candidate: f64,
    /// The whole-run figures, as each summary states them.
    pub base_run: f64,
    pub candidate_run: f64,
    pub change_kind: Change,
    pub change: Option<f64>,
    /// 95% interval of the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<Interval>,
    /// Whether the interval leaves out no change; `None` without an interval.
    pub significant: Option<bool>,
}

/// The comparison of two runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diff {
    pub base: RunRef,
    pub candidate: RunRef,
    pub method: String,
    pub rows: Vec<DiffRow>,
    pub rules: Vec<RuleOutcome>,
    /// What could not be judged, and why.
    pub notes: Vec<String>,
}

impl Diff {
    /// The rules that found a significant regression.
    pub fn fired(&self) -> Vec<&RuleOutcome> {
        self.rules.iter().filter(|r| r.fired).collect()
    }
}

fn names<T>(m: &BTreeMap<String, T>) -> BTreeSet<String> {
    m.keys().cloned().collect()
}

fn listed(s: &BTreeSet<String>) -> String {
    let v: Vec<&str> = s.iter().map(String::as_str).collect();
    format!("[{}]", v.join(", "))
}

/// Checks that `base`'s names, mapped, are `candidate`'s.
fn matching(
    what: &'static str,
    base: BTreeSet<String>,
    candidate: BTreeSet<String>,
    map: &BTreeMap<String, String>,
) -> Result<(), DiffError> {
    let mapped: BTreeSet<String> = base
        .iter()
        .map(|n| map.get(n).unwrap_or(n).clone())
        .collect();
    if mapped == candidate {
        return Ok(());
    }
    let base = if mapped == base {
        listed(&base)
    } else {
        format!("{} (mapped: {})", listed(&base), listed(&mapped))
    };
    Err(DiffError::Mismatch {
        what,
        base,
        candidate: listed(&candidate),
    })
}

/// Compares `candidate` against `base`; `map` takes base names (arches or targets) to the
/// candidate's, and the rules are judged on the rows.
pub fn diff(
    base: &Summary,
    candidate: &Summary,
    map: &BTreeMap<String, String>,
    rules: &[Rule],
) -> Result<Diff, DiffError> {
    if base.schema != candidate.schema {
        return Err(DiffError::Schema {
            base: base.schema.clone(),
            candidate: candidate.schema.clone(),
        });
    }
    for from in map.keys() {
        if !base.by_arch.contains_key(from) && !base.by_target.contains_key(from) {
            return Err(DiffError::Map(format!(
                "{from}=…: the base has no arch or target `{from}` (arches {}, targets {})",
                listed(&names(&base.by_arch)),
                listed(&names(&base.by_target))
            )));
        }
    }
    matching(
        "arches",
        names(&base.by_arch),
        names(&candidate.by_arch),
        map,
    )?;
    matching(
        "targets",
        names(&base.by_target),
        names(&candidate.by_target),
        map,
    )?;
    let mut notes = Vec::new();
    let batches = |s: &Summary, which: &str, notes: &mut Vec<String>| match confidence::batches(s) {
        Ok(b) => Some(b),
        Err(why) => {
            notes.push(format!("{which} ({}): no interval: {why}", s.run_id));
            None
        }
    };
    let bb = batches(base, "base", &mut notes);
    let cb = batches(candidate, "candidate", &mut notes);
    let mut rows = Vec::new();
    for (arch, b) in &base.by_arch {
        let c_arch = map.get(arch).unwrap_or(arch);
        let Some(c) = candidate.by_arch.get(c_arch) else {
            continue;
        };
        let pair = (
            bb.as_ref().and_then(|x| x.by_arch.get(arch)),
            cb.as_ref().and_then(|x| x.by_arch.get(c_arch)),
        );
        let mut row = Rows::new("arch", arch, c_arch, &mut rows);
        results_rows(&mut row, b, c, pair);
        let knee = |s: &Summary, a: &str| s.capacity.as_ref()?.by_arch.get(a)?.max_sustainable_rps;
        if let (Some(kb), Some(kc)) = (knee(base, arch), knee(candidate, c_arch)) {
            row.relative("knee", "req/s", kb, kc, None);
        }
        let cost = |s: &Summary, a: &str| s.cost.as_ref()?.by_arch.get(a)?.cost_per_million;
        if let (Some(pb), Some(pc)) = (cost(base, arch), cost(candidate, c_arch)) {
            row.relative("cost_per_million", "$", pb, pc, None);
        }
    }
    for (target, b) in &base.by_target {
        let c_target = map.get(target).unwrap_or(target);
        let Some(c) = candidate.by_target.get(c_target) else {
            continue;
        };
        let per =
            |x: &Option<Batches>, t: &str| x.as_ref().and_then(|x| x.by_target.get(t).cloned());
        let ci = match (per(&bb, target), per(&cb, c_target)) {
            (Some(b), Some(c)) => relative_change(&b, &c),
            _ => None,
        };
        let mut row = Rows::new("target", target, c_target, &mut rows);
        row.relative("rps", "req/s", b.results.rps, c.results.rps, ci);
        latency_rows(&mut row, &b.results, &c.results, None);
        row.points("5xx_ratio", b.results.ratio_5xx, c.results.ratio_5xx, None);
    }
    let rules = judge(rules, &rows)?;
    Ok(Diff {
        base: run_ref(base, bb),
        candidate: run_ref(candidate, cb),
        method: format!(
            "figures with an interval: means over each run's steady window (per-interval \
             percentiles averaged), {:.0}% intervals of the change from both runs' batch means \
             (Welch; relative changes on the log scale); figures without: whole-run",
            batch::LEVEL * 100.0
        ),
        rows,
        rules,
        notes,
    })
}

fn run_ref(s: &Summary, b: Option<Batches>) -> RunRef {
    RunRef {
        run_id: s.run_id.clone(),
        name: s.name.clone(),
        window: b.map(|b| b.window),
    }
}

/// An arch's figures: throughput, latency, 5XX, with intervals where both runs have batches.
fn results_rows(
    row: &mut Rows,
    b: &Results,
    c: &Results,
    batches: (Option<&ArchBatches>, Option<&ArchBatches>),
) {
    let (Some(bb), Some(cb)) = batches else {
        row.relative("rps", "req/s", b.rps, c.rps, None);
        latency_rows(row, b, c, None);
        row.points("5xx_ratio", b.ratio_5xx, c.ratio_5xx, None);
        return;
    };
    let change = |x: &Option<Vec<f64>>, y: &Option<Vec<f64>>| match (x, y) {
        (Some(x), Some(y)) => relative_change(x, y),
        _ => None,
    };
    row.relative(
        "rps",
        "req/s",
        b.rps,
        c.rps,
        relative_change(&bb.rps, &cb.rps),
    );
    latency_rows(
        row,
        b,
        c,
        Some([
            change(&bb.p50, &cb.p50),
            change(&bb.p95, &cb.p95),
            change(&bb.p99, &cb.p99),
        ]),
    );
    let ci = points_change(&bb.ratio_5xx(), &cb.ratio_5xx());
    row.points("5xx_ratio", b.ratio_5xx, c.ratio_5xx, ci);
}

/// Latency percentiles; p50, p95 and p99 have per-interval figures, so intervals.
fn latency_rows(row: &mut Rows, b: &Results, c: &Results, ci: Option<[Option<Windowed>; 3]>) {
    let [p50, p95, p99] = ci.unwrap_or_default();
    let (lb, lc) = (&b.latency_ms, &c.latency_ms);
    if b.requests == 0 || c.requests == 0 {
        return;
    }
    row.relative("mean", "ms", lb.mean, lc.mean, None);
    row.relative("p50", "ms", lb.p50, lc.p50, p50);
    row.relative("p90", "ms", lb.p90, lc.p90, None);
    row.relative("p95", "ms", lb.p95, lc.p95, p95);
    row.relative("p99", "ms", lb.p99, lc.p99, p99);
    row.relative("p999", "ms", lb.p999, lc.p999, None);
}

/// Rows of one arch or target as they are added.
struct Rows<'a> {
    kind: &'static str,
    name: String,
    candidate_name: String,
    out: &'a mut Vec<DiffRow>,
}

impl<'a> Rows<'a> {
    fn new(kind: &'static str, name: &str, candidate: &str, out: &'a mut Vec<DiffRow>) -> Self {
        Rows {
            kind,
            name: name.to_owned(),
            candidate_name: candidate.to_owned(),
            out,
        }
    }

    fn push(
        &mut self,
        metric: &str,
        unit: &str,
        values: (f64, f64),
        kind: Change,
        change: Option<f64>,
        windowed: Option<Windowed>,
    ) {
        let ci = windowed.map(|w| w.ci);
        self.out.push(DiffRow {
            kind: self.kind.to_owned(),
            name: self.name.clone(),
            candidate_name: self.candidate_name.clone(),
            metric: metric.to_owned(),
            unit: unit.to_owned(),
            base: windowed.map_or(values.0, |w| w.base),
            candidate: windowed.map_or(values.1, |w| w.candidate),
            base_run: values.0,
            candidate_run: values.1,
            change_kind: kind,
            change: ci.map(|i| i.estimate).or(change),
            ci,
            significant: ci.map(|i| !i.covers(0.0)),
        });
    }

    fn relative(&mut self, metric: &str, unit: &str, b: f64, c: f64, ci: Option<Windowed>) {
        let change = (b > 0.0).then(|| c / b - 1.0);
        self.push(metric, unit, (b, c), Change::Relative, change, ci);
    }

    fn points(&mut self, metric: &str, b: f64, c: f64, ci: Option<Windowed>) {
        self.push(metric, "%", (b, c), Change::Points, Some(c - b), ci);
    }
}

/// "+12.3%" for a relative change, "+0.50 pt" for one in points.
pub fn change_text(kind: Change, v: f64) -> String {
    match kind {
        Change::Relative => format!("{:+.1}%", v * 100.0),
        Change::Points => format!("{:+.2} pt", v * 100.0),
    }
}

/// Each rule against the rows it names; a rule that names no row is an error (a typo must not
/// pass silently).
fn judge(rules: &[Rule], rows: &[DiffRow]) -> Result<Vec<RuleOutcome>, DiffError> {
    rules
        .iter()
        .map(|rule| {
            let named: Vec<&DiffRow> = rows
                .iter()
                .filter(|r| rule.applies(&r.kind, [&r.name, &r.candidate_name], &r.metric))
                .collect();
            if named.is_empty() {
                return Err(DiffError::Rule(format!(
                    "--fail-on `{}`: no row of the comparison has that figure in that scope",
                    rule.text
                )));
            }
            let mut detail = Vec::new();
            for r in named {
                let Some(change) = r.change else { continue };
                if !rule.op.holds(change, rule.bound) || r.significant == Some(false) {
                    continue;
                }
                let why = match r.ci {
                    Some(i) => format!(
                        "95% CI {} to {}",
                        change_text(r.change_kind, i.lo),
                        change_text(r.change_kind, i.hi)
                    ),
                    None => "no interval: judged on the change alone".to_owned(),
                };
                detail.push(format!(
                    "{}:{} {} {} ({why})",
                    r.kind,
                    r.name,
                    r.metric,
                    change_text(r.change_kind, change)
                ));
            }
            Ok(RuleOutcome {
                rule: rule.text.clone(),
                fired: !detail.is_empty(),
                detail,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
