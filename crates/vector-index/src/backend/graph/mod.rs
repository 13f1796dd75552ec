//! Our own HNSW graph (`index.backend = "graph"`): the layout and walk of
//! hnswlib, vectors at f16 or f32 (and, for `i8`, f16 vectors with 8-bit
//! codes that searches walk on), tombstoned removals and rebuilds off the
//! lock.
//!
//! Why it exists (docs/decisions.md, "Our own graph layer"): usearch's walk
//! measured at 0.7-0.8x hnswlib's on the same graphs, and its dense index
//! gives no way to change how it walks.
//!
//! Consistency, in short:
//! - one lock over the graph: searches share it, an insert or removal holds
//!   it alone for the length of that one write;
//! - a removal only marks the key's slot dead: walks pass through dead
//!   slots and never return them;
//! - once dead slots pass `rebuild_tombstone_ratio` of the graph, a thread
//!   builds a fresh graph from the live vectors without the lock, while
//!   every write is also logged; under the lock it replays the log onto
//!   the fresh graph and swaps it in, so no write is lost and no search
//!   waits for the build;
//! - a rebuilt graph is renumbered in walk order (`order`) before its
//!   swap, off the lock, and a restored one before it serves; a graph
//!   that only grows is not (a renumbering under the lock stalled writes,
//!   and the searches queued behind them, for tens of milliseconds).

mod codes;
mod element;
mod layers;
mod order;
mod persist;

pub(crate) use self::persist::VectorFree;

use std::sync::Arc;

use half::f16;
use parking_lot::RwLock;
use roaring::RoaringBitmap;

use self::element::Element;
use self::layers::{Layers, widen};
use super::rebuild::{self, Op, Rebuilds};
use super::{Accept, AnnBackend, BackendKind, GraphParams, Quantization, Scored};
use crate::Key;
use crate::error::{IndexError, Result};
use crate::topk::TopK;

/// Builds a graph backend at the precision `params` asks for (`i8`: f16
/// vectors with codes).
pub(crate) fn build(dim: usize, params: &GraphParams) -> Result<Box<dyn AnnBackend>> {
    Ok(match params.quantization {
        Quantization::F16 | Quantization::I8 => Box::new(GraphBackend::<f16>::new(dim, params)),
        Quantization::F32 => Box::new(GraphBackend::<f32>::new(dim, params)),
    })
}

/// Restores what [`AnnBackend::save`] wrote, at the precision `params` asks
/// for. An `i8` graph is saved as its f16 graph, so either restores as the
/// other: the codes are made again from the vectors.
pub(crate) fn restore(
    dim: usize,
    params: &GraphParams,
    bytes: &[u8],
) -> Result<Box<dyn AnnBackend>> {
    Ok(match params.quantization {
        Quantization::F16 | Quantization::I8 => {
            Box::new(GraphBackend::<f16>::restore(dim, params, bytes)?)
        }
        Quantization::F32 => Box::new(GraphBackend::<f32>::restore(dim, params, bytes)?),
    })
}

/// Bytes per stored element of a graph at `quantization`.
pub(crate) fn element_bytes(quantization: Quantization) -> usize {
    match quantization {
        Quantization::F16 | Quantization::I8 => <f16 as Element>::BYTES,
        Quantization::F32 => <f32 as Element>::BYTES,
    }
}

struct Inner<E> {
    params: GraphParams,
    graph: RwLock<Layers<E>>,
    rebuilds: Rebuilds,
}

/// The graph backend, storing vectors as `E`.
pub(crate) struct GraphBackend<E> {
    inner: Arc<Inner<E>>,
}

impl<E: Element> GraphBackend<E> {
    /// An empty graph for `dim`-dimensional vectors; `params` must be validated.
    pub(crate) fn new(dim: usize, params: &GraphParams) -> Self {
        let layers = Layers::new(
            dim,
            params.connectivity,
            params.ef_construction,
            params.capacity_hint,
        );
        Self::with(layers, params)
    }

    /// Loads a graph saved by [`AnnBackend::save`].
    pub(crate) fn restore(dim: usize, params: &GraphParams, bytes: &[u8]) -> Result<Self> {
        // What was saved may be in arrival order (an older version's save).
        let layers = order::walk_ordered(persist::restore(dim, bytes)?);
        Ok(Self::with(layers, params))
    }

