//! The HNSW layers themselves: insert, search and the neighbour heuristic,
//! over vectors stored at `E` precision. Single-writer: the caller holds
//! the lock (see `super`).
//!
//! Layout, for the walk's sake (hnswlib's, split in two arrays): level 0's
//! links are one fixed-stride array (a count, then `2M` slots), the vectors
//! another (`dim` elements per slot), so a visited node costs the reads of
//! its vector and, when it is expanded, of one link row; the few nodes
//! above level 0 keep their upper links in a small vector each. A walk
//! waits on memory, not arithmetic, once the vectors outgrow the cache: an
//! expanded node's marks are asked for together, only its unseen links'
//! vectors are fetched (whole, one ahead of the one measured), and the next
//! candidate's link row is asked for before it is popped. Rebuilt and
//! restored graphs are renumbered so that a node's links sit near it in
//! every array (`super::order`), and those fetches share pages and lines.
//!
//! With 8-bit codes (`quantization = "i8"`, `super::codes`) searches walk on
//! the codes and score their best candidates again on the vectors; inserts
//! always walk on the vectors, so the graph is the same either way.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use hashbrown::HashMap;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;

use super::codes::{CodeQuery, Codes};
use super::element::Element;
use crate::Key;
use crate::backend::{prefetch, rescored};
use crate::topk::{Scored, TopK};

/// Highest level a node may get (a 2^-64 chance at M = 16; bounds the save format).
pub(super) const MAX_LEVEL: usize = 16;

/// A slot with its similarity to the query; greater is closer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Near {
    pub(super) score: f32,
    pub(super) slot: u32,
}

impl Eq for Near {}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.slot.cmp(&self.slot))
    }
}

/// How a walk measures a slot against its query.
trait Measure {
    /// The slot's similarity to the query; greater is closer.
    fn score(&self, slot: u32) -> f32;
    /// Asks for what [`Self::score`] will read of `slot`.
    fn prefetch(&self, slot: u32);
}

/// On the stored vectors.
struct Stored<'a, E> {
    layers: &'a Layers<E>,
    query: &'a [f32],
}

impl<E: Element> Measure for Stored<'_, E> {
    #[inline]
    fn score(&self, slot: u32) -> f32 {
        self.layers.score(self.query, slot)
    }
    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        self.layers.prefetch_vector(slot);
    }
}

/// On the 8-bit codes.
struct Coded<'a> {
    codes: &'a Codes,
    query: CodeQuery,
}

impl Measure for Coded<'_> {
    #[inline]
    fn score(&self, slot: u32) -> f32 {
        self.codes.score(&self.query, slot)
    }
    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        self.codes.prefetch(slot);
    }
}

/// Which slots a walk has seen: a mark per slot, new marks each walk.
struct Visits {
    marks: Vec<u32>,
    epoch: u32,
    /// The unseen links of the node being expanded (reused).
    fresh: Vec<u32>,
}

impl Visits {
    /// Starts a walk over `n` slots.
    fn start(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Asks for `slot`'s mark ahead of [`Self::first_visit`].
    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        if let Some(mark) = self.marks.get(slot as usize) {
            prefetch::lines(std::slice::from_ref(mark));
        }
    }

    /// Marks `slot`; whether it was unseen this walk.
    #[inline]
    fn first_visit(&mut self, slot: u32) -> bool {
        let mark = &mut self.marks[slot as usize];
        let first = *mark != self.epoch;
        *mark = self.epoch;
        first
    }
}

thread_local! {
    /// Each thread's marks, reused across walks (a walk never nests).
    static VISITS: RefCell<Visits> = const {
        RefCell::new(Visits { marks: Vec::new(), epoch: 0, fresh: Vec::new() })
    };
}

/// An HNSW graph over unit vectors stored as `E`, with tombstones.
#[derive(Clone)]
pub(super) struct Layers<E> {
    pub(super) dim: usize,
    /// Links per node above level 0 (`M`); level 0 keeps twice as many.
    pub(super) m: usize,
    pub(super) ef_construction: usize,
    /// Level-0 links: per slot a count, then `2M` slots.
    pub(super) links0: Vec<u32>,
    /// Per slot, its links on levels 1..=level: each level a count, then `M` slots.
    pub(super) upper: Vec<Box<[u32]>>,
    /// Per slot, `dim` elements.
    pub(super) vectors: Vec<E>,
    /// Per slot, its key.
    pub(super) keys: Vec<Key>,
    /// Live keys to their slots.
    pub(super) slots: HashMap<Key, u32>,
    /// Slots removed but still in the graph (walked through, never returned).
    pub(super) dead: RoaringBitmap,
    /// The top node (`None` while empty).
    pub(super) entry: Option<u32>,
    pub(super) max_level: usize,
    /// Per slot, 8-bit codes that searches walk on (`None`: they walk on `vectors`).
    pub(super) codes: Option<Codes>,
    rng: StdRng,
}

