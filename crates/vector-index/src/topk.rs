//! A scored key, and the best `k` of them seen so far, for exact scans and
//! keyword search.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::Key;

/// A key with its cosine similarity to the query (higher is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Internal key.
    pub key: Key,
    /// Cosine similarity in `[-1, 1]`.
    pub score: f32,
}

/// A scored key ordered so that greater is better (higher score, then lower key).
#[derive(Debug, Clone, Copy)]
struct Ranked(Scored);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .score
            .total_cmp(&other.0.score)
            .then(other.0.key.cmp(&self.0.key))
    }
}

/// Keeps the best `k` of the keys pushed (a min-heap: the root is the weakest kept).
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    /// An empty collector of the best `k`.
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Offers a scored key; kept if it beats the weakest of a full set.
    pub(crate) fn push(&mut self, s: Scored) {
        let candidate = Ranked(s);
        if self.heap.len() < self.k {
            self.heap.push(Reverse(candidate));
        } else if self
            .heap
            .peek()
            .is_some_and(|Reverse(weakest)| candidate > *weakest)
        {
            self.heap.pop();
            self.heap.push(Reverse(candidate));
        }
    }

    /// The score a key must beat to enter, once `k` are kept.
    pub(crate) fn threshold(&self) -> Option<f32> {
        if self.heap.len() < self.k {
            return None;
        }
        self.heap.peek().map(|Reverse(weakest)| weakest.0.score)
    }

    /// The kept keys, best first (ties by key).
    pub(crate) fn into_sorted(self) -> Vec<Scored> {
        let mut out: Vec<Scored> = self.heap.into_iter().map(|Reverse(r)| r.0).collect();
        out.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.key.cmp(&b.key)));
        out
    }
}