    fn with(mut layers: Layers<E>, params: &GraphParams) -> Self {
        if params.quantization == Quantization::I8 {
            layers.encode();
        }
        Self {
            inner: Arc::new(Inner {
                params: params.clone(),
                graph: RwLock::new(layers),
                rebuilds: Rebuilds::default(),
            }),
        }
    }

    /// Starts a rebuild now (unless one runs) and waits for it to finish.
    #[cfg(test)]
    pub(crate) fn rebuild_now(&self) {
        Inner::start_rebuild(&self.inner);
        self.wait_idle();
    }
}

impl<E: Element> Inner<E> {
    fn needs_rebuild(&self) -> bool {
        let g = self.graph.read();
        rebuild::due(
            g.dead.len() as usize,
            g.slot_count(),
            self.params.rebuild_tombstone_ratio,
        )
    }

    fn start_rebuild(this: &Arc<Self>) {
        let inner = Arc::clone(this);
        this.rebuilds
            .start("graph-rebuild", move || inner.rebuild());
    }

    fn rebuild(&self) {
        // The log is on: every write after this copy is replayed.
        let (live, dim, encoded) = {
            let g = self.graph.read();
            let mut live: Vec<(Key, u32)> = g.slots.iter().map(|(k, s)| (*k, *s)).collect();
            // Slot order is insertion order: the fresh graph is built the same way.
            live.sort_unstable_by_key(|(_, slot)| *slot);
            let live: Vec<(Key, Vec<E>)> = live
                .into_iter()
                .map(|(key, slot)| (key, g.vector(slot).to_vec()))
                .collect();
            (live, g.dim, g.encoded())
        };
        let mut fresh = Layers::new(
            dim,
            self.params.connectivity,
            self.params.ef_construction,
            live.len() + live.len() / 4,
        );
        if encoded {
            fresh.encode();
        }
        for (key, v) in &live {
            fresh.insert(*key, v);
        }
        drop(live);
        let mut fresh = order::walk_ordered(fresh);
        // Replay beside the searches until the log is short, then the rest
        // under the lock, so searches wait for a short tail, not the build's.
        while let Some(ops) = self.rebuilds.take_long_log() {
            replay(&mut fresh, &self.graph.read(), &ops);
        }
        let mut graph = self.graph.write();
        replay(&mut fresh, &graph, &self.rebuilds.finish());
        *graph = fresh;
        drop(graph);
        self.rebuilds.swapped();
    }
}

/// Applies logged writes to `fresh`, taking each written key's vector as
/// `current` holds it now (a later write of the same key is in the log too).
fn replay<E: Element>(fresh: &mut Layers<E>, current: &Layers<E>, ops: &[Op]) {
    for op in ops {
        match *op {
            Op::Insert(key) => {
                fresh.remove(key);
                if let Some(&slot) = current.slots.get(&key) {
                    fresh.insert(key, current.vector(slot));
                }
            }
            Op::Remove(key) => {
                fresh.remove(key);
            }
        }
    }
}

fn rounded<E: Element>(vector: &[f32]) -> Vec<E> {
    vector.iter().map(|x| E::from_f32(*x)).collect()
}

impl<E: Element> AnnBackend for GraphBackend<E> {
    fn kind(&self) -> BackendKind {
        BackendKind::Graph
    }

    fn insert(&self, key: Key, vector: &[f32]) -> Result<()> {
        let v = rounded::<E>(vector);
        let mut g = self.inner.graph.write();
        if v.len() != g.dim {
            return Err(IndexError::DimensionMismatch {
                expected: g.dim,
                got: v.len(),
            });
        }
        // A key is live once: a second insert replaces the first.
        g.remove(key);
        g.insert(key, &v);
        self.inner.rebuilds.log(Op::Insert(key));
        Ok(())
    }

    fn remove(&self, key: Key) -> Result<()> {
        let removed = {
            let mut g = self.inner.graph.write();
            let removed = g.remove(key);
            if removed {
                self.inner.rebuilds.log(Op::Remove(key));
            }
            removed
        };
        if removed && self.inner.needs_rebuild() {
            Inner::start_rebuild(&self.inner);
        }
        Ok(())
    }

