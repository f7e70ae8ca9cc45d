//! Dispatch as pure functions: how many users (or requests per second) each worker runs
//! against each target, how a `requests` stage's count is shared out, and how the global user
//! level moves toward its goal at the spawn rate.

use serde::{Deserialize, Serialize};
use stampede_proto as pb;

use crate::scenario::Model;

/// Splits `total` over `weights` by largest remainder: the result sums to `total` and each
/// share is within one of its exact proportion. Zero weights get nothing.
pub fn split_weighted(total: u32, weights: &[u32]) -> Vec<u32> {
    let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(u64, u64)> = weights
        .iter()
        .map(|&w| {
            let num = u64::from(total) * u64::from(w);
            (num / sum, num % sum)
        })
        .collect();
    let mut shares: Vec<u32> = exact.iter().map(|&(q, _)| q as u32).collect();
    let given: u32 = shares.iter().sum();
    // Hand the rest out by largest remainder; ties go to the earlier entry.
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for &i in order.iter().take((total - given) as usize) {
        shares[i] += 1;
    }
    shares
}

/// Users per worker per target: `result[worker][target]`.
///
/// Each target gets its weighted share of `total`; each target's users are spread evenly over
/// the workers, and the odd users are handed out round-robin across targets, so that every
/// worker's total is within one of every other's.
pub fn assign(total: u32, target_weights: &[u32], workers: usize) -> Vec<Vec<u32>> {
    spread(&split_weighted(total, target_weights), workers)
}

/// Users per worker per target, `result[worker][target]`, for given users per target: each
/// target's users spread evenly over the workers, the odd ones round-robin across targets.
pub fn spread(per_target: &[u32], workers: usize) -> Vec<Vec<u32>> {
    let mut out = vec![vec![0u32; per_target.len()]; workers];
    if workers == 0 {
        return out;
    }
    let n = workers as u32;
    let mut next = 0usize;
    for (t, &users) in per_target.iter().enumerate() {
        for row in out.iter_mut() {
            row[t] = users / n;
        }
        for _ in 0..users % n {
            out[next % workers][t] += 1;
            next += 1;
        }
    }
    out
}

/// Splits `total` over non-negative real `weights` by largest remainder: the result sums to
/// `total` (when some weight is positive) and each share is within one of its exact proportion.
pub fn split_by(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    if sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights
        .iter()
        .map(|&w| {
            if w.is_finite() && w > 0.0 {
                total as f64 * w / sum
            } else {
                0.0
            }
        })
        .collect();
    let mut shares: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let given: u64 = shares.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| exact[i] > 0.0).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    // Floating-point floors can fall short by more than the number of cells only in theory;
    // cycling keeps the sum exact regardless.
    let mut rest = total.saturating_sub(given);
    while rest > 0 && !order.is_empty() {
        for &i in &order {
            if rest == 0 {
                break;
            }
            shares[i] += 1;
            rest -= 1;
        }
    }
    shares
}

/// Requests per second per worker per target: `total` split by target weight, then evenly
/// over the workers (rates are real numbers, so the split is exact).
pub fn assign_rate(total: f64, target_weights: &[u32], workers: usize) -> Vec<Vec<f64>> {
    let sum: f64 = target_weights.iter().map(|&w| f64::from(w)).sum();
    let row: Vec<f64> = target_weights
        .iter()
        .map(|&w| {
            if sum > 0.0 && workers > 0 {
                total.max(0.0) * f64::from(w) / sum / workers as f64
            } else {
                0.0
            }
        })
        .collect();
    vec![row; workers]
}

/// The level of every (worker, target) cell: users (closed) or requests per second (open).
pub fn levels(model: Model, level: f64, target_weights: &[u32], workers: usize) -> Vec<Vec<f64>> {
    match model {
        Model::Closed => {
            let users = level.max(0.0).round().min(f64::from(u32::MAX)) as u32;
            assign(users, target_weights, workers)
                .into_iter()
                .map(|row| row.into_iter().map(f64::from).collect())
                .collect()
        }
        Model::Open => assign_rate(level, target_weights, workers),
    }
}

