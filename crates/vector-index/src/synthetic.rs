//! Synthetic clustered vectors and exact ground truth, for tests and benchmarks.
//!
//! Real embeddings are clustered (topics) and, within a topic, vary along few
//! directions: their intrinsic dimension is far below the vector length. Uniform
//! or isotropic-Gaussian data in 384 dimensions has neither property, makes all
//! neighbours almost equally far, and measures nothing useful about ANN recall.
//! So each point here is a random unit-scale centre, plus an offset drawn from a
//! low-rank Gaussian specific to its cluster, plus a little isotropic noise.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::vector::{dot, normalized};

/// Directions along which points of one cluster vary (their intrinsic dimension).
pub const INTRINSIC_DIM: usize = 16;

/// `n` row-major `dim`-dimensional points around `clusters` random centres.
///
/// `spread` is the typical offset from a (unit-norm) centre; 0.3 to 0.6 looks
/// like text embeddings, where neighbours are close but far from identical.
/// The same seed always gives the same points.
pub fn clustered(n: usize, dim: usize, clusters: usize, spread: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let clusters = clusters.max(1);
    let rank = INTRINSIC_DIM.min(dim);
    let scale = 1.0 / (dim as f32).sqrt();
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| gaussian(&mut rng) * scale)
        .collect();
    // Per cluster, `rank` random directions of norm ~1 each.
    let bases: Vec<f32> = (0..clusters * rank * dim)
        .map(|_| gaussian(&mut rng) * scale)
        .collect();
    let along = spread / (rank as f32).sqrt();
    let noise = spread * 0.2 * scale;
    let mut out = Vec::with_capacity(n * dim);
    let mut z = vec![0f32; rank];
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        let centre = &centres[c * dim..(c + 1) * dim];
        let basis = &bases[c * rank * dim..(c + 1) * rank * dim];
        for zi in z.iter_mut() {
            *zi = gaussian(&mut rng) * along;
        }
        for (j, x) in centre.iter().enumerate() {
            let low_rank: f32 = z
                .iter()
                .enumerate()
                .map(|(r, zr)| zr * basis[r * dim + j])
                .sum();
            out.push(x + low_rank + gaussian(&mut rng) * noise);
        }
    }
    out
}

/// A standard normal sample (Box–Muller).
fn gaussian(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// [`clustered`]'s points, each normalised to unit length, one `Vec` a point:
/// what the backends' unit tests insert and query.
#[cfg(test)]
pub(crate) fn clustered_units(
    n: usize,
    dim: usize,
    clusters: usize,
    spread: f32,
    seed: u64,
) -> Vec<Vec<f32>> {
    clustered(n, dim, clusters, spread, seed)
        .chunks(dim)
        .map(|v| normalized(v, dim).expect("clustered points are finite and nonzero"))
        .collect()
}

/// For each query, the indices of its `k` most cosine-similar base rows, best first.
///
/// Uses every available core; rows that cannot be normalised (zero) are skipped.
pub fn ground_truth(base: &[f32], queries: &[f32], dim: usize, k: usize) -> Vec<Vec<u32>> {
    let unit = |rows: &[f32]| -> Vec<Option<Vec<f32>>> {
        rows.chunks_exact(dim)
            .map(|r| normalized(r, dim).ok())
            .collect()
    };
    let base = unit(base);
    let queries = unit(queries);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = queries.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(per)
            .map(|chunk| {
                let base = &base;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|q| top_k(base, q.as_deref(), k))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn top_k(base: &[Option<Vec<f32>>], q: Option<&[f32]>, k: usize) -> Vec<u32> {
    let Some(q) = q else { return Vec::new() };
    let mut scored: Vec<(f32, u32)> = base
        .iter()
        .zip(0u32..)
        .filter_map(|(b, i)| b.as_ref().map(|b| (dot(q, b), i)))
        .collect();
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(k);
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Share of `truth`'s first `k` ids found in `found`'s first `k`, averaged over queries.
pub fn recall_at(k: usize, found: &[Vec<u32>], truth: &[Vec<u32>]) -> f64 {
    let (hit, total) = hits_at(k, found, truth);
    if total == 0 {
        1.0
    } else {
        hit as f64 / total as f64
    }
}

/// `(found, wanted)`: how many of `truth`'s first `k` ids `found`'s first `k`
/// hold, and how many there were, over all queries ([`recall_at`] is their ratio).
pub fn hits_at(k: usize, found: &[Vec<u32>], truth: &[Vec<u32>]) -> (usize, usize) {
    let mut hit = 0usize;
    let mut total = 0usize;
    for (f, t) in found.iter().zip(truth) {
        let t = &t[..k.min(t.len())];
        total += t.len();
        hit += f.iter().take(k).filter(|id| t.contains(id)).count();
    }
    (hit, total)
}
