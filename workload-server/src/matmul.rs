//! The work: an exact product of two random integer matrices.
//!
//! The Graviton study's handler did `numpy.random.randint(dim, size=(dim, dim))` twice and
//! multiplied the two (entries uniform in `0..dim`, 64-bit integers, no BLAS: numpy's integer
//! `dot` is a plain loop). This is the same work done properly: row-major `i32` inputs, a
//! cache-blocked i-k-j kernel whose inner loop is a straight `acc[j] += a * b[j]` that LLVM
//! vectorises, `i32` partial sums over k-chunks short enough that they provably cannot overflow,
//! folded into `i64` results. One request is one core: nothing here spawns threads.
//!
//! The answer carries a [`checksum`] of the whole product so the work cannot be skipped: it is
//! order-dependent and non-linear (unlike a plain sum, which is computable in O(n²) from the
//! inputs' row and column sums).

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::distr::{Distribution, Uniform};
use rand::rngs::SmallRng;

/// Columns of the output computed together; a `K_BLOCK` × `J_BLOCK` tile of `b` (512 KiB of
/// `i32`) stays in L2 while every row of `a` streams past it.
const J_BLOCK: usize = 512;
/// Most rows of `b` folded into one `i32` partial sum before it is widened to `i64`.
const K_BLOCK: usize = 256;

/// The result of one unit of work, as reported to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    /// Side of the square matrices.
    pub dim: usize,
    /// Seed the two input matrices were drawn from (see [`random_pair`]).
    pub seed: u64,
    /// [`checksum`] of the product.
    pub checksum: u64,
    /// Time to draw the inputs and multiply them.
    pub compute_time: Duration,
}

/// Draws two `dim`×`dim` matrices from `seed`, multiplies them exactly and checksums the result:
/// the whole of what one `/runtime` request does.
pub fn run(dim: usize, seed: u64) -> Product {
    let started = Instant::now();
    let (a, b) = random_pair(dim, seed);
    let c = multiply(&a, &b, dim);
    let checksum = checksum(&c);
    Product {
        dim,
        seed,
        checksum,
        compute_time: started.elapsed(),
    }
}

/// The two input matrices for `seed`, row-major, entries uniform in `0..dim` (numpy's
/// `randint(dim, size=(dim, dim))`). The same seed gives the same matrices within one build.
pub fn random_pair(dim: usize, seed: u64) -> (Vec<i32>, Vec<i32>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let a = random_matrix(dim, &mut rng);
    let b = random_matrix(dim, &mut rng);
    (a, b)
}

fn random_matrix(dim: usize, rng: &mut SmallRng) -> Vec<i32> {
    let len = dim * dim;
    let high = i32::try_from(dim).unwrap_or(i32::MAX);
    match Uniform::new(0, high) {
        Ok(entries) => entries.sample_iter(rng).take(len).collect(),
        // Only for dim 0, where the range is empty and so is the matrix.
        Err(_) => vec![0; len],
    }
}

/// The exact product `a · b` of two row-major `dim`×`dim` matrices, by the blocked kernel.
///
/// Exact for any `i32` entries: the k-chunk over which `i32` partial sums run is chosen from the
/// largest magnitudes present so that no partial sum can overflow (256 rows for entries below
/// 2000), and inputs too large for any `i32` partial sum take a plain `i64` path instead.
///
/// # Panics
/// If `a` or `b` does not hold `dim * dim` entries (a caller's bug, never input from a client).
pub fn multiply(a: &[i32], b: &[i32], dim: usize) -> Vec<i64> {
    let len = dim * dim;
    assert_eq!(a.len(), len, "a is not {dim}x{dim}");
    assert_eq!(b.len(), len, "b is not {dim}x{dim}");
    let mut c = vec![0i64; len];
    if dim == 0 {
        return c;
    }
    let largest_product = u64::from(max_magnitude(a)) * u64::from(max_magnitude(b));
    let k_block = match largest_product {
        0 => K_BLOCK,
        p => usize::try_from(u64::from(i32::MAX.unsigned_abs()) / p)
            .unwrap_or(K_BLOCK)
            .min(K_BLOCK),
    };
    if k_block == 0 {
        multiply_wide(a, b, dim, &mut c);
    } else {
        multiply_blocked(a, b, dim, k_block, &mut c);
    }
    c
}

fn max_magnitude(m: &[i32]) -> u32 {
    m.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0)
}

/// The fast path: i-k-j order over column tiles, `i32` partial sums over `k_block` rows.
/// Requires `k_block * max|a| * max|b| <= i32::MAX`, which [`multiply`] guarantees.
fn multiply_blocked(a: &[i32], b: &[i32], dim: usize, k_block: usize, c: &mut [i64]) {
    let mut partial = vec![0i32; J_BLOCK.min(dim)];
    for j0 in (0..dim).step_by(J_BLOCK) {
        let j1 = (j0 + J_BLOCK).min(dim);
        let partial = &mut partial[..j1 - j0];
        for k0 in (0..dim).step_by(k_block) {
            let k1 = (k0 + k_block).min(dim);
            for i in 0..dim {
                partial.fill(0);
                let a_row = &a[i * dim + k0..i * dim + k1];
                for (k, &a_ik) in (k0..k1).zip(a_row) {
                    let b_row = &b[k * dim + j0..k * dim + j1];
                    for (sum, &b_kj) in partial.iter_mut().zip(b_row) {
                        *sum += a_ik * b_kj;
                    }
                }
                let c_row = &mut c[i * dim + j0..i * dim + j1];
                for (out, &sum) in c_row.iter_mut().zip(partial.iter()) {
                    *out += i64::from(sum);
                }
            }
        }
    }
}