impl<E: Element> Layers<E> {
    /// An empty graph; `capacity` slots are reserved.
    pub(super) fn new(dim: usize, m: usize, ef_construction: usize, capacity: usize) -> Self {
        let mut layers = Self {
            dim,
            m,
            ef_construction,
            links0: Vec::new(),
            upper: Vec::new(),
            vectors: Vec::new(),
            keys: Vec::new(),
            slots: HashMap::new(),
            dead: RoaringBitmap::new(),
            entry: None,
            max_level: 0,
            codes: None,
            rng: StdRng::seed_from_u64(0x5eed),
        };
        layers.reserve(capacity);
        layers
    }

    /// An empty graph of the same shape and settings, with room for
    /// `capacity` slots, carrying on `self`'s random levels.
    pub(super) fn empty_like(&self, capacity: usize) -> Self {
        let mut out = Self::new(self.dim, self.m, self.ef_construction, capacity);
        out.rng = self.rng.clone();
        out
    }

    /// Gives every slot, and every slot inserted from now on, 8-bit codes
    /// that searches walk on; a no-op if it has them.
    pub(super) fn encode(&mut self) {
        if self.codes.is_some() {
            return;
        }
        let mut codes = Codes::new(self.dim);
        codes.reserve(self.keys.capacity());
        for slot in 0..self.slot_count() as u32 {
            codes.push(&widen(self.vector(slot)));
        }
        self.codes = Some(codes);
    }

    /// Whether searches walk on 8-bit codes.
    pub(super) fn encoded(&self) -> bool {
        self.codes.is_some()
    }

    /// Room for `more` slots.
    pub(super) fn reserve(&mut self, more: usize) {
        self.links0.reserve(more * self.stride0());
        self.vectors.reserve(more * self.dim);
        self.keys.reserve(more);
        self.upper.reserve(more);
        if let Some(codes) = &mut self.codes {
            codes.reserve(more);
        }
    }

    /// Words per slot in `links0`.
    pub(super) fn stride0(&self) -> usize {
        1 + 2 * self.m
    }

    /// Words per level in an `upper` entry.
    pub(super) fn stride_upper(&self) -> usize {
        1 + self.m
    }

    /// Slots ever inserted, live or dead.
    pub(super) fn slot_count(&self) -> usize {
        self.keys.len()
    }

