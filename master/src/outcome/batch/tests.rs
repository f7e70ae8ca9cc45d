use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// A standard normal draw (Box–Muller): no rand_distr in the master for one test.
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The batch means of `x`, steady window chosen as for a summary.
fn batch_means(x: &[f64]) -> Vec<f64> {
    let b = batching(x, 1).unwrap();
    let values: Vec<Option<f64>> = x.iter().copied().map(Some).collect();
    b.means(&values).unwrap()
}

#[test]
fn t_quantiles_match_the_tables() {
    // Two-sided 95%: 12.706 (1 df), 2.262 (9), 2.093 (19), 1.960 (normal).
    assert!((t_quantile(1.0) - 12.7062).abs() < 1e-3);
    assert!((t_quantile(9.0) - 2.262157).abs() < 1e-5);
    assert!((t_quantile(19.0) - 2.093024).abs() < 1e-5);
    assert!((t_quantile(1e4) - 1.960201).abs() < 1e-4);
}

#[test]
fn mean_interval_of_known_values() {
    let x: Vec<f64> = (1..=10).map(f64::from).collect();
    let i = mean_interval(&x).unwrap();
    // Mean 5.5, s = 3.02765, half-width 2.262157 × s / √10 = 2.16585.
    assert!((i.estimate - 5.5).abs() < 1e-12);
    assert!((i.hi - 5.5 - 2.16585).abs() < 1e-4, "{i:?}");
    assert!((5.5 - i.lo - 2.16585).abs() < 1e-4, "{i:?}");
}

#[test]
fn iid_normal_intervals_cover_the_mean_95_percent_of_the_time() {
    let mut rng = StdRng::seed_from_u64(15);
    let runs = 2000;
    let covered = (0..runs)
        .filter(|_| {
            let x: Vec<f64> = (0..102).map(|_| 10.0 + normal(&mut rng)).collect();
            mean_interval(&batch_means(&x)).unwrap().covers(10.0)
        })
        .count();
    let rate = covered as f64 / runs as f64;
    eprintln!("iid coverage {rate}");
    // 2000 runs: the binomial sd of the rate is 0.5%.
    assert!((0.93..=0.97).contains(&rate), "coverage {rate}");
}

#[test]
fn batch_means_respect_autocorrelation_where_the_naive_interval_does_not() {
    // AR(1) with φ = 0.8: the naive (iid) interval is √9 = 3× too narrow.
    let mut rng = StdRng::seed_from_u64(7);
    let (runs, n) = (1000, 602);
    let (mut batched, mut naive) = (0, 0);
    for _ in 0..runs {
        let mut v = normal(&mut rng) / (1.0f64 - 0.64).sqrt();
        let x: Vec<f64> = (0..n)
            .map(|_| {
                v = 0.8 * v + normal(&mut rng);
                v
            })
            .collect();
        batched += usize::from(mean_interval(&batch_means(&x)).unwrap().covers(0.0));
        naive += usize::from(mean_interval(&x).unwrap().covers(0.0));
    }
    let (batched, naive) = (batched as f64 / runs as f64, naive as f64 / runs as f64);
    eprintln!("AR(1) coverage: batch means {batched}, naive {naive}");
    assert!(batched >= 0.90, "batch means cover {batched}");
    assert!(naive < 0.75, "the naive interval covers {naive}");
}

#[test]
fn paired_ratio_and_difference_cover_the_truth() {
    let mut rng = StdRng::seed_from_u64(3);
    let runs = 1000;
    let (mut ratio, mut diff) = (0, 0);
    for _ in 0..runs {
        // A shared disturbance (the machine) moves both alike; the pairing removes it.
        let shared: Vec<f64> = (0..10).map(|_| normal(&mut rng)).collect();
        let a: Vec<f64> = shared
            .iter()
            .map(|s| 200.0 + 20.0 * s + 5.0 * normal(&mut rng))
            .collect();
        let b: Vec<f64> = shared
            .iter()
            .map(|s| 100.0 + 10.0 * s + 5.0 * normal(&mut rng))
            .collect();
        ratio += usize::from(ratio_interval(&a, &b).unwrap().covers(2.0));
        diff += usize::from(difference_interval(&a, &b).unwrap().covers(100.0));
    }
    assert!(
        (0.92..=0.98).contains(&(ratio as f64 / runs as f64)),
        "ratio {ratio}"
    );
    assert!(
        (0.92..=0.98).contains(&(diff as f64 / runs as f64)),
        "difference {diff}"
    );
}

