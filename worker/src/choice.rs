//! Weighted choice of the next request among those a user's target may receive.

use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;

/// The requests one target may receive, picked by weight.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    /// Indexes into `RunConfig.requests`.
    requests: Vec<u32>,
    dist: WeightedIndex<u32>,
}

impl Choice {
    /// `None` when no candidate has a positive weight.
    pub(crate) fn new(candidates: impl IntoIterator<Item = (u32, u32)>) -> Option<Self> {
        let (requests, weights): (Vec<u32>, Vec<u32>) =
            candidates.into_iter().filter(|&(_, w)| w > 0).unzip();
        let dist = WeightedIndex::new(weights).ok()?;
        Some(Self { requests, dist })
    }

    /// The index of the next request.
    pub(crate) fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        self.requests[self.dist.sample(rng)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn picks_in_proportion_to_weight() {
        let choice = Choice::new([(0, 1), (1, 3), (2, 0), (3, 4)]).unwrap();
        let mut rng = SmallRng::seed_from_u64(3);
        let n = 100_000;
        let mut counts = [0usize; 4];
        for _ in 0..n {
            counts[choice.pick(&mut rng) as usize] += 1;
        }
        assert_eq!(counts[2], 0, "weight 0 is never picked");
        // Expected shares 1/8, 3/8, 4/8; std error < 0.0016, bound 0.01.
        for (i, want) in [(0, 0.125), (1, 0.375), (3, 0.5)] {
            let got = counts[i] as f64 / n as f64;
            assert!((got - want).abs() < 0.01, "request {i}: {got} vs {want}");
        }
    }

    #[test]
    fn no_positive_weight_is_no_choice() {
        assert!(Choice::new([(0, 0), (1, 0)]).is_none());
        assert!(Choice::new([]).is_none());
    }
}
