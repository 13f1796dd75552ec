//! An 8-bit copy of a graph's vectors that its searches walk on
//! (`quantization = "i8"`): half the bytes of the f16 vectors per visited
//! node, so more of the walk's reads hit the cache. The graph keeps its f16
//! vectors; it is built, saved and scanned on those, and a search scores its
//! best candidates from them again (`super::layers`).
//!
//! Each vector's codes are at its own scale (`coarse::quantize`: its largest
//! component ±127), so `scale · codes` approximates it and `scale ·
//! (q · codes)` its inner product with a query, with no norm to keep. The
//! query is rounded to 16 bits at its own scale, so a score is one integer
//! dot product (`dot_i16_i8`) and two multiplications, and the query adds
//! almost no error of its own.

use crate::backend::coarse::quantize;
use crate::backend::prefetch;
use crate::vector::dot_i16_i8;

/// The codes of every slot, `dim` a row, and each row's scale.
#[derive(Clone)]
pub(super) struct Codes {
    dim: usize,
    rows: Vec<i8>,
    scales: Vec<f32>,
}

/// A query rounded for [`Codes::score`]: `query ≈ scale · wide`.
pub(super) struct CodeQuery {
    wide: Vec<i16>,
    scale: f32,
}

impl Codes {
    /// No rows, for `dim`-dimensional vectors.
    pub(super) fn new(dim: usize) -> Self {
        Self {
            dim,
            rows: Vec::new(),
            scales: Vec::new(),
        }
    }

    /// Room for `more` rows.
    pub(super) fn reserve(&mut self, more: usize) {
        self.rows.reserve(more * self.dim);
        self.scales.reserve(more);
    }

    /// Appends the row of the next slot, from its vector as the graph holds it.
    pub(super) fn push(&mut self, vector: &[f32]) {
        let at = self.rows.len();
        self.rows.resize(at + self.dim, 0);
        let scale = quantize(vector, &mut self.rows[at..]);
        self.scales.push(scale);
    }

    /// The rows in a new order (row `i` is row `order[i]` of `self`), with
    /// room for `capacity` rows.
    pub(super) fn permuted(&self, order: &[u32], capacity: usize) -> Self {
        let mut out = Self::new(self.dim);
        out.reserve(capacity.max(order.len()));
        for &old in order {
            let at = old as usize * self.dim;
            out.rows.extend_from_slice(&self.rows[at..at + self.dim]);
            out.scales.push(self.scales[old as usize]);
        }
        out
    }

    /// Rows held (one per slot).
    pub(super) fn len(&self) -> usize {
        self.scales.len()
    }

    /// `query` rounded to 16 bits at its own scale, as small as keeps
    /// [`dot_i16_i8`]'s sum inside an `i32` at this width.
    pub(super) fn query(&self, query: &[f32]) -> CodeQuery {
        let top = (i32::MAX as usize / (127 * self.dim.max(1))).min(i16::MAX as usize) as f32;
        let largest = query.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = if largest > 0.0 { largest / top } else { 1.0 };
        let wide = query
            .iter()
            .map(|x| (x / scale).round().clamp(-top, top) as i16)
            .collect();
        CodeQuery { wide, scale }
    }

    /// The estimated inner product of `query` with `slot`'s vector.
    #[inline]
    pub(super) fn score(&self, query: &CodeQuery, slot: u32) -> f32 {
        let at = slot as usize * self.dim;
        let dot = dot_i16_i8(&query.wide, &self.rows[at..at + self.dim]);
        dot as f32 * query.scale * self.scales[slot as usize]
    }

    /// Asks for every cache line of `slot`'s row, and for its scale.
    #[inline(always)]
    pub(super) fn prefetch(&self, slot: u32) {
        let at = slot as usize * self.dim;
        if let Some(row) = self.rows.get(at..at + self.dim) {
            prefetch::lines(row);
        }
        if let Some(scale) = self.scales.get(slot as usize) {
            prefetch::lines(std::slice::from_ref(scale));
        }
    }

    /// Heap bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.rows.capacity() + self.scales.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::clustered_units;
    use crate::vector::dot;

    #[test]
    fn scores_track_the_inner_product_of_unit_vectors_closely() {
        let dim = 384;
        let vectors = clustered_units(200, dim, 4, 0.3, 5);
        let mut codes = Codes::new(dim);
        for v in &vectors {
            codes.push(v);
        }
        assert_eq!(codes.len(), 200);
        let mut worst = 0f32;
        for q in vectors.iter().step_by(7) {
            let cq = codes.query(q);
            for (slot, v) in vectors.iter().enumerate() {
                worst = worst.max((codes.score(&cq, slot as u32) - dot(q, v)).abs());
            }
        }
        // Half a step of 1/127 of the largest component, per component.
        assert!(worst < 0.01, "largest error {worst}");
        assert!(worst > 0.0, "the codes round");
    }

    #[test]
    fn a_zero_query_scores_zero_and_wide_vectors_do_not_overflow() {
        let dim = 4096;
        let mut codes = Codes::new(dim);
        codes.push(&vec![-1.0; dim]);
        assert_eq!(codes.score(&codes.query(&vec![0.0; dim]), 0), 0.0);
        let got = codes.score(&codes.query(&vec![1.0; dim]), 0);
        assert!((got + dim as f32).abs() < 1e-2 * dim as f32, "{got}");
    }
}
