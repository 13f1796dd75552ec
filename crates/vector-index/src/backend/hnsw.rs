//! The `hnsw_rs` backend: tombstoned deletes and background rebuilds.
//!
//! `hnsw_rs` cannot remove a point, so a removal marks the key as a tombstone
//! that searches skip. Once tombstones pass a share of the graph, a fresh graph
//! is built from the live vectors on a background thread while searches keep
//! using the old one; writes made meanwhile are logged and replayed onto the new
//! graph, which is then swapped in atomically.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use hashbrown::HashMap;
use hnsw_rs::prelude::{Distance, Hnsw};
use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;

use super::rebuild::{self, Op, Rebuilds};
use super::{Accept, AnnBackend, BackendKind, GraphParams, Scored};
use crate::Key;
use crate::error::Result;
use crate::vector::dot;

/// Most layers `hnsw_rs` allows; it clamps larger values itself.
const MAX_LAYERS: usize = 16;

/// Cosine distance on unit vectors, `1 - dot`, clamped to `[0, 2]`.
///
/// `hnsw_rs` asserts that distances are non-negative and panics on NaN; the
/// clamp makes both unreachable, whatever rounding does to the dot product.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let d = 1.0 - dot(a, b);
        // NaN fails both comparisons and becomes 0.
        if d > 0.0 { d.min(2.0) } else { 0.0 }
    }
}

type Graph = Hnsw<'static, f32, UnitCosine>;

/// One graph generation with its tombstones.
struct Generation {
    graph: Graph,
    tombstones: RwLock<RoaringBitmap>,
    /// Points inserted into `graph`, tombstoned or not.
    inserted: AtomicUsize,
    /// Keys inserted into `graph`, needed to replay a write log exactly once.
    keys: Mutex<RoaringBitmap>,
}

struct Inner {
    dim: usize,
    params: GraphParams,
    current: ArcSwap<Generation>,
    /// The live vectors: the source for rebuilds and exact scans.
    vectors: RwLock<HashMap<Key, Arc<[f32]>>>,
    /// Writers hold it shared; swapping in a rebuilt graph holds it exclusively.
    gate: RwLock<()>,
    /// `Some` while a rebuild runs: the writes it must replay.
    rebuilds: Rebuilds,
}

/// ANN backend over `hnsw_rs`.
pub struct HnswBackend {
    inner: Arc<Inner>,
}

impl HnswBackend {
    /// An empty index for `dim`-dimensional vectors; `params` must be validated.
    pub fn new(dim: usize, params: GraphParams) -> Self {
        let generation = Generation::new(&params, params.capacity_hint);
        Self {
            inner: Arc::new(Inner {
                dim,
                params,
                current: ArcSwap::from_pointee(generation),
                vectors: RwLock::new(HashMap::new()),
                gate: RwLock::new(()),
                rebuilds: Rebuilds::default(),
            }),
        }
    }

    /// Rebuilds the graph from vectors saved by [`AnnBackend::save`].
    pub fn restore(dim: usize, params: GraphParams, bytes: &[u8]) -> Result<Self> {
        let record = 4 + dim * 4;
        if !bytes.len().is_multiple_of(record) {
            return Err(crate::error::IndexError::storage(
                "saved hnsw vectors have a partial record",
            ));
        }
        let mut live: Vec<(Key, Arc<[f32]>)> = Vec::with_capacity(bytes.len() / record);
        for chunk in bytes.chunks_exact(record) {
            let (key, v) = chunk.split_at(4);
            let key = Key::from_le_bytes([key[0], key[1], key[2], key[3]]);
            let v: Vec<f32> = v
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            live.push((key, Arc::from(v)));
        }
        let backend = Self::new(
            dim,
            GraphParams {
                capacity_hint: live.len(),
                ..params
            },
        );
        {
            let generation = backend.inner.current.load();
            let batch: Vec<(&[f32], usize)> =
                live.iter().map(|(k, v)| (&v[..], *k as usize)).collect();
            generation.graph.parallel_insert_slice(&batch);
            generation.inserted.store(live.len(), Ordering::Relaxed);
            generation.keys.lock().extend(live.iter().map(|(k, _)| *k));
        }
        backend.inner.vectors.write().extend(live);
        Ok(backend)
    }

    /// Starts a rebuild now (unless one runs) and waits for it to finish.
    pub fn rebuild_now(&self) {
        Inner::start_rebuild(&self.inner);
        self.wait_idle();
    }
}

impl Generation {
    fn new(params: &GraphParams, capacity: usize) -> Self {
        Self {
            graph: Hnsw::new(
                params.connectivity,
                capacity.max(1),
                MAX_LAYERS,
                params.ef_construction,
                UnitCosine,
            ),
            tombstones: RwLock::new(RoaringBitmap::new()),
            inserted: AtomicUsize::new(0),
            keys: Mutex::new(RoaringBitmap::new()),
        }
    }

    fn add(&self, key: Key, v: &[f32]) {
        self.graph.insert_slice((v, key as usize));
        self.keys.lock().insert(key);
        self.inserted.fetch_add(1, Ordering::Relaxed);
    }
}

impl Inner {
    fn needs_rebuild(&self) -> bool {
        let g = self.current.load();
        rebuild::due(
            g.tombstones.read().len() as usize,
            g.inserted.load(Ordering::Relaxed),
            self.params.rebuild_tombstone_ratio,
        )
    }

    fn start_rebuild(this: &Arc<Self>) {
        let inner = Arc::clone(this);
        this.rebuilds.start("hnsw-rebuild", move || inner.rebuild());
    }