#[test]
fn independent_change_covers_the_truth() {
    let mut rng = StdRng::seed_from_u64(11);
    let runs = 1000;
    let covered = (0..runs)
        .filter(|_| {
            let base: Vec<f64> = (0..10).map(|_| 100.0 + 5.0 * normal(&mut rng)).collect();
            let cand: Vec<f64> = (0..20).map(|_| 110.0 + 10.0 * normal(&mut rng)).collect();
            let c = change_interval(&base, &cand).unwrap();
            let s = shift_interval(&base, &cand).unwrap();
            c.covers(0.1) && s.covers(10.0)
        })
        .count();
    // Both must cover: at least 0.95² ≈ 0.90 less some slack.
    assert!(covered as f64 / runs as f64 >= 0.88, "covered {covered}");
}

#[test]
fn a_constant_series_has_a_zero_width_interval() {
    let x = vec![42.0; 50];
    let i = mean_interval(&batch_means(&x)).unwrap();
    assert_eq!((i.estimate, i.lo, i.hi), (42.0, 42.0, 42.0));
    let r = ratio_interval(&[4.0; 10], &[2.0; 10]).unwrap();
    assert_eq!((r.estimate, r.lo, r.hi), (2.0, 2.0, 2.0));
    assert!(!r.covers(1.0));
    let c = change_interval(&[2.0; 10], &[2.0; 10]).unwrap();
    assert!(c.covers(0.0));
}

#[test]
fn too_few_intervals_give_no_interval_and_say_why() {
    for n in [0, 1, 2, 10, 21] {
        let err = batching(&vec![1.0; n], 1).unwrap_err();
        assert_eq!(err.steady, n.saturating_sub(2));
        assert!(err.to_string().contains("at least 20"), "{err}");
    }
    assert!(batching(&[1.0; 22], 1).is_ok());
    assert_eq!(mean_interval(&[1.0]), None);
    assert_eq!(ratio_interval(&[1.0, 2.0], &[0.0, 0.0]), None);
    assert_eq!(change_interval(&[0.0, 0.0], &[1.0, 2.0]), None);
}

#[test]
fn mser5_cuts_a_ramp_and_batches_are_equal() {
    let mut rng = StdRng::seed_from_u64(5);
    // A 20-interval ramp from 0 to 100, then 100 steady intervals around 100.
    let x: Vec<f64> = (0..20)
        .map(|i| f64::from(i) * 5.0)
        .chain((0..100).map(|_| 100.0 + normal(&mut rng)))
        .collect();
    let b = batching(&x, 1).unwrap();
    assert!(b.warmup >= 15, "{b:?}");
    assert!(b.start >= 16, "{b:?}");
    assert_eq!(b.batches, 10);
    assert!(b.end() < x.len(), "the last interval is never used");
    let skipped = batching(&x, 20).unwrap();
    assert!(skipped.start >= 20, "{skipped:?}");
    let steady = x.len() - 2 - b.warmup;
    assert_eq!(b.start - 1 - b.warmup, steady - 10 * b.len);
    let long = batching(&vec![1.0; 500], 1).unwrap();
    assert_eq!((long.batches, long.len, long.warmup), (20, 24, 0));
}

#[test]
fn a_batch_without_values_has_no_mean() {
    let b = batching(&[1.0; 22], 1).unwrap();
    let mut values = vec![Some(1.0); 22];
    for v in &mut values[b.start..b.start + b.len] {
        *v = None;
    }
    assert_eq!(b.means(&values), None);
    values[b.start] = Some(3.0);
    assert_eq!(b.means(&values).unwrap()[0], 3.0);
}