/// A `requests` stage's count shared out when the stage starts: per worker (those running
/// then) and target, in proportion to each cell's level at the stage's goal, so every share
/// has someone to send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quotas {
    pub stage: usize,
    pub workers: Vec<String>,
    /// `shares[worker][target]`.
    pub shares: Vec<Vec<u64>>,
}

impl Quotas {
    pub fn new(
        stage: usize,
        count: u64,
        model: Model,
        goal: f64,
        target_weights: &[u32],
        workers: Vec<String>,
    ) -> Quotas {
        let cells = levels(model, goal, target_weights, workers.len());
        let flat: Vec<f64> = cells.iter().flatten().copied().collect();
        let split = split_by(count, &flat);
        let targets = target_weights.len().max(1);
        let shares = split.chunks(targets).map(<[u64]>::to_vec).collect();
        Quotas {
            stage,
            workers,
            shares,
        }
    }

    /// This worker's shares, if it took part when the stage started.
    pub fn of(&self, worker: &str) -> Option<&[u64]> {
        let i = self.workers.iter().position(|w| w == worker)?;
        self.shares.get(i).map(Vec::as_slice)
    }
}

/// The absolute load of every running worker, in `running` order. `level` is the global level
/// due now (users already held to the spawn rate, or requests per second). In a `requests`
/// stage the workers that took part at its start share the level and carry their quota; others
/// get nothing until the next stage.
pub fn loads(
    model: Model,
    level: f64,
    target_weights: &[u32],
    running: &[String],
    quotas: Option<&Quotas>,
) -> Vec<Vec<pb::TargetLoad>> {
    let cell = |t: usize, level: f64, quota: Option<u64>| pb::TargetLoad {
        target: t as u32,
        users: match model {
            Model::Closed => level as u32,
            Model::Open => 0,
        },
        rate: match model {
            Model::Closed => 0.0,
            Model::Open => level,
        },
        requests: quota.unwrap_or(0),
        counted: quota.is_some(),
    };
    let Some(q) = quotas else {
        return levels(model, level, target_weights, running.len())
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .enumerate()
                    .map(|(t, l)| cell(t, l, None))
                    .collect()
            })
            .collect();
    };
    let grid = levels(model, level, target_weights, q.workers.len());
    running
        .iter()
        .map(|id| {
            let at = q.workers.iter().position(|w| w == id);
            (0..target_weights.len())
                .map(|t| match at {
                    Some(i) => cell(t, grid[i][t], Some(q.shares[i][t])),
                    None => cell(t, 0.0, Some(0)),
                })
                .collect()
        })
        .collect()
}

/// Per-target levels (a capacity search's) shared out over `workers`: users spread evenly
/// (the odd ones round-robin), or each target's rate split evenly.
pub fn spread_levels(model: Model, per_target: &[f64], workers: usize) -> Vec<Vec<pb::TargetLoad>> {
    let cell = |t: usize, users: u32, rate: f64| pb::TargetLoad {
        target: t as u32,
        users,
        rate,
        ..Default::default()
    };
    match model {
        Model::Closed => {
            let users: Vec<u32> = per_target
                .iter()
                .map(|&l| l.max(0.0).round().min(f64::from(u32::MAX)) as u32)
                .collect();
            spread(&users, workers)
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .enumerate()
                        .map(|(t, u)| cell(t, u, 0.0))
                        .collect()
                })
                .collect()
        }
        Model::Open => {
            let n = workers.max(1) as f64;
            let row: Vec<pb::TargetLoad> = per_target
                .iter()
                .enumerate()
                .map(|(t, &r)| cell(t, 0, r.max(0.0) / n))
                .collect();
            vec![row; workers]
        }
    }
}

