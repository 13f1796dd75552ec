//! Every vector of an i8 graph at half precision, by key: what its
//! candidates are scored by and what exact scans read.
//!
//! The graph walks on 8-bit codes, which reorder near-ties; scoring the
//! walk's best candidates again from these rows returns the neighbours an
//! f16 graph would, at the i8 walk's speed. The rows take
//! the bytes an f16 graph's own vectors would, and the graph's codes take
//! those of the 8-bit rows that sit beside an f16 graph ([`super::coarse`]):
//! the same memory, spent the other way round. Rows sit in chunks indexed by
//! key, as the 8-bit rows do (keys are dense and never reused).

use half::f16;
use roaring::RoaringBitmap;

use crate::Key;
use crate::error::{IndexError, Result};
use crate::topk::{Scored, TopK};
use crate::vector::dot_f16;

/// Rows per chunk: a chunk is allocated whole, when its first key arrives.
const CHUNK_ROWS: usize = 1024;

/// Half-precision rows by key.
pub(crate) struct HalfRows {
    dim: usize,
    chunks: Vec<Option<Box<[f16]>>>,
    present: RoaringBitmap,
}

impl HalfRows {
    /// No rows, for `dim`-dimensional vectors.
    pub(crate) fn new(dim: usize) -> Self {
        Self {
            dim,
            chunks: Vec::new(),
            present: RoaringBitmap::new(),
        }
    }

    /// Keeps `halves` as the row of `key`; a row of another width is ignored.
    pub(crate) fn put(&mut self, key: Key, halves: &[f16]) {
        if halves.len() != self.dim {
            return;
        }
        let (chunk, row) = (key as usize / CHUNK_ROWS, key as usize % CHUNK_ROWS);
        if self.chunks.len() <= chunk {
            self.chunks.resize_with(chunk + 1, || None);
        }
        let dim = self.dim;
        let c = self.chunks[chunk]
            .get_or_insert_with(|| vec![f16::ZERO; CHUNK_ROWS * dim].into_boxed_slice());
        c[row * dim..(row + 1) * dim].copy_from_slice(halves);
        self.present.insert(key);
    }

    /// Forgets the row of `key`.
    pub(crate) fn remove(&mut self, key: Key) {
        self.present.remove(key);
    }

    /// The row of `key`, if present.
    pub(crate) fn get(&self, key: Key) -> Option<&[f16]> {
        if !self.present.contains(key) {
            return None;
        }
        let (chunk, row) = (key as usize / CHUNK_ROWS, key as usize % CHUNK_ROWS);
        let c = self.chunks.get(chunk)?.as_ref()?;
        Some(&c[row * self.dim..(row + 1) * self.dim])
    }

    /// `query · row` of `key`, if it has a row.
    pub(crate) fn score(&self, query: &[f32], key: Key) -> Option<f32> {
        self.get(key).map(|row| dot_f16(query, row))
    }

    /// The exact `k` best of `keys` that have a row, best first (ties by key).
    pub(crate) fn top_k(&self, query: &[f32], k: usize, keys: &RoaringBitmap) -> Vec<Scored> {
        let mut best = TopK::new(k);
        for key in keys {
            if let Some(score) = self.score(query, key) {
                best.push(Scored { key, score });
            }
        }
        best.into_sorted()
    }

    /// Heap bytes held (whole chunks, present rows or not).
    pub(crate) fn bytes(&self) -> usize {
        self.chunks.iter().flatten().count() * CHUNK_ROWS * self.dim * 2
            + self.chunks.capacity() * std::mem::size_of::<Option<Box<[f16]>>>()
            + self.present.serialized_size()
    }

    /// The rows as bytes: `[count u64]`, then per row in key order
    /// `[key u32][dim halves, little-endian]`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend(self.present.len().to_le_bytes());
        for key in &self.present {
            out.extend(key.to_le_bytes());
            if let Some(row) = self.get(key) {
                out.extend(row.iter().flat_map(|h| h.to_le_bytes()));
            }
        }
    }

    /// Reads what [`HalfRows::encode`] wrote; the whole of `bytes` must be rows.
    pub(crate) fn decode(dim: usize, bytes: &[u8]) -> Result<Self> {
        let broken = |what: &str| IndexError::CorruptSnapshot(format!("half rows: bad {what}"));
        let (count, mut rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| broken("count"))?;
        let count = u64::from_le_bytes(*count);
        let width = 4 + dim * 2;
        let expected = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(width))
            .ok_or_else(|| broken("count"))?;
        if rest.len() != expected {
            return Err(broken("length"));
        }
        let mut rows = Self::new(dim);
        let mut halves = vec![f16::ZERO; dim];
        while let Some((key, body)) = rest.split_first_chunk::<4>() {
            let (row, next) = body.split_at(dim * 2);
            for (h, b) in halves.iter_mut().zip(row.chunks_exact(2)) {
                *h = f16::from_le_bytes([b[0], b[1]]);
            }
            rows.put(Key::from_le_bytes(*key), &halves);
            rest = next;
        }
        Ok(rows)
    }
}

/// `v` rounded to half precision: what a row keeps of it.
pub(crate) fn halves_of(v: &[f32]) -> Vec<f16> {
    let mut out = vec![f16::ZERO; v.len()];
    half::slice::HalfFloatSliceExt::convert_from_f32_slice(&mut out[..], v);
    out
}

/// Halves widened back to f32 into `out`.
pub(crate) fn widen_halves(halves: &[f16], out: &mut [f32]) {
    half::slice::HalfFloatSliceExt::convert_to_f32_slice(halves, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seed: u16, dim: usize) -> Vec<f16> {
        (0..dim)
            .map(|i| {
                f16::from_f32(f32::from(seed.wrapping_mul(31).wrapping_add(i as u16) % 17) / 17.0)
            })
            .collect()
    }

    #[test]
    fn rows_come_back_by_key_and_survive_encoding() {
        let dim = 5;
        let mut rows = HalfRows::new(dim);
        for key in [0, 3, 1500, 4000] {
            rows.put(key, &row(key as u16, dim));
        }
        rows.remove(3);
        assert_eq!(rows.get(1500), Some(&row(1500, dim)[..]));
        assert_eq!(rows.get(3), None, "removed");
        assert_eq!(rows.get(2000), None, "never put, chunk absent");
        assert_eq!(rows.get(1), None, "never put, chunk present");
        let mut bytes = Vec::new();
        rows.encode(&mut bytes);
        let back = HalfRows::decode(dim, &bytes).unwrap();
        for key in [0, 1, 3, 1500, 2000, 4000] {
            assert_eq!(back.get(key), rows.get(key), "key {key}");
        }
        for cut in 0..bytes.len() {
            assert!(
                HalfRows::decode(dim, &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(HalfRows::decode(dim + 1, &bytes).is_err(), "other width");
    }

    #[test]
    fn top_k_scores_every_present_row_and_nothing_else() {
        let dim = 4;
        let mut rows = HalfRows::new(dim);
        let unit = |i: usize| {
            let mut v = vec![0f32; dim];
            v[i % dim] = 1.0;
            halves_of(&v)
        };
        for key in 0..8 {
            rows.put(key, &unit(key as usize));
        }
        rows.remove(4);
        let query = [1.0, 0.0, 0.0, 0.0];
        let keys: RoaringBitmap = (0..10).collect();
        let top: Vec<Key> = rows.top_k(&query, 3, &keys).iter().map(|s| s.key).collect();
        // Keys 0 and 4 point along the query; 4 is gone, the rest tie at 0.
        assert_eq!(top, vec![0, 1, 2]);
        assert_eq!(rows.score(&query, 4), None);
    }
}
