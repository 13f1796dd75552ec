//! An 8-bit copy of every vector with a bound on what rounding lost, so an
//! exact scan reads a quarter of the bytes and still returns exactly what a
//! scan of the stored vectors would.
//!
//! A row keeps codes `c` in `-127..=127`, a scale `s` (its largest component
//! over 127) and `r = ‖v − s·c‖`. For a query `q`, `q·v` lies within
//! `‖q‖·r` of `s·(q·c)` (Cauchy–Schwarz). A scan scores every row coarsely,
//! takes the k-th best lower bound, and reads the stored vector only of rows
//! whose upper bound reaches it: a row it skips scores below k others, so it
//! cannot be in the top k. The rows sit in chunks indexed by key (keys are
//! dense and never reused), which a scan reads in key order, prefetching
//! ahead, where the graph's own lookup costs a hash probe and a copy per key.

use roaring::RoaringBitmap;

use super::Scored;
use super::prefetch;
use crate::Key;
use crate::topk::TopK;
use crate::vector::dot_i8;

/// Rows per chunk: a chunk is allocated whole, when its first key arrives.
const CHUNK_ROWS: usize = 1024;
/// Keys a scan looks ahead to prefetch their rows.
const PREFETCH_AHEAD: usize = 4;

/// Writes `v`'s 8-bit codes at its own scale into `codes` (its largest
/// component becomes ±127, the rest are rounded to the nearest step) and
/// returns that scale: `v ≈ scale · codes`. Every vector uses all 8 bits,
/// however small its components.
pub(crate) fn quantize(v: &[f32], codes: &mut [i8]) -> f32 {
    let largest = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = largest / 127.0;
    for (code, x) in codes.iter_mut().zip(v) {
        *code = if scale > 0.0 {
            (x / scale).round().clamp(-127.0, 127.0) as i8
        } else {
            0
        };
    }
    scale
}

/// One chunk of rows; a row with a NaN scale is absent.
struct Chunk {
    codes: Box<[i8]>,
    scale: Box<[f32]>,
    residual: Box<[f32]>,
}

/// 8-bit rows by key, with their scale and rounding error.
pub(crate) struct CoarseRows {
    dim: usize,
    chunks: Vec<Option<Chunk>>,
}

impl CoarseRows {
    /// No rows, for `dim`-dimensional vectors.
    pub(crate) fn new(dim: usize) -> Self {
        Self {
            dim,
            chunks: Vec::new(),
        }
    }

    /// Keeps the row of `key`, quantizing `stored`: the vector exactly as the
    /// exact scan will read it back (after the graph's own quantization).
    pub(crate) fn put(&mut self, key: Key, stored: &[f32]) {
        if stored.len() != self.dim {
            return;
        }
        let (chunk, row) = (key as usize / CHUNK_ROWS, key as usize % CHUNK_ROWS);
        if self.chunks.len() <= chunk {
            self.chunks.resize_with(chunk + 1, || None);
        }
        let dim = self.dim;
        let c = self.chunks[chunk].get_or_insert_with(|| Chunk {
            codes: vec![0; CHUNK_ROWS * dim].into_boxed_slice(),
            scale: vec![f32::NAN; CHUNK_ROWS].into_boxed_slice(),
            residual: vec![0.0; CHUNK_ROWS].into_boxed_slice(),
        });
        let codes = &mut c.codes[row * dim..(row + 1) * dim];
        let scale = quantize(stored, codes);
        let lost: f64 = codes
            .iter()
            .zip(stored)
            .map(|(code, x)| {
                let e = f64::from(*x) - f64::from(scale) * f64::from(*code);
                e * e
            })
            .sum();
        c.scale[row] = scale;
        // Rounded up, so the bound never falls short by the last bit.
        c.residual[row] = (lost.sqrt() * (1.0 + 1e-6)) as f32;
    }

    /// Forgets the row of `key`.
    pub(crate) fn remove(&mut self, key: Key) {
        let (chunk, row) = (key as usize / CHUNK_ROWS, key as usize % CHUNK_ROWS);
        if let Some(Some(c)) = self.chunks.get_mut(chunk) {
            c.scale[row] = f32::NAN;
        }
    }

    /// Heap bytes held (whole chunks, present rows or not).
    pub(crate) fn bytes(&self) -> usize {
        let per_chunk = CHUNK_ROWS * (self.dim + 8);
        self.chunks.iter().flatten().count() * per_chunk
            + self.chunks.capacity() * std::mem::size_of::<Option<Chunk>>()
    }