    fn scan(&self, keys: &RoaringBitmap, visit: &mut dyn FnMut(Key, &[f32])) {
        let g = self.inner.graph.read();
        let mut wide = vec![0.0; g.dim];
        for key in keys {
            if let Some(&slot) = g.slots.get(&key) {
                for (w, x) in wide.iter_mut().zip(g.vector(slot)) {
                    *w = x.to_f32();
                }
                visit(key, &wide);
            }
        }
    }

    fn exact(&self, query: &[f32], k: usize, keys: &RoaringBitmap) -> Vec<Scored> {
        // Scored where they are held, at their precision: no copy, no widening.
        let g = self.inner.graph.read();
        let mut best = TopK::new(k);
        for key in keys {
            if let Some(&slot) = g.slots.get(&key) {
                best.push(Scored {
                    key,
                    score: E::dot(query, g.vector(slot)),
                });
            }
        }
        best.into_sorted()
    }

    fn vector(&self, key: Key) -> Option<Vec<f32>> {
        let g = self.inner.graph.read();
        g.slots.get(&key).map(|&slot| widen(g.vector(slot)))
    }

    fn holds(&self, key: Key, vector: &[f32]) -> bool {
        let g = self.inner.graph.read();
        g.slots.get(&key).is_some_and(|&slot| {
            let held = g.vector(slot);
            held.len() == vector.len()
                && held.iter().zip(vector).all(|(h, x)| *h == E::from_f32(*x))
        })
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<Accept<'_>>,
    ) -> Result<Vec<Scored>> {
        let g = self.inner.graph.read();
        if k == 0 || g.len() == 0 {
            return Ok(Vec::new());
        }
        let everyone = |_: Key| true;
        let accept: &dyn Fn(Key) -> bool = match accept {
            Some(a) => a,
            None => &everyone,
        };
        let mut out: Vec<Scored> = g
            .search(query, k, ef, accept)
            .into_iter()
            .map(|n| Scored {
                key: g.keys[n.slot as usize],
                score: n.score,
            })
            .collect();
        out.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.key.cmp(&b.key)));
        Ok(out)
    }

    fn len(&self) -> usize {
        self.inner.graph.read().len()
    }

    fn memory_bytes(&self) -> usize {
        self.inner.graph.read().bytes()
    }

    fn save(&self) -> Result<Vec<u8>> {
        Ok(persist::save(&*self.inner.graph.read()))
    }

    fn save_without_vectors(&self) -> Result<Option<Vec<u8>>> {
        Ok(Some(persist::save_without_vectors(
            &*self.inner.graph.read(),
        )))
    }

    fn tombstones(&self) -> usize {
        self.inner.graph.read().dead.len() as usize
    }

    fn rebuilds_completed(&self) -> u64 {
        self.inner.rebuilds.completed()
    }

    fn wait_idle(&self) {
        self.inner.rebuilds.wait_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::clustered_units;

    /// A unit vector of its own for each seed: the one point of a
    /// generated set of that seed.
    fn unit(seed: u32, dim: usize) -> Vec<f32> {
        clustered_units(1, dim, 1, 0.5, u64::from(seed)).remove(0)
    }

    fn params(quantization: Quantization) -> GraphParams {
        GraphParams {
            connectivity: 8,
            ef_construction: 64,
            capacity_hint: 16,
            rebuild_tombstone_ratio: 0.2,
            quantization,
        }
    }

    /// The exact top `k` of the live keys, for comparison: every stored
    /// vector widened and scored, as the trait's default does it; checked
    /// against the backend's own `exact`.
    fn exact(b: &dyn AnnBackend, live: &RoaringBitmap, q: &[f32], k: usize) -> Vec<Key> {
        let keys = |s: Vec<Scored>| -> Vec<Key> { s.into_iter().map(|s| s.key).collect() };
        let want = keys(crate::backend::scan_top_k(b, q, k, live));
        assert_eq!(keys(b.exact(q, k, live)), want);
        want
    }

    #[test]
    fn searches_find_the_exact_neighbours_of_a_small_set_and_skip_removed_keys() {
        for q in [Quantization::F16, Quantization::F32, Quantization::I8] {
            let b = build(16, &params(q)).unwrap();
            let mut live = RoaringBitmap::new();
            for key in 0..500u32 {
                b.insert(key, &unit(key, 16)).unwrap();
                live.insert(key);
            }
            for key in (0..500u32).step_by(3) {
                b.remove(key).unwrap();
                live.remove(key);
            }
            b.wait_idle();
            assert!(
                b.rebuilds_completed() >= 1,
                "{q:?}: a third removed rebuilds"
            );
            assert_eq!(b.len(), live.len() as usize);
            let mut hits = 0;
            for seed in 1000..1050u32 {
                let query = unit(seed, 16);
                let got: Vec<Key> = b
                    .search(&query, 10, 64, None)
                    .unwrap()
                    .iter()
                    .map(|s| s.key)
                    .collect();
                assert!(
                    got.iter().all(|k| live.contains(*k)),
                    "{q:?}: a removed key came back"
                );
                let want = exact(&*b, &live, &query, 10);
                hits += got.iter().filter(|k| want.contains(k)).count();
            }
            assert!(hits >= 490, "{q:?}: recall@10 {hits}/500");
        }
    }

    #[test]
    fn a_filter_keeps_only_accepted_keys_and_a_replaced_key_answers_with_its_new_vector() {
        let b = build(16, &params(Quantization::F16)).unwrap();
        for key in 0..300u32 {
            b.insert(key, &unit(key, 16)).unwrap();
        }
        let even = |k: Key| k.is_multiple_of(2);
        let got = b.search(&unit(7, 16), 10, 64, Some(&even)).unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|s| s.key.is_multiple_of(2)), "{got:?}");
        // Key 5 takes key 7's vector: the query for 7 now finds both.
        b.insert(5, &unit(7, 16)).unwrap();
        let got = b.search(&unit(7, 16), 2, 64, None).unwrap();
        let mut keys: Vec<Key> = got.iter().map(|s| s.key).collect();
        keys.sort();
        assert_eq!(keys, [5, 7]);
        assert!(b.holds(5, &unit(7, 16)));
        assert!(!b.holds(5, &unit(5, 16)));
        assert_eq!(b.len(), 300);
    }

    #[test]
    fn writes_during_a_rebuild_are_kept() {
        let b = GraphBackend::<f32>::new(16, &params(Quantization::F32));
        for key in 0..400u32 {
            b.insert(key, &unit(key, 16)).unwrap();
        }
        for key in 0..100u32 {
            b.remove(key).unwrap();
        }
        // A rebuild may be running now; write through it.
        for key in 400..500u32 {
            b.insert(key, &unit(key, 16)).unwrap();
        }
        b.remove(450).unwrap();
        b.rebuild_now();
        assert_eq!(b.len(), 399);
        assert_eq!(b.vector(450), None);
        assert_eq!(b.vector(499), Some(unit(499, 16)));
        assert_eq!(b.vector(50), None);
        let top = b.search(&unit(499, 16), 1, 32, None).unwrap();
        assert_eq!(top[0].key, 499);
    }

    #[test]
    fn a_saved_graph_answers_like_the_original() {
        let b = build(16, &params(Quantization::F16)).unwrap();
        for key in 0..300u32 {
            b.insert(key, &unit(key, 16)).unwrap();
        }
        b.remove(3).unwrap();
        let back = restore(16, &params(Quantization::F16), &b.save().unwrap()).unwrap();
        for seed in 0..20u32 {
            let q = unit(seed + 900, 16);
            assert_eq!(
                b.search(&q, 10, 32, None).unwrap(),
                back.search(&q, 10, 32, None).unwrap()
            );
        }
        assert!(restore(16, &params(Quantization::F32), &b.save().unwrap()).is_err());
    }

    #[test]
    fn an_i8_graph_is_the_f16_graph_with_codes_and_answers_with_f16_scores() {
        let dim = 64;
        let points = clustered_units(2000, dim, 20, 0.5, 7);
        let f16 = build(dim, &params(Quantization::F16)).unwrap();
        let i8 = build(dim, &params(Quantization::I8)).unwrap();
        for (key, v) in points.iter().enumerate() {
            f16.insert(key as Key, v).unwrap();
            i8.insert(key as Key, v).unwrap();
        }
        // Inserts walk on the vectors: the same graph, saved the same.
        assert_eq!(f16.save().unwrap(), i8.save().unwrap());
        // The codes cost a byte per component and a scale per vector.
        let extra = i8.memory_bytes() - f16.memory_bytes();
        assert!(extra >= 2000 * (dim + 4), "{extra}");
        let live: RoaringBitmap = (0..2000u32).collect();
        let queries = clustered_units(50, dim, 20, 0.5, 8);
        let (mut same, mut hits, mut f16_hits) = (0, 0, 0);
        for q in &queries {
            let got = i8.search(q, 10, 64, None).unwrap();
            // Every score is the f16 vector's, not the codes' estimate.
            for s in &got {
                let v = f16.vector(s.key).unwrap();
                assert_eq!(s.score, crate::vector::dot_f16(q, &rounded::<f16>(&v)));
            }
            let theirs = f16.search(q, 10, 64, None).unwrap();
            same += usize::from(got == theirs);
            let want = exact(&*f16, &live, q, 10);
            hits += got.iter().filter(|s| want.contains(&s.key)).count();
            f16_hits += theirs.iter().filter(|s| want.contains(&s.key)).count();
        }
        assert!(
            hits + 5 >= f16_hits && hits >= 400,
            "recall@10 {hits}/500, the f16 graph's {f16_hits}/500"
        );
        assert!(
            same >= 40,
            "only {same} of 50 answers match the f16 graph's"
        );
        // Saved as the f16 graph, restored as either; restored as i8, it
        // gets its codes again and answers as before.
        let bytes = i8.save().unwrap();
        let back = restore(dim, &params(Quantization::I8), &bytes).unwrap();
        let as_f16 = restore(dim, &params(Quantization::F16), &bytes).unwrap();
        let extra = back.memory_bytes() - as_f16.memory_bytes();
        assert!(extra >= 2000 * (dim + 4), "{extra}");
        for q in &queries {
            assert_eq!(
                back.search(q, 10, 64, None).unwrap(),
                i8.search(q, 10, 64, None).unwrap()
            );
        }
    }

    #[test]
    fn a_rebuilt_or_restored_graph_is_renumbered_and_a_growing_one_is_not() {
        let dim = 8;
        let b = GraphBackend::<f16>::new(dim, &params(Quantization::I8));
        let n = order::MIN_SLOTS as u32 * 3 / 2;
        for k in 0..n {
            b.insert(k, &unit(k, dim)).unwrap();
        }
        // In walk order the entry point is slot 0; in arrival order it is
        // the first node drawn at the top level, almost never the first.
        let entry = |b: &GraphBackend<f16>| b.inner.graph.read().entry;
        assert_ne!(entry(&b), Some(0), "a growing graph keeps arrival order");
        // Saved in arrival order, restored in walk order: the same answers.
        let back = GraphBackend::<f16>::restore(dim, &params(Quantization::I8), &b.save().unwrap())
            .unwrap();
        assert_eq!(entry(&back), Some(0));
        for k in (0..n).step_by(97) {
            let q = unit(k + n, dim);
            assert_eq!(
                back.search(&q, 10, 64, None).unwrap(),
                b.search(&q, 10, 64, None).unwrap()
            );
        }
        // A quarter removed: the rebuild is renumbered before its swap.
        for k in (0..n).step_by(4) {
            b.remove(k).unwrap();
        }
        b.wait_idle();
        assert!(b.rebuilds_completed() >= 1);
        assert_eq!(entry(&b), Some(0));
        assert!(b.inner.graph.read().encoded());
        for k in (1..n).step_by(97).filter(|k| k % 4 != 0) {
            let top = b.search(&unit(k, dim), 1, 64, None).unwrap();
            assert!(b.holds(top[0].key, &unit(k, dim)), "key {k}: found {top:?}");
        }
    }

    #[test]
    fn a_rebuilt_i8_graph_keeps_its_codes() {
        let b = GraphBackend::<f16>::new(32, &params(Quantization::I8));
        for key in 0..400u32 {
            b.insert(key, &unit(key, 32)).unwrap();
        }
        for key in 0..100u32 {
            b.remove(key).unwrap();
        }
        b.rebuild_now();
        assert!(b.inner.graph.read().encoded());
        let top = b.search(&unit(399, 32), 1, 32, None).unwrap();
        assert_eq!(top[0].key, 399);
    }
}