    /// Live keys.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The stored vector of `slot`.
    #[inline]
    pub(super) fn vector(&self, slot: u32) -> &[E] {
        let at = slot as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    /// The level of `slot` (its upper levels plus level 0).
    pub(super) fn level(&self, slot: u32) -> usize {
        self.upper[slot as usize].len() / self.stride_upper()
    }

    /// The links of `slot` at `level`.
    #[inline]
    pub(super) fn links(&self, slot: u32, level: usize) -> &[u32] {
        let row = if level == 0 {
            let at = slot as usize * self.stride0();
            &self.links0[at..at + self.stride0()]
        } else {
            let w = self.stride_upper();
            &self.upper[slot as usize][(level - 1) * w..level * w]
        };
        &row[1..1 + row[0] as usize]
    }

    fn set_links(&mut self, slot: u32, level: usize, links: &[u32]) {
        let row = if level == 0 {
            let w = self.stride0();
            let at = slot as usize * w;
            &mut self.links0[at..at + w]
        } else {
            let w = self.stride_upper();
            &mut self.upper[slot as usize][(level - 1) * w..level * w]
        };
        row[0] = links.len() as u32;
        row[1..1 + links.len()].copy_from_slice(links);
    }

    /// Asks for every cache line of `slot`'s vector: a vector spans many
    /// lines (768 bytes at 384 f16 elements), and a walk's next vector is
    /// rarely cached, so fetching them all at once hides more of the wait
    /// than the first line alone.
    #[inline(always)]
    fn prefetch_vector(&self, slot: u32) {
        prefetch::lines(self.vector(slot));
    }

    /// Asks for `slot`'s link row at `level` (level 0's span a few lines).
    #[inline(always)]
    fn prefetch_links(&self, slot: u32, level: usize) {
        if level == 0 {
            let w = self.stride0();
            if let Some(row) = self.links0.get(slot as usize * w..(slot as usize + 1) * w) {
                prefetch::lines(row);
            }
        }
    }

    #[inline]
    fn score(&self, query: &[f32], slot: u32) -> f32 {
        E::dot(query, self.vector(slot))
    }

    /// Follows the closest link at `level` until none is closer.
    fn greedy(&self, measure: &impl Measure, mut at: Near, level: usize) -> Near {
        loop {
            let mut moved = false;
            for &n in self.links(at.slot, level) {
                let score = measure.score(n);
                if score > at.score {
                    at = Near { score, slot: n };
                    moved = true;
                }
            }
            if !moved {
                return at;
            }
        }
    }

    /// The beam search of one level from `start`: the best `ef` slots that
    /// `keep` accepts, best first, walking through every slot.
    fn beam(
        &self,
        measure: &impl Measure,
        start: Near,
        ef: usize,
        level: usize,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<Near> {
        VISITS.with_borrow_mut(|visits| {
            visits.start(self.slot_count());
            visits.first_visit(start.slot);
            let mut next: BinaryHeap<Near> = BinaryHeap::with_capacity(4 * ef);
            let mut best = TopK::new(ef);
            next.push(start);
            if keep(start.slot) {
                best.push(scored(start));
            }
            while let Some(c) = next.pop() {
                if best.threshold().is_some_and(|worst| c.score < worst) {
                    break;
                }
                // Three passes over the links, so that each waits on memory
                // once: all their marks are asked for, then the unseen ones
                // kept, then scored, the next one's vector asked for while
                // one is measured (none is fetched for a seen link).
                let links = self.links(c.slot, level);
                for &n in links {
                    visits.prefetch(n);
                }
                let mut fresh = std::mem::take(&mut visits.fresh);
                fresh.clear();
                fresh.extend(links.iter().copied().filter(|&n| visits.first_visit(n)));
                if let Some(&first) = fresh.first() {
                    measure.prefetch(first);
                }
                for (i, &n) in fresh.iter().enumerate() {
                    if let Some(&after) = fresh.get(i + 1) {
                        measure.prefetch(after);
                    }
                    let score = measure.score(n);
                    if best.threshold().is_none_or(|worst| score > worst) {
                        let near = Near { score, slot: n };
                        next.push(near);
                        if keep(n) {
                            best.push(scored(near));
                        }
                    }
                }
                visits.fresh = fresh;
                // The likely next node to expand: its link row is wanted first.
                if let Some(top) = next.peek() {
                    self.prefetch_links(top.slot, level);
                }
            }
            best.into_sorted()
                .into_iter()
                .map(|s| Near {
                    score: s.score,
                    slot: s.key,
                })
                .collect()
        })
    }

    /// Up to `k` live slots accepted by `accept`, nearest first, from a
    /// beam of `ef`. On codes, the beam's best [`rescored`]`(k)` are scored
    /// again on the vectors, and those scores decide and are returned.
    pub(super) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(Key) -> bool,
    ) -> Vec<Near> {
        let keep = |slot: u32| !self.dead.contains(slot) && accept(self.keys[slot as usize]);
        let ef = ef.max(k);
        let Some(codes) = &self.codes else {
            let mut found = self.walk(
                &Stored {
                    layers: self,
                    query,
                },
                ef,
                &keep,
            );
            found.truncate(k);
            return found;
        };
        let coded = Coded {
            codes,
            query: codes.query(query),
        };
        let mut found = self.walk(&coded, ef, &keep);
        found.truncate(rescored(k));
        if let Some(first) = found.first() {
            self.prefetch_vector(first.slot);
        }
        for i in 0..found.len() {
            if let Some(after) = found.get(i + 1) {
                self.prefetch_vector(after.slot);
            }
            found[i].score = self.score(query, found[i].slot);
        }
        found.sort_unstable_by(|a, b| b.cmp(a));
        found.truncate(k);
        found
    }

    /// Down the upper levels greedily, then level 0's beam of `ef`.
    fn walk(&self, measure: &impl Measure, ef: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Near> {
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        let mut at = Near {
            score: measure.score(entry),
            slot: entry,
        };
        for level in (1..=self.max_level).rev() {
            at = self.greedy(measure, at, level);
        }
        self.beam(measure, at, ef, 0, keep)
    }

    /// hnswlib's heuristic: from `candidates`, nearest first, keep one only
    /// if it is nearer the base than any kept one, up to `limit`.
    fn select(&self, candidates: &[Near], limit: usize) -> Vec<u32> {
        let mut kept: Vec<(u32, Vec<f32>)> = Vec::with_capacity(limit);
        for c in candidates {
            if kept.len() >= limit {
                break;
            }
            let v = self.vector(c.slot);
            if kept.iter().all(|(_, k)| E::dot(k, v) < c.score) {
                kept.push((c.slot, widen(v)));
            }
        }
        kept.into_iter().map(|(slot, _)| slot).collect()
    }

    /// Adds `vector` (already at `E`) under `key`, which must not be live.
    pub(super) fn insert(&mut self, key: Key, vector: &[E]) {
        let slot = self.keys.len() as u32;
        let level = self.random_level();
        self.keys.push(key);
        self.vectors.extend_from_slice(vector);
        self.links0.resize(self.links0.len() + self.stride0(), 0);
        self.upper
            .push(vec![0; level * self.stride_upper()].into_boxed_slice());
        self.slots.insert(key, slot);
        // The stored (rounded) vector is what later searches measure.
        let query = widen(vector);
        if let Some(codes) = &mut self.codes {
            codes.push(&query);
            debug_assert_eq!(codes.len(), self.keys.len());
        }
        let Some(entry) = self.entry else {
            self.entry = Some(slot);
            self.max_level = level;
            return;
        };
        let mut at = Near {
            score: self.score(&query, entry),
            slot: entry,
        };
        for l in (level + 1..=self.max_level).rev() {
            at = self.greedy(
                &Stored {
                    layers: self,
                    query: &query,
                },
                at,
                l,
            );
        }
        let everyone = |_: u32| true;
        for l in (0..=level.min(self.max_level)).rev() {
            let stored = Stored {
                layers: self,
                query: &query,
            };
            let found = self.beam(&stored, at, self.ef_construction, l, &everyone);
            let chosen = self.select(&found, self.m);
            self.set_links(slot, l, &chosen);
            let cap = if l == 0 { 2 * self.m } else { self.m };
            for &n in &chosen {
                self.link_back(n, slot, l, cap);
            }
            if let Some(first) = found.first() {
                at = *first;
            }
        }
        if level > self.max_level {
            self.max_level = level;
            self.entry = Some(slot);
        }
    }

    /// Adds `slot` to `n`'s links at `level`, pruning them by the heuristic when full.
    fn link_back(&mut self, n: u32, slot: u32, level: usize, cap: usize) {
        let mut theirs = self.links(n, level).to_vec();
        if theirs.len() < cap {
            theirs.push(slot);
        } else {
            let base = widen(self.vector(n));
            let mut candidates: Vec<Near> = theirs
                .iter()
                .chain(std::iter::once(&slot))
                .map(|&s| Near {
                    score: self.score(&base, s),
                    slot: s,
                })
                .collect();
            candidates.sort_unstable_by(|a, b| b.cmp(a));
            theirs = self.select(&candidates, cap);
        }
        self.set_links(n, level, &theirs);
    }

    fn random_level(&mut self) -> usize {
        let ml = 1.0 / (self.m as f64).ln();
        let u: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
        ((-u.ln() * ml) as usize).min(MAX_LEVEL)
    }

    /// Marks `key`'s slot dead; whether it was live.
    pub(super) fn remove(&mut self, key: Key) -> bool {
        match self.slots.remove(&key) {
            Some(slot) => {
                self.dead.insert(slot);
                true
            }
            None => false,
        }
    }

    /// Heap bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.links0.capacity() * 4
            + self.vectors.capacity() * size_of::<E>()
            + self.keys.capacity() * 4
            + self.upper.capacity() * size_of::<Box<[u32]>>()
            + self.upper.iter().map(|u| u.len() * 4).sum::<usize>()
            + self.slots.capacity() * (size_of::<(Key, u32)>() + 1)
            + self.dead.serialized_size()
            + self.codes.as_ref().map_or(0, Codes::bytes)
    }
}

/// `v` at f32.
pub(super) fn widen<E: Element>(v: &[E]) -> Vec<f32> {
    v.iter().map(|x| x.to_f32()).collect()
}

fn scored(n: Near) -> Scored {
    Scored {
        key: n.slot,
        score: n.score,
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;
    use crate::synthetic::clustered_units;

    #[test]
    fn a_walk_on_codes_measures_by_the_codes_and_a_search_by_the_vectors() {
        let dim = 32;
        let mut g = Layers::<f16>::new(dim, 8, 32, 0);
        g.encode();
        for key in 0..300u32 {
            let v: Vec<f16> = clustered_units(1, dim, 1, 0.5, key.into())[0]
                .iter()
                .map(|x| f16::from_f32(*x))
                .collect();
            g.insert(key, &v);
        }
        let q = clustered_units(1, dim, 1, 0.5, 999).remove(0);
        let codes = g.codes.as_ref().unwrap();
        let coded = Coded {
            codes,
            query: codes.query(&q),
        };
        let walked = g.walk(&coded, 32, &|_| true);
        assert_eq!(walked.len(), 32);
        assert!(
            walked
                .iter()
                .all(|n| n.score == codes.score(&coded.query, n.slot))
        );
        assert!(walked.iter().any(|n| n.score != g.score(&q, n.slot)));
        let found = g.search(&q, 5, 32, &|_| true);
        assert_eq!(found.len(), 5);
        assert!(found.iter().all(|n| n.score == g.score(&q, n.slot)));
        assert!(found.windows(2).all(|w| w[0].score >= w[1].score));
    }
}