/// The global user level on its way to a goal, moving at most `spawn_rate` users per second
/// (up or down); without a spawn rate it jumps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ramp {
    level: f64,
    spawn_rate: Option<f64>,
}

impl Ramp {
    pub fn new(spawn_rate: Option<f64>) -> Self {
        Ramp {
            level: 0.0,
            spawn_rate,
        }
    }

    /// Advances by `dt_s` seconds toward `goal` and returns the whole number of users now due.
    pub fn advance(&mut self, goal: f64, dt_s: f64) -> u32 {
        self.level = match self.spawn_rate {
            None => goal,
            Some(rate) => {
                let step = rate * dt_s.max(0.0);
                if self.level < goal {
                    (self.level + step).min(goal)
                } else {
                    (self.level - step).max(goal)
                }
            }
        };
        self.users()
    }

    /// `users` stopped running (their worker was lost): the level drops by as much, so that
    /// handing them to other workers climbs back at the spawn rate. Without one it jumps back.
    pub fn shed(&mut self, users: u32) {
        if self.spawn_rate.is_some() {
            self.level = (self.level - f64::from(users)).max(0.0);
        }
    }

    /// Back to zero (the workers' users are gone), to climb again at the spawn rate.
    pub fn reset(&mut self) {
        self.level = 0.0;
    }