    fn rebuild(&self) {
        // The log is already on, so every write after this snapshot is replayed.
        let live: Vec<(Key, Arc<[f32]>)> = self
            .vectors
            .read()
            .iter()
            .map(|(k, v)| (*k, Arc::clone(v)))
            .collect();
        let next = Generation::new(&self.params, live.len() + live.len() / 4);
        let batch: Vec<(&[f32], usize)> = live.iter().map(|(k, v)| (&v[..], *k as usize)).collect();
        next.graph.parallel_insert_slice(&batch);
        next.inserted.store(live.len(), Ordering::Relaxed);
        next.keys.lock().extend(live.iter().map(|(k, _)| *k));
        drop(batch);
        drop(live);
        while let Some(ops) = self.rebuilds.take_long_log() {
            self.replay(&next, &ops);
        }
        let old = {
            let _exclusive = self.gate.write();
            self.replay(&next, &self.rebuilds.finish());
            self.current.swap(Arc::new(next))
        };
        self.rebuilds.swapped();
        // hnsw_rs drops its graph on the rayon pool: never do that under the gate.
        drop(old);
    }

    fn replay(&self, next: &Generation, ops: &[Op]) {
        for op in ops {
            match *op {
                Op::Insert(key) => {
                    if next.keys.lock().contains(key) {
                        continue;
                    }
                    let v = self.vectors.read().get(&key).cloned();
                    if let Some(v) = v {
                        next.add(key, &v);
                    }
                }
                Op::Remove(key) => {
                    if next.keys.lock().contains(key) {
                        next.tombstones.write().insert(key);
                    }
                }
            }
        }
    }
}

impl AnnBackend for HnswBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Hnsw
    }

    fn insert(&self, key: Key, vector: &[f32]) -> Result<()> {
        let inner = &self.inner;
        let _shared = inner.gate.read();
        inner.vectors.write().insert(key, Arc::from(vector));
        inner.current.load().add(key, vector);
        inner.rebuilds.log(Op::Insert(key));
        Ok(())
    }

    fn remove(&self, key: Key) -> Result<()> {
        let inner = &self.inner;
        {
            let _shared = inner.gate.read();
            if inner.vectors.write().remove(&key).is_none() {
                return Ok(());
            }
            inner.current.load().tombstones.write().insert(key);
            inner.rebuilds.log(Op::Remove(key));
        }
        if inner.needs_rebuild() {
            Inner::start_rebuild(inner);
        }
        Ok(())
    }

    fn scan(&self, keys: &RoaringBitmap, visit: &mut dyn FnMut(Key, &[f32])) {
        let vectors = self.inner.vectors.read();
        for key in keys {
            if let Some(v) = vectors.get(&key) {
                visit(key, v);
            }
        }
    }

    fn vector(&self, key: Key) -> Option<Vec<f32>> {
        self.inner.vectors.read().get(&key).map(|v| v.to_vec())
    }

    fn holds(&self, key: Key, vector: &[f32]) -> bool {
        self.inner
            .vectors
            .read()
            .get(&key)
            .is_some_and(|v| **v == *vector)
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<Accept<'_>>,
    ) -> Result<Vec<Scored>> {
        let generation = self.inner.current.load_full();
        if generation.inserted.load(Ordering::Relaxed) == 0 || k == 0 {
            return Ok(Vec::new());
        }
        // A snapshot, so deletes never wait for this search.
        let dead = generation.tombstones.read().clone();
        let wanted = ef.max(k);
        let keep = |id: &usize| {
            let key = *id as Key;
            !dead.contains(key) && accept.is_none_or(|a| a(key))
        };
        let found = if dead.is_empty() && accept.is_none() {
            generation.graph.search(query, wanted, ef)
        } else {
            generation
                .graph
                .search_filter(query, wanted, ef, Some(&keep))
        };
        let mut out: Vec<Scored> = found
            .into_iter()
            .filter(|n| keep(&n.d_id))
            .map(|n| Scored {
                key: n.d_id as Key,
                score: 1.0 - n.distance,
            })
            .collect();
        out.truncate(k);
        Ok(out)
    }

    fn len(&self) -> usize {
        self.inner.vectors.read().len()
    }

    fn memory_bytes(&self) -> usize {
        // hnsw_rs reports nothing, so this is an estimate from its data layout:
        // each point owns a vector copy, 16 neighbour lists, and per neighbour an
        // `Arc<PointWithOrder>` (~40 bytes); the live-vector map holds one more copy.
        let vec_bytes = self.inner.dim * 4;
        let inserted = self.inner.current.load().inserted.load(Ordering::Relaxed);
        let per_point = vec_bytes + 80 + MAX_LAYERS * 24 + self.inner.params.connectivity * 2 * 40;
        let live = self.len();
        inserted * per_point + live * (vec_bytes + 56)
    }

    fn save(&self) -> Result<Vec<u8>> {
        // The graph is rebuilt on restore: hnsw_rs's own dump format needs files.
        let vectors = self.inner.vectors.read();
        let mut out = Vec::with_capacity(vectors.len() * (4 + self.inner.dim * 4));
        for (key, v) in vectors.iter() {
            out.extend(key.to_le_bytes());
            out.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        }
        Ok(out)
    }

    fn tombstones(&self) -> usize {
        self.inner.current.load().tombstones.read().len() as usize
    }

    fn rebuilds_completed(&self) -> u64 {
        self.inner.rebuilds.completed()
    }

    fn wait_idle(&self) {
        self.inner.rebuilds.wait_idle();
    }
}