    /// The keys of `keys` whose exact score may be among the `k` best for
    /// `query`: every key that has no row here, and every row whose upper
    /// bound reaches the k-th best lower bound.
    pub(crate) fn candidates(
        &self,
        query: &[f32],
        k: usize,
        keys: &RoaringBitmap,
    ) -> RoaringBitmap {
        if query.len() != self.dim || k == 0 {
            return keys.clone();
        }
        let q_norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        // Both the coarse and the exact dot product are f32 sums of `dim`
        // terms, each within `dim` units in the last place of ‖q‖ (unit rows):
        // the margin covers both with room to spare.
        let margin = 2.0 * self.dim as f32 * f32::EPSILON * q_norm;
        let mut lower = TopK::new(k);
        let mut upper: Vec<(Key, f32)> = Vec::with_capacity(keys.len() as usize);
        let mut must = RoaringBitmap::new();
        let mut ahead = keys.iter().skip(PREFETCH_AHEAD);
        for key in keys {
            if let Some(next) = ahead.next() {
                self.prefetch(next);
            }
            match self.row(key) {
                Some((codes, scale, residual)) => {
                    let estimate = scale * dot_i8(query, codes);
                    let slack = q_norm * residual + margin;
                    lower.push(Scored {
                        key,
                        score: estimate - slack,
                    });
                    upper.push((key, estimate + slack));
                }
                None => {
                    must.insert(key);
                }
            }
        }
        let floor = lower.threshold().unwrap_or(f32::NEG_INFINITY);
        // `upper` is in key order, so the bitmap is built by appending.
        let reach = RoaringBitmap::from_sorted_iter(
            upper
                .into_iter()
                .filter(|(_, high)| *high >= floor)
                .map(|(key, _)| key),
        )
        .unwrap_or_default();
        must | reach
    }

    /// The row of `key`: its codes, scale and rounding error, if present.
    fn row(&self, key: Key) -> Option<(&[i8], f32, f32)> {
        let (chunk, row) = (key as usize / CHUNK_ROWS, key as usize % CHUNK_ROWS);
        let c = self.chunks.get(chunk)?.as_ref()?;
        let scale = c.scale[row];
        if scale.is_nan() {
            return None;
        }
        Some((
            &c.codes[row * self.dim..(row + 1) * self.dim],
            scale,
            c.residual[row],
        ))
    }

    /// Asks the CPU to start loading the row of `key`.
    fn prefetch(&self, key: Key) {
        let (chunk, row) = (key as usize / CHUNK_ROWS, key as usize % CHUNK_ROWS);
        if let Some(Some(c)) = self.chunks.get(chunk) {
            prefetch::lines(&c.codes[row * self.dim..(row + 1) * self.dim]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::clustered_units;
    use crate::vector::{dot, normalized};

    /// The exact top k of `keys` by reading every vector.
    fn exact(vectors: &[Vec<f32>], q: &[f32], k: usize, keys: &RoaringBitmap) -> Vec<Scored> {
        let mut best = TopK::new(k);
        for key in keys {
            best.push(Scored {
                key,
                score: dot(q, &vectors[key as usize]),
            });
        }
        best.into_sorted()
    }

    #[test]
    fn the_candidates_always_hold_the_exact_top_k_and_usually_few_more() {
        let dim = 48;
        let n = 3000;
        let vectors = clustered_units(n, dim, 6, 0.2, 11);
        let mut rows = CoarseRows::new(dim);
        for (key, v) in vectors.iter().enumerate() {
            rows.put(key as Key, v);
        }
        let queries = clustered_units(40, dim, 6, 0.2, 12);
        let mut checked = 0u64;
        let mut scanned = 0u64;
        for (i, q) in queries.iter().enumerate() {
            // Every third key, then every key of one cluster-sized stretch.
            let every_third: RoaringBitmap =
                (0..n as Key).filter(|k| k % 3 == i as Key % 3).collect();
            let stretch: RoaringBitmap = (i as Key * 50..i as Key * 50 + 400).collect();
            for keys in [every_third, stretch] {
                for k in [1, 10, 50] {
                    let want = exact(&vectors, q, k, &keys);
                    let candidates = rows.candidates(q, k, &keys);
                    assert!(candidates.is_subset(&keys));
                    let got = exact(&vectors, q, k, &candidates);
                    assert_eq!(got, want, "query {i}, k {k}");
                    checked += candidates.len();
                    scanned += keys.len();
                }
            }
        }
        // The point of the rows: most keys never need their stored vector.
        assert!(
            checked * 5 < scanned,
            "{checked} of {scanned} keys needed their stored vector"
        );
    }

    #[test]
    fn keys_without_a_row_are_always_candidates() {
        let dim = 8;
        let mut rows = CoarseRows::new(dim);
        let v = normalized(&[1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 1.0], dim).unwrap();
        for key in 0..20 {
            rows.put(key, &v);
        }
        rows.remove(3);
        let keys: RoaringBitmap = [3, 5, 5000].into_iter().collect();
        let got = rows.candidates(&v, 1, &keys);
        assert!(got.contains(3), "removed");
        assert!(got.contains(5000), "never put");
        assert!(got.contains(5), "the only row, so the best");
    }
}