/// The slow path for entries so large that even one product does not fit an `i32`: i-k-j with
/// `i64` throughout (wrapping only if the true result does not fit an `i64` either).
fn multiply_wide(a: &[i32], b: &[i32], dim: usize, c: &mut [i64]) {
    for i in 0..dim {
        let c_row = &mut c[i * dim..(i + 1) * dim];
        for k in 0..dim {
            let a_ik = i64::from(a[i * dim + k]);
            for (out, &b_kj) in c_row.iter_mut().zip(&b[k * dim..(k + 1) * dim]) {
                *out = out.wrapping_add(a_ik.wrapping_mul(i64::from(b_kj)));
            }
        }
    }
}

/// The textbook triple loop, i-j-k with `i64` sums: the reference the kernel is tested against.
pub fn multiply_naive(a: &[i32], b: &[i32], dim: usize) -> Vec<i64> {
    let mut c = vec![0i64; dim * dim];
    for i in 0..dim {
        for j in 0..dim {
            c[i * dim + j] = (0..dim)
                .map(|k| i64::from(a[i * dim + k]) * i64::from(b[k * dim + j]))
                .sum();
        }
    }
    c
}

/// FNV-1a over the entries of a product, row-major, one 64-bit word at a time.
pub fn checksum(c: &[i64]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    c.iter().fold(OFFSET, |hash, &x| {
        (hash ^ u64::from_ne_bytes(x.to_ne_bytes())).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::SmallRng};

    use super::*;

    fn random_entries(len: usize, low: i32, high: i32, rng: &mut SmallRng) -> Vec<i32> {
        (0..len).map(|_| rng.random_range(low..=high)).collect()
    }

    #[test]
    fn kernel_matches_naive_on_the_study_inputs() {
        // Sizes straddling the tile edges (J_BLOCK, K_BLOCK) and the odd ones.
        for dim in [1, 2, 3, 7, 31, 64, 255, 257, 513] {
            let (a, b) = random_pair(dim, dim as u64);
            assert_eq!(
                multiply(&a, &b, dim),
                multiply_naive(&a, &b, dim),
                "dim {dim}"
            );
        }
    }

    #[test]
    fn kernel_matches_naive_on_negative_and_large_entries() {
        let mut rng = SmallRng::seed_from_u64(7);
        for (dim, bound) in [
            (40, 1),
            (40, 2_000),
            (37, 1 << 15),
            (33, 1 << 20),
            (20, i32::MAX),
        ] {
            let a = random_entries(dim * dim, -bound, bound, &mut rng);
            let b = random_entries(dim * dim, -bound, bound, &mut rng);
            let naive: Vec<i64> = {
                // The reference with wrapping arithmetic, for the i32::MAX case.
                let mut c = vec![0i64; dim * dim];
                for i in 0..dim {
                    for j in 0..dim {
                        c[i * dim + j] = (0..dim).fold(0i64, |s, k| {
                            s.wrapping_add(
                                i64::from(a[i * dim + k]).wrapping_mul(i64::from(b[k * dim + j])),
                            )
                        });
                    }
                }
                c
            };
            assert_eq!(multiply(&a, &b, dim), naive, "dim {dim}, bound {bound}");
        }
    }

    #[test]
    fn worst_case_entries_do_not_overflow() {
        // Every entry at its maximum for the largest default dim's value range.
        let dim = 520;
        let a = vec![1999; dim * dim];
        let b = vec![1999; dim * dim];
        let c = multiply(&a, &b, dim);
        assert!(c.iter().all(|&x| x == 1999 * 1999 * dim as i64));
    }

    #[test]
    fn entries_are_in_zero_to_dim() {
        for dim in [1, 2, 10, 100] {
            let (a, b) = random_pair(dim, 3);
            assert_eq!(a.len(), dim * dim);
            assert!(a.iter().chain(&b).all(|&x| (0..dim as i32).contains(&x)));
        }
        let (a, _) = random_pair(100, 3);
        // Not degenerate: many distinct values.
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert!(distinct.len() > 90);
    }

    #[test]
    fn run_is_reproducible_from_its_seed_and_sensitive_to_it() {
        let one = run(50, 11);
        assert_eq!(one.checksum, run(50, 11).checksum);
        assert_ne!(one.checksum, run(50, 12).checksum);
        let (a, b) = random_pair(50, 11);
        assert_eq!(one.checksum, checksum(&multiply_naive(&a, &b, 50)));
    }

    #[test]
    fn checksum_depends_on_order() {
        assert_ne!(checksum(&[1, 2]), checksum(&[2, 1]));
        assert_ne!(checksum(&[0]), checksum(&[]));
    }

    #[test]
    fn empty_matrices() {
        assert!(multiply(&[], &[], 0).is_empty());
        assert_eq!(run(0, 1).dim, 0);
    }
}