    /// Users due now: rounded down while climbing so the spawn rate is never exceeded, with a
    /// small tolerance for floating-point drift.
    pub fn users(&self) -> u32 {
        (self.level + 1e-9).floor().max(0.0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_split_sums_and_is_proportional() {
        assert_eq!(split_weighted(10, &[1, 1]), vec![5, 5]);
        assert_eq!(split_weighted(11, &[1, 1]), vec![6, 5]);
        assert_eq!(split_weighted(10, &[3, 1]), vec![8, 2]);
        assert_eq!(split_weighted(7, &[0, 2, 5]), vec![0, 2, 5]);
        assert_eq!(split_weighted(5, &[0, 0]), vec![0, 0]);
        for total in 0..200 {
            let s = split_weighted(total, &[3, 5, 7]);
            assert_eq!(s.iter().sum::<u32>(), total);
            for (share, w) in s.iter().zip([3.0, 5.0, 7.0]) {
                let exact = f64::from(total) * w / 15.0;
                assert!((f64::from(*share) - exact).abs() < 1.0, "{total}: {s:?}");
            }
        }
    }

    #[test]
    fn assignment_is_balanced_across_workers_and_exact_per_target() {
        for total in 0..60 {
            for workers in 1..6 {
                let a = assign(total, &[1, 1], workers);
                let per_target: Vec<u32> =
                    (0..2).map(|t| a.iter().map(|row| row[t]).sum()).collect();
                assert_eq!(per_target, split_weighted(total, &[1, 1]));
                let per_worker: Vec<u32> = a.iter().map(|row| row.iter().sum()).collect();
                let (min, max) = (per_worker.iter().min(), per_worker.iter().max());
                assert!(max.unwrap() - min.unwrap() <= 1, "{total}/{workers}: {a:?}");
            }
        }
        assert_eq!(assign(3, &[1, 1], 2), vec![vec![1, 1], vec![1, 0]]);
        assert_eq!(spread(&[3, 0, 2], 2), vec![vec![2, 0, 1], vec![1, 0, 1]]);
        assert!(assign(5, &[1], 0).is_empty());
    }

    #[test]
    fn real_weighted_split_is_exact_and_proportional() {
        assert_eq!(split_by(10, &[1.0, 1.0]), vec![5, 5]);
        assert_eq!(
            split_by(1000, &[2.5, 2.5, 0.0, 5.0]),
            vec![250, 250, 0, 500]
        );
        assert_eq!(split_by(3, &[0.0, 0.0]), vec![0, 0]);
        assert_eq!(split_by(7, &[1.0, f64::NAN, 1.0]), vec![4, 0, 3]);
        for total in [0, 1, 7, 999, 1_000_003] {
            let w = [0.3, 1.7, 2.2, 0.0, 5.9];
            let s = split_by(total, &w);
            assert_eq!(s.iter().sum::<u64>(), total);
            for (share, w) in s.iter().zip(w) {
                let exact = total as f64 * w / 10.1;
                assert!((*share as f64 - exact).abs() < 1.0, "{total}: {s:?}");
            }
        }
    }

    #[test]
    fn rates_split_by_weight_then_evenly() {
        let r = assign_rate(400.0, &[1, 3], 2);
        assert_eq!(r, vec![vec![50.0, 150.0], vec![50.0, 150.0]]);
        assert!(assign_rate(10.0, &[1], 0).is_empty());
    }

    #[test]
    fn quotas_follow_the_goal_levels_and_sum_to_the_count() {
        let workers = vec!["w1".to_owned(), "w2".to_owned()];
        // 3 users over 2 targets and 2 workers: [[1, 1], [1, 0]].
        let q = Quotas::new(2, 1000, Model::Closed, 3.0, &[1, 1], workers.clone());
        assert_eq!(q.shares, vec![vec![334, 333], vec![333, 0]]);
        assert_eq!(q.shares.iter().flatten().sum::<u64>(), 1000);
        let q = Quotas::new(2, 1001, Model::Open, 100.0, &[1, 3], workers);
        assert_eq!(q.shares.iter().flatten().sum::<u64>(), 1001);
        assert_eq!(q.of("w2").unwrap().iter().sum::<u64>(), 500);
        assert!(q.of("w3").is_none());
    }

    #[test]
    fn loads_carry_quotas_and_newcomers_wait() {
        let workers = vec!["w1".to_owned(), "w2".to_owned()];
        let q = Quotas::new(1, 10, Model::Closed, 4.0, &[1], workers);
        let running = vec!["w2".to_owned(), "w3".to_owned()];
        let l = loads(Model::Closed, 4.0, &[1], &running, Some(&q));
        assert_eq!(
            (l[0][0].users, l[0][0].requests, l[0][0].counted),
            (2, 5, true)
        );
        assert_eq!(
            (l[1][0].users, l[1][0].requests, l[1][0].counted),
            (0, 0, true)
        );
        let l = loads(Model::Open, 90.0, &[1, 2], &running, None);
        assert_eq!(l[1][1].rate, 30.0);
        assert!(!l[1][1].counted);
    }

    #[test]
    fn capacity_levels_spread_as_users_or_rates() {
        let rows = spread_levels(Model::Closed, &[3.0, 0.0, 2.0], 2);
        let users: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| r.iter().map(|l| l.users).collect())
            .collect();
        assert_eq!(users, vec![vec![2, 0, 1], vec![1, 0, 1]]);
        let rows = spread_levels(Model::Open, &[30.0, 10.0], 2);
        assert_eq!(rows.len(), 2);
        for row in &rows {
            assert_eq!((row[0].rate, row[1].rate), (15.0, 5.0));
            assert!(row.iter().all(|l| l.users == 0 && !l.counted));
        }
    }

    #[test]
    fn ramp_honours_spawn_rate_both_ways() {
        let mut r = Ramp::new(Some(5.0));
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(r.advance(20.0, 0.5));
        }
        assert_eq!(seen, vec![2, 5, 7, 10, 12, 15, 17, 20, 20, 20]);
        assert_eq!(r.advance(0.0, 1.0), 15);
        r.shed(5);
        assert_eq!(r.users(), 10, "a lost worker's users leave the level");
        assert_eq!(r.advance(20.0, 1.0), 15, "and come back at the spawn rate");
        let mut jump = Ramp::new(None);
        assert_eq!(jump.advance(42.0, 0.0), 42);
    }
}
