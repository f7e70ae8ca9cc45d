//! Dispatch as pure functions: how many users each worker runs against each target, and how
//! the global level moves toward its goal at the spawn rate.

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

/// The global user level on its way to a goal, moving at most `spawn_rate` users per second
/// (up or down); without a spawn rate it jumps.
#[derive(Debug, Clone)]
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
    fn ramp_honours_spawn_rate_both_ways() {
        let mut r = Ramp::new(Some(5.0));
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(r.advance(20.0, 0.5));
        }
        assert_eq!(seen, vec![2, 5, 7, 10, 12, 15, 17, 20, 20, 20]);
        assert_eq!(r.advance(0.0, 1.0), 15);
        let mut jump = Ramp::new(None);
        assert_eq!(jump.advance(42.0, 0.0), 42);
    }
}
