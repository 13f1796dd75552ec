//! The `usearch` backend: native removal, capacity grown on demand.
//!
//! usearch keeps one search context per "thread slot" reserved up front and
//! fails an operation when none is free, so a small semaphore bounds the
//! operations in flight to the reserved slots. Growing the capacity must not
//! overlap any operation, hence the `RwLock` taken exclusively only to grow.
//!
//! Beside an f16 or f32 graph sit [`CoarseRows`], an 8-bit copy of each
//! vector that lets an exact scan read the graph's vectors only for the keys
//! that may make its top k.
//!
//! An i8 graph holds our codes, not usearch's: each vector rounded at its own
//! scale ([`quantize`]), measured by cosine, which ignores that scale.
//! usearch's own cast truncates every vector at one fixed scale, which uses
//! a few of the 8 bits of a unit vector's small components and left recall@10
//! near 0.92 (docs/benchmarks.md, "An 8-bit graph of our own codes"). Beside
//! it sit [`HalfRows`], each vector at f16: a search scores the walk's
//! candidates from them and an exact scan reads them, so an i8 graph answers
//! with f16's scores at the speed of a walk over codes. Its saved form is
//! usearch's bytes followed by the rows ([`I8_WITH_HALVES_MAGIC`]).

use parking_lot::{Condvar, Mutex, RwLock};
use roaring::RoaringBitmap;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
use xxhash_rust::xxh3::xxh3_64;

use super::coarse::{CoarseRows, quantize};
use super::half_rows::{HalfRows, halves_of, widen_halves};
use super::saved::{Reader, broken};
use super::{
    Accept, AnnBackend, BackendKind, GraphParams, Quantization, Scored, rescored, scan_top_k,
};
use crate::Key;
use crate::error::{IndexError, Result};
use crate::topk::TopK;
use crate::vector;

/// Operations that may run inside usearch at once.
const THREAD_SLOTS: usize = 64;
/// Smallest capacity reserved.
const MIN_CAPACITY: usize = 1024;
/// Attempts to add after growing the capacity.
const ADD_ATTEMPTS: usize = 3;

/// A counting semaphore over usearch's thread slots.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock();
        while *free == 0 {
            self.freed.wait(&mut free);
        }
        *free -= 1;
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock() += 1;
        self.0.freed.notify_one();
    }
}

/// ANN backend over `usearch`: unit vectors at f32 or f16 under the inner
/// product, or as 8-bit codes under the cosine.
pub struct UsearchBackend {
    index: RwLock<Index>,
    slots: Slots,
    dim: usize,
    /// The 8-bit rows exact scans start from; `None` for an i8 graph.
    coarse: Option<RwLock<CoarseRows>>,
    /// An i8 graph's vectors at f16, which score its candidates and serve
    /// its scans; `None` for other graphs and for an i8 graph saved without
    /// them (before they existed), which answers from its codes.
    halves: Option<RwLock<HalfRows>>,
    quantization: Quantization,
}

/// Puts our f32 dot product under an f32 graph in place of usearch's, which
/// sums in f64: twice the work, and 1.3-1.5× the search QPS when replaced
/// (docs/benchmarks.md). usearch's f16 kernel already sums in f32 and is
/// kept. Goes by the kind and width the graph holds, which after a load are
/// the saved ones.
fn install_kernel(index: &mut Index) {
    if index.scalar_kind() == ScalarKind::F32 {
        let dim = index.dimensions();
        index.change_metric::<f32>(Box::new(move |a, b| {
            // SAFETY: usearch passes two vectors of the graph's `dim` floats.
            let (a, b) = unsafe {
                (
                    std::slice::from_raw_parts(a, dim),
                    std::slice::from_raw_parts(b, dim),
                )
            };
            1.0 - vector::dot(a, b)
        }));
    }
}

/// The element kind a graph of `quantization` holds.
fn scalar_of(quantization: Quantization) -> ScalarKind {
    match quantization {
        Quantization::F32 => ScalarKind::F32,
        Quantization::F16 => ScalarKind::F16,
        Quantization::I8 => ScalarKind::I8,
    }
}

/// The quantization of a graph holding `kind`, if we build such graphs.
fn quantization_of(kind: ScalarKind) -> Option<Quantization> {
    match kind {
        ScalarKind::F32 => Some(Quantization::F32),
        ScalarKind::F16 => Some(Quantization::F16),
        ScalarKind::I8 => Some(Quantization::I8),
        _ => None,
    }
}

/// The metric a graph of `quantization` measures with: the inner product of
/// unit vectors, or the cosine of codes, each at its own scale.
fn metric_of(quantization: Quantization) -> MetricKind {
    match quantization {
        Quantization::F32 | Quantization::F16 => MetricKind::IP,
        Quantization::I8 => MetricKind::Cos,
    }
}

/// `v`'s 8-bit codes, as an i8 graph stores and searches them.
fn codes(v: &[f32]) -> Vec<i8> {
    let mut codes = vec![0; v.len()];
    quantize(v, &mut codes);
    codes
}

/// The codes of a vector kept at half precision: an i8 graph quantizes what
/// its row keeps, so a row read back (from the records, after a vector-free
/// snapshot) gives the very same codes.
fn codes_of_halves(halves: &[half::f16]) -> Vec<i8> {
    let mut wide = vec![0f32; halves.len()];
    widen_halves(halves, &mut wide);
    codes(&wide)
}

/// Codes read back from an i8 graph as a unit vector: their direction, which
/// is all the cosine the graph measures keeps of a vector.
fn widen_codes(codes: &[i8], out: &mut [f32]) {
    let norm = codes
        .iter()
        .map(|c| f32::from(*c) * f32::from(*c))
        .sum::<f32>()
        .sqrt();
    let inv = if norm > 0.0 { norm.recip() } else { 0.0 };
    for (o, c) in out.iter_mut().zip(codes) {
        *o = f32::from(*c) * inv;
    }
}

/// Reads a graph's vectors back as f32 whatever kind it holds, with buffers
/// kept from key to key (a scan reads many).
struct Widener {
    kind: ScalarKind,
    halves: Vec<i16>,
    bits: Vec<half::f16>,
    codes: Vec<i8>,
    out: Vec<f32>,
}

impl Widener {
    /// Buffers for the kind and width `index` holds.
    fn new(index: &Index) -> Self {
        let (kind, dim) = (index.scalar_kind(), index.dimensions());
        let wanted = |k: ScalarKind| if kind == k { dim } else { 0 };
        Self {
            kind,
            halves: vec![0; wanted(ScalarKind::F16)],
            bits: vec![half::f16::ZERO; wanted(ScalarKind::F16)],
            codes: vec![0; wanted(ScalarKind::I8)],
            out: vec![0.0; dim],
        }
    }

    /// The vector of `key` as f32, if the graph holds it.
    fn read(&mut self, index: &Index, key: Key) -> Option<&[f32]> {
        let key = u64::from(key);
        let found = match self.kind {
            ScalarKind::F16 => index.get(key, usearch::f16::from_mut_i16s(&mut self.halves)),
            ScalarKind::I8 => index.get(key, self.codes.as_mut_slice()),
            _ => index.get(key, self.out.as_mut_slice()),
        };
        if !matches!(found, Ok(1)) {
            return None;
        }
        match self.kind {
            // usearch widens f16 one element at a time; reading the stored
            // halves and widening them with F16C is several times faster.
            ScalarKind::F16 => {
                for (b, h) in self.bits.iter_mut().zip(&self.halves) {
                    *b = half::f16::from_bits(*h as u16);
                }
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(&self.bits[..], &mut self.out);
            }
            ScalarKind::I8 => widen_codes(&self.codes, &mut self.out),
            _ => {}
        }
        Some(&self.out)
    }
}

/// One search of `index` for `query` as the graph takes it (`f32`, or `i8` codes).
fn search_as<T: usearch::VectorType>(
    index: &Index,
    query: &[T],
    wanted: usize,
    accept: Option<Accept<'_>>,
) -> Result<usearch::ffi::Matches> {
    match accept {
        None => index.search(query, wanted),
        // Keys are ours, always below 2^32.
        Some(accept) => index.filtered_search(query, wanted, |key: u64| accept(key as Key)),
    }
    .map_err(backend_error)
}

fn backend_error(e: impl std::fmt::Display) -> IndexError {
    IndexError::Backend {
        backend: "usearch",
        message: e.to_string(),
    }
}

impl UsearchBackend {
    /// An empty index for `dim`-dimensional vectors; `params` must be validated.
    pub fn new(dim: usize, params: &GraphParams) -> Result<Self> {
        let backend = Self::without_kernel(dim, params)?;
        install_kernel(&mut backend.index.write());
        Ok(backend)
    }

    /// [`UsearchBackend::new`] with usearch's own distance kernel.
    fn without_kernel(dim: usize, params: &GraphParams) -> Result<Self> {
        let options = IndexOptions {
            dimensions: dim,
            metric: metric_of(params.quantization),
            quantization: scalar_of(params.quantization),
            connectivity: params.connectivity,
            expansion_add: params.ef_construction,
            // Each search asks for `max(k, ef)` results, which usearch uses as
            // its search width; a global width would race between queries.
            expansion_search: 1,
            multi: false,
        };
        let index = Index::new(&options).map_err(backend_error)?;
        index
            .reserve_capacity_and_threads(params.capacity_hint.max(MIN_CAPACITY), THREAD_SLOTS)
            .map_err(backend_error)?;
        let i8 = params.quantization == Quantization::I8;
        Ok(Self {
            index: RwLock::new(index),
            slots: Slots {
                free: Mutex::new(THREAD_SLOTS),
                freed: Condvar::new(),
            },
            dim,
            coarse: (!i8).then(|| RwLock::new(CoarseRows::new(dim))),
            halves: i8.then(|| RwLock::new(HalfRows::new(dim))),
            quantization: params.quantization,
        })
    }

    /// Loads a graph saved by [`AnnBackend::save`].
    /// The graph keeps the quantization it was saved with, whatever `params`
    /// now asks for, until it is rebuilt.
    pub fn restore(dim: usize, params: &GraphParams, bytes: &[u8]) -> Result<Self> {
        let (bytes, halves) = unframe(dim, bytes)?;
        // The kernel goes in after the load, which resets the metric.
        let mut backend = Self::without_kernel(dim, params)?;
        {
            let mut index = backend.index.write();
            index.load_from_buffer(bytes).map_err(backend_error)?;
            install_kernel(&mut index);
            if index.dimensions() != dim {
                return Err(backend_error(format!(
                    "saved graph has {} dimensions, expected {dim}",
                    index.dimensions()
                )));
            }
            // What we add and search must be what the graph holds. An i8
            // graph of usearch's own codes (saved before ours, under the inner
            // product) is refused, and so rebuilt from the records.
            let saved = quantization_of(index.scalar_kind())
                .filter(|q| metric_of(*q) == index.metric_kind());
            let Some(saved) = saved else {
                return Err(backend_error(format!(
                    "saved graph holds {:?} vectors under {:?}; it is rebuilt",
                    index.scalar_kind(),
                    index.metric_kind(),
                )));
            };
            backend.quantization = saved;
            index.change_expansion_search(1);
            let capacity = (index.size() + index.size() / 4).max(MIN_CAPACITY);
            index
                .reserve_capacity_and_threads(capacity, THREAD_SLOTS)
                .map_err(backend_error)?;
        }
        if halves.is_some() && backend.quantization != Quantization::I8 {
            return Err(broken(
                "graph kind (f16 rows beside a graph that is not i8)",
            ));
        }
        // A layout usearch reads and we do not leaves no rows: scans then
        // read every vector.
        backend.coarse = (backend.quantization != Quantization::I8)
            .then(|| coarse_of_saved(backend.quantization, dim, bytes).ok())
            .flatten()
            .map(RwLock::new);
        backend.halves = halves.map(RwLock::new);
        Ok(backend)
    }

    /// `vector` as the graph stores it, widened back to f32: what a scan reads.
    fn as_stored(&self, vector: &[f32]) -> Vec<f32> {
        match self.quantization {
            Quantization::F16 => vector
                .iter()
                .map(|x| half::f16::from_f32(*x).to_f32())
                .collect(),
            _ => vector.to_vec(),
        }
    }

    /// Adds `vector` (or its `codes`, for an i8 graph) to the graph, growing
    /// it as needed, and keeps its 8-bit row when `stored` is given.
    fn insert_in_graph(
        &self,
        key: Key,
        vector: &[f32],
        stored: Option<&[f32]>,
        codes: Option<&[i8]>,
    ) -> Result<()> {
        let mut last_error = None;
        for _ in 0..ADD_ATTEMPTS {
            let capacity = {
                let index = self.index.read();
                let capacity = index.capacity();
                // Room for every operation that may be adding at this moment.
                if index.size() + THREAD_SLOTS < capacity {
                    let added = match codes {
                        Some(codes) => index.add(u64::from(key), codes),
                        None => index.add(u64::from(key), vector),
                    };
                    match added {
                        Ok(()) => {
                            if let (Some(coarse), Some(stored)) = (&self.coarse, stored) {
                                coarse.write().put(key, stored);
                            }
                            return Ok(());
                        }
                        Err(e) => last_error = Some(backend_error(e)),
                    }
                }
                capacity
            };
            // Removed slots are reused but still count against capacity, so a
            // failed add may just need room.
            self.grow(capacity)?;
        }
        Err(last_error.unwrap_or_else(|| backend_error("could not reserve capacity")))
    }

    /// usearch's own saved form of the graph, vectors (or codes) included.
    fn save_graph(&self) -> Result<Vec<u8>> {
        let index = self.index.read();
        let mut buf = vec![0u8; index.serialized_length()];
        index.save_to_buffer(&mut buf).map_err(backend_error)?;
        Ok(buf)
    }

    /// Doubles the capacity unless another thread already made room.
    fn grow(&self, seen_capacity: usize) -> Result<()> {
        let index = self.index.write();
        if index.capacity() == seen_capacity {
            let target = (seen_capacity * 2).max(MIN_CAPACITY);
            index
                .reserve_capacity_and_threads(target, THREAD_SLOTS)
                .map_err(backend_error)?;
        }
        Ok(())
    }
}

impl AnnBackend for UsearchBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Usearch
    }

    fn insert(&self, key: Key, vector: &[f32]) -> Result<()> {
        let _slot = self.slots.acquire();
        // Computed before taking any lock: the lock on the graph is not re-entrant.
        let stored = self.coarse.as_ref().map(|_| self.as_stored(vector));
        let halves = (self.quantization == Quantization::I8).then(|| halves_of(vector));
        let codes = halves.as_deref().map(codes_of_halves);
        // The row goes in first, so the graph never offers a key without one.
        if let (Some(rows), Some(halves)) = (&self.halves, &halves) {
            rows.write().put(key, halves);
        }
        let inserted = self.insert_in_graph(key, vector, stored.as_deref(), codes.as_deref());
        if inserted.is_err()
            && let Some(rows) = &self.halves
        {
            rows.write().remove(key);
        }
        inserted
    }

    fn remove(&self, key: Key) -> Result<()> {
        let _slot = self.slots.acquire();
        if let Some(coarse) = &self.coarse {
            coarse.write().remove(key);
        }
        if let Some(rows) = &self.halves {
            rows.write().remove(key);
        }
        self.index
            .read()
            .remove(u64::from(key))
            .map(|_| ())
            .map_err(backend_error)
    }

    fn scan(&self, keys: &RoaringBitmap, visit: &mut dyn FnMut(Key, &[f32])) {
        if let Some(rows) = &self.halves {
            let rows = rows.read();
            let mut out = vec![0f32; self.dim];
            for key in keys {
                if let Some(row) = rows.get(key) {
                    widen_halves(row, &mut out);
                    visit(key, &out);
                }
            }
            return;
        }
        let index = self.index.read();
        let mut widener = Widener::new(&index);
        for key in keys {
            if let Some(vector) = widener.read(&index, key) {
                visit(key, vector);
            }
        }
    }

    fn exact(&self, query: &[f32], k: usize, keys: &RoaringBitmap) -> Vec<Scored> {
        if let Some(rows) = &self.halves {
            return rows.read().top_k(query, k, keys);
        }
        match &self.coarse {
            Some(coarse) => {
                let candidates = coarse.read().candidates(query, k, keys);
                scan_top_k(self, query, k, &candidates)
            }
            None => scan_top_k(self, query, k, keys),
        }
    }

    fn holds(&self, key: Key, vector: &[f32]) -> bool {
        if vector.len() != self.dim {
            return false;
        }
        if let Some(rows) = &self.halves {
            // The graph's codes follow from the row, so the row decides: is
            // it what `insert` would keep of `vector`?
            let wanted = halves_of(vector);
            return rows.read().get(key).is_some_and(|row| {
                row.iter()
                    .zip(&wanted)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            });
        }
        let index = self.index.read();
        match index.scalar_kind() {
            ScalarKind::F16 => {
                let mut halves = vec![0i16; self.dim];
                matches!(
                    index.get(u64::from(key), usearch::f16::from_mut_i16s(&mut halves)),
                    Ok(1)
                ) && halves
                    .iter()
                    .zip(vector)
                    .all(|(h, v)| *h as u16 == half::f16::from_f32(*v).to_bits())
            }
            ScalarKind::F32 => {
                let mut stored = vec![0f32; self.dim];
                matches!(index.get(u64::from(key), &mut stored), Ok(1)) && stored == vector
            }
            // Lossier kinds: no cheap exact check; the update re-inserts.
            _ => false,
        }
    }

    fn vector(&self, key: Key) -> Option<Vec<f32>> {
        if let Some(rows) = &self.halves {
            return rows.read().get(key).map(|row| {
                let mut out = vec![0f32; self.dim];
                widen_halves(row, &mut out);
                out
            });
        }
        let index = self.index.read();
        Widener::new(&index).read(&index, key).map(<[f32]>::to_vec)
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<Accept<'_>>,
    ) -> Result<Vec<Scored>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let wanted = ef.max(k);
        let _slot = self.slots.acquire();
        let index = self.index.read();
        if index.size() == 0 {
            return Ok(Vec::new());
        }
        let matches = match self.quantization {
            Quantization::I8 => search_as(&index, codes(query).as_slice(), wanted, accept)?,
            Quantization::F32 | Quantization::F16 => search_as(&index, query, wanted, accept)?,
        };
        if let Some(rows) = &self.halves {
            // The walk's best candidates, scored again at f16: the codes'
            // order among near-ties is not the vectors'.
            let rows = rows.read();
            let mut best = TopK::new(k);
            for (key, d) in matches
                .keys
                .iter()
                .zip(&matches.distances)
                .take(rescored(k))
            {
                let key = *key as Key;
                let score = rows.score(query, key).unwrap_or(1.0 - d);
                best.push(Scored { key, score });
            }
            return Ok(best.into_sorted());
        }
        Ok(matches
            .keys
            .iter()
            .zip(&matches.distances)
            .take(k)
            .map(|(key, d)| Scored {
                key: *key as Key,
                score: 1.0 - d,
            })
            .collect())
    }

    fn len(&self) -> usize {
        self.index.read().size()
    }

    fn memory_bytes(&self) -> usize {
        self.index.read().memory_usage()
            + self.coarse.as_ref().map_or(0, |c| c.read().bytes())
            + self.halves.as_ref().map_or(0, |h| h.read().bytes())
    }

    fn save(&self) -> Result<Vec<u8>> {
        let graph = self.save_graph()?;
        Ok(match &self.halves {
            Some(rows) => frame(&graph, &rows.read()),
            None => graph,
        })
    }

    fn save_without_vectors(&self) -> Result<Option<Vec<u8>>> {
        // An i8 graph's codes follow from its f16 rows, which follow from the
        // records' vectors; without the rows they do not.
        let leaves_out = match self.index.read().scalar_kind() {
            ScalarKind::F16 | ScalarKind::F32 => true,
            ScalarKind::I8 => self.halves.is_some(),
            _ => false,
        };
        if !leaves_out {
            return Ok(None);
        }
        let saved = self.save_graph()?;
        let (rows, cols, matrix, rest) = split_saved(&saved)?;
        let mut out = Vec::with_capacity(24 + rows * 8 + rest.len());
        out.extend(VECTOR_FREE_MAGIC);
        out.extend((rows as u64).to_le_bytes());
        out.extend((cols as u64).to_le_bytes());
        for row in matrix.chunks_exact(cols.max(1)).take(rows) {
            out.extend(xxh3_64(row).to_le_bytes());
        }
        out.extend(rest);
        Ok(Some(out))
    }
}

/// Starts a graph saved without its vectors ([`AnnBackend::save_without_vectors`]).
const VECTOR_FREE_MAGIC: &[u8; 8] = b"USNOVEC1";

/// Starts an i8 graph saved with its f16 rows: `[magic][graph length u64]`,
/// usearch's saved graph, then the rows ([`HalfRows::encode`]). An i8 graph
/// saved before the rows existed is usearch's bytes alone.
const I8_WITH_HALVES_MAGIC: &[u8; 8] = b"USI8HLF1";

/// An i8 graph's saved form with its rows.
fn frame(graph: &[u8], rows: &HalfRows) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + graph.len() + rows.bytes());
    out.extend(I8_WITH_HALVES_MAGIC);
    out.extend((graph.len() as u64).to_le_bytes());
    out.extend(graph);
    rows.encode(&mut out);
    out
}

/// usearch's saved graph and, for a [`frame`]d one, its f16 rows.
fn unframe(dim: usize, bytes: &[u8]) -> Result<(&[u8], Option<HalfRows>)> {
    let Some(framed) = bytes.strip_prefix(I8_WITH_HALVES_MAGIC) else {
        return Ok((bytes, None));
    };
    let mut r = Reader(framed);
    let len = r.usize()?;
    let graph = r.take(len)?;
    Ok((graph, Some(HalfRows::decode(dim, r.0)?)))
}

// usearch's serialized layout (`index_dense_gt::save_to_stream` with the
// default configuration, usearch 2.x), as far as a vector-free graph reads it:
// the vector matrix `[rows u32][bytes per vector u32][rows x bytes]` in slot
// order, a 64-byte head, then the graph: a header of five u64 (node count,
// connectivity, base connectivity, top level, entry slot), each node's level
// (i16), then each node: its key (u64), its level (i16), its base-level
// neighbours `[count u32][base connectivity x slot u32]` and, per level above,
// `[count u32][connectivity x slot u32]`. A removed node's key is u64::MAX.
const DENSE_HEAD_BYTES: usize = 64;
const GRAPH_HEADER_BYTES: usize = 40;
const NODE_HEAD_BYTES: usize = 10;
const REMOVED_KEY: u64 = u64::MAX;

/// usearch's saved bytes split into rows, bytes per vector, the vector
/// matrix and everything after it.
fn split_saved(saved: &[u8]) -> Result<(usize, usize, &[u8], &[u8])> {
    let mut r = Reader(saved);
    let rows = r.u32()? as usize;
    let cols = r.u32()? as usize;
    let matrix = r.take(
        rows.checked_mul(cols)
            .ok_or_else(|| broken("matrix size"))?,
    )?;
    Ok((rows, cols, matrix, r.0))
}

/// The row of every key of a saved graph, read in place from its vectors:
/// no per-key lookup.
fn coarse_of_saved(quantization: Quantization, dim: usize, saved: &[u8]) -> Result<CoarseRows> {
    let mut rows = CoarseRows::new(dim);
    let (count, cols, matrix, graph) = split_saved(saved)?;
    let keys = slot_keys(graph, count)?;
    let mut widened = vec![0f32; dim];
    for (row, key) in matrix.chunks_exact(cols.max(1)).zip(keys) {
        let Some(key) = key else { continue };
        if !widen(quantization, row, &mut widened) {
            return Err(broken("bytes per vector"));
        }
        rows.put(key, &widened);
    }
    Ok(rows)
}

/// Widens one saved row (`quantization`'s bytes, little-endian) into `out`;
/// false when the row is not `out.len()` elements of that kind.
fn widen(quantization: Quantization, row: &[u8], out: &mut [f32]) -> bool {
    match quantization {
        Quantization::F16 if row.len() == out.len() * 2 => {
            for (o, b) in out.iter_mut().zip(row.chunks_exact(2)) {
                *o = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
            true
        }
        Quantization::F32 if row.len() == out.len() * 4 => {
            for (o, b) in out.iter_mut().zip(row.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            true
        }
        _ => false,
    }
}

/// The key of each of the graph's `rows` slots (`None` for a removed one),
/// read from the saved graph that follows the vectors.
fn slot_keys(graph: &[u8], rows: usize) -> Result<Vec<Option<Key>>> {
    let mut g = Reader(graph);
    g.take(DENSE_HEAD_BYTES)?;
    let nodes = g.usize()?;
    let connectivity = g.usize()?;
    let base = g.usize()?;
    g.take(GRAPH_HEADER_BYTES - 24)?;
    if nodes != rows {
        return Err(broken("node count"));
    }
    let levels = g.take(nodes.checked_mul(2).ok_or_else(|| broken("nodes"))?)?;
    let base_bytes = 4 + base.checked_mul(4).ok_or_else(|| broken("connectivity"))?;
    let level_bytes = 4 + connectivity
        .checked_mul(4)
        .ok_or_else(|| broken("connectivity"))?;
    let mut keys = Vec::with_capacity(nodes);
    for level in levels.chunks_exact(2) {
        let level = i16::from_le_bytes([level[0], level[1]]);
        let level = usize::try_from(level).map_err(|_| broken("level"))?;
        let node = level
            .checked_mul(level_bytes)
            .and_then(|n| n.checked_add(NODE_HEAD_BYTES + base_bytes))
            .ok_or_else(|| broken("level"))?;
        let key = Reader(g.take(node)?).u64()?;
        // Our keys are u32; anything else is a removed slot.
        keys.push(
            (key != REMOVED_KEY)
                .then(|| Key::try_from(key).ok())
                .flatten(),
        );
    }
    if !g.0.is_empty() {
        return Err(broken("length (trailing bytes)"));
    }
    Ok(keys)
}

/// A graph saved without its vectors, being given them back: each slot takes
/// the vector whose bytes match the fingerprint saved for it, and a slot
/// nobody fills stays zero (its point is re-inserted or deleted when the
/// index is reconciled with the records).
pub(crate) struct VectorFree<'a> {
    quantization: Quantization,
    /// An i8 graph's f16 rows, filled beside its codes.
    halves: Option<HalfRows>,
    dim: usize,
    cols: usize,
    fingerprints: &'a [u8],
    rest: &'a [u8],
    slot_of: hashbrown::HashMap<u64, usize>,
    matrix: Vec<u8>,
    /// Slots filled so far (a slot filled twice counts once).
    filled: RoaringBitmap,
}

impl<'a> VectorFree<'a> {
    /// Reads a graph saved by [`AnnBackend::save_without_vectors`]; `None`
    /// when `bytes` is not one (a graph saved with its vectors).
    pub(crate) fn parse(bytes: &'a [u8], dim: usize, params: &GraphParams) -> Result<Option<Self>> {
        let Some(body) = bytes.strip_prefix(VECTOR_FREE_MAGIC) else {
            return Ok(None);
        };
        let mut r = Reader(body);
        let rows = r.usize()?;
        let cols = r.usize()?;
        let per_element = match params.quantization {
            Quantization::F16 => 2,
            Quantization::F32 => 4,
            Quantization::I8 => 1,
        };
        if cols != dim * per_element {
            return Err(broken("bytes per vector"));
        }
        let fingerprints = r.take(rows.checked_mul(8).ok_or_else(|| broken("rows"))?)?;
        let rest = r.0;
        let slot_of = slot_keys(rest, rows)?
            .into_iter()
            .enumerate()
            .filter_map(|(slot, key)| Some((u64::from(key?), slot)))
            .collect();
        Ok(Some(Self {
            quantization: params.quantization,
            halves: (params.quantization == Quantization::I8).then(|| HalfRows::new(dim)),
            dim,
            cols,
            fingerprints,
            rest,
            slot_of,
            matrix: vec![0; rows * cols],
            filled: RoaringBitmap::new(),
        }))
    }

    /// Gives `key` its unit-length `vector` back if it is the one the graph
    /// was saved with; returns whether it was.
    pub(crate) fn fill(&mut self, key: Key, vector: &[f32]) -> bool {
        let Some(&slot) = self.slot_of.get(&u64::from(key)) else {
            return false;
        };
        if vector.len() != self.dim {
            return false;
        }
        let halves = (self.quantization == Quantization::I8).then(|| halves_of(vector));
        let bytes: Vec<u8> = match (self.quantization, &halves) {
            (Quantization::F16, _) => vector
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect(),
            (Quantization::I8, Some(halves)) => codes_of_halves(halves)
                .into_iter()
                .map(|c| c as u8)
                .collect(),
            _ => vector.iter().flat_map(|x| x.to_le_bytes()).collect(),
        };
        let saved = &self.fingerprints[slot * 8..slot * 8 + 8];
        if xxh3_64(&bytes).to_le_bytes() != saved {
            return false;
        }
        self.matrix[slot * self.cols..(slot + 1) * self.cols].copy_from_slice(&bytes);
        if let (Some(rows), Some(halves)) = (&mut self.halves, &halves) {
            rows.put(key, halves);
        }
        // Slots number fewer than 2^32: the graph's slot ids are u32.
        self.filled.insert(slot as u32);
        true
    }

    /// Slots given their vector back.
    pub(crate) fn filled(&self) -> usize {
        self.filled.len() as usize
    }

    /// The graph's saved form, vectors included, for [`UsearchBackend::restore`]:
    /// usearch's own, [`frame`]d with the f16 rows for an i8 graph.
    pub(crate) fn into_saved(self) -> Result<Vec<u8>> {
        let rows = u32::try_from(self.slot_count()).map_err(|_| broken("rows"))?;
        let cols = u32::try_from(self.cols).map_err(|_| broken("bytes per vector"))?;
        let mut out = Vec::with_capacity(8 + self.matrix.len() + self.rest.len());
        out.extend(rows.to_le_bytes());
        out.extend(cols.to_le_bytes());
        out.extend(&self.matrix);
        out.extend(self.rest);
        Ok(match &self.halves {
            Some(halves) => frame(&out, halves),
            None => out,
        })
    }

    fn slot_count(&self) -> usize {
        self.fingerprints.len() / 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::clustered_units;

    const DIM: usize = 8;

    fn backend(quantization: Quantization, n: usize) -> (UsearchBackend, Vec<Vec<f32>>) {
        filled(quantization, DIM, n, 7)
    }

    /// A graph of `n` clustered unit vectors of width `dim`, keyed `0..n`.
    fn filled(
        quantization: Quantization,
        dim: usize,
        n: usize,
        seed: u64,
    ) -> (UsearchBackend, Vec<Vec<f32>>) {
        let b = UsearchBackend::new(dim, &params(quantization)).unwrap();
        let vectors = clustered_units(n, dim, 4, 0.3, seed);
        for (key, v) in vectors.iter().enumerate() {
            b.insert(key as Key, v).unwrap();
        }
        (b, vectors)
    }

    fn params(quantization: Quantization) -> GraphParams {
        GraphParams {
            quantization,
            ..GraphParams::default()
        }
    }

    #[test]
    fn an_f32_graph_scores_with_our_kernel_before_and_after_a_restore() {
        // Not a multiple of 16, so the kernel's tail runs too. usearch's own
        // kernel sums in f64: on these vectors its scores differ from ours in
        // the last bits, so a graph that lost our kernel fails.
        const WIDE: usize = 100;
        let (b, vectors) = filled(Quantization::F32, WIDE, 200, 11);
        let restored =
            UsearchBackend::restore(WIDE, &params(Quantization::F32), &b.save().unwrap()).unwrap();
        for (name, backend) in [("new", &b), ("restored", &restored)] {
            let mut checked = 0;
            for query in vectors.iter().step_by(20) {
                for hit in backend.search(query, 10, 32, None).unwrap() {
                    let ours = vector::dot(query, &vectors[hit.key as usize]);
                    assert_eq!(hit.score, 1.0 - (1.0 - ours), "{name}: key {}", hit.key);
                    checked += 1;
                }
            }
            assert_eq!(checked, 100, "{name}");
        }
    }

    #[test]
    fn a_graph_saved_without_vectors_and_filled_again_is_the_graph_saved_with_them() {
        for q in [Quantization::F16, Quantization::F32] {
            let (b, vectors) = backend(q, 300);
            b.remove(17).unwrap();
            let whole = b.save().unwrap();
            let free = b.save_without_vectors().unwrap().unwrap();
            let per_element = if q == Quantization::F16 { 2 } else { 4 };
            assert!(
                // Each vector gives way to an 8-byte fingerprint; 16 bytes of framing.
                whole.len() + 16 - free.len() == 300 * (DIM * per_element - 8),
                "{q:?}: {} vs {} bytes",
                free.len(),
                whole.len()
            );
            let mut v = VectorFree::parse(&free, DIM, &params(q)).unwrap().unwrap();
            let mut wrong = vectors[1].clone();
            wrong.swap(0, 1);
            assert!(!v.fill(1, &wrong), "{q:?}: another vector is refused");
            assert!(
                !v.fill(17, &vectors[17]),
                "{q:?}: a removed key has no slot"
            );
            assert!(
                !v.fill(999, &vectors[0]),
                "{q:?}: an unknown key has no slot"
            );
            for (key, vector) in vectors.iter().enumerate() {
                assert_eq!(v.fill(key as Key, vector), key != 17, "{q:?}: key {key}");
            }
            // usearch keeps a removed slot's old vector; a refilled one is zero.
            // Keys were inserted one by one, so key 17 is slot 17.
            let cols = DIM * per_element;
            let mut expected = whole.clone();
            expected[8 + 17 * cols..8 + 18 * cols].fill(0);
            assert!(v.into_saved().unwrap() == expected, "{q:?}: byte for byte");
            // A graph saved with its vectors is not vector-free.
            assert!(
                VectorFree::parse(&whole, DIM, &params(q))
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn a_damaged_vector_free_graph_is_an_error_never_a_panic() {
        let (b, _) = backend(Quantization::F16, 40);
        let free = b.save_without_vectors().unwrap().unwrap();
        let p = params(Quantization::F16);
        for cut in VECTOR_FREE_MAGIC.len()..free.len() {
            assert!(
                VectorFree::parse(&free[..cut], DIM, &p).is_err(),
                "cut at {cut}"
            );
        }
        assert!(
            VectorFree::parse(&free, DIM + 1, &p).is_err(),
            "other dimension"
        );
        assert!(VectorFree::parse(&free, DIM, &params(Quantization::F32)).is_err());
        let mut levels = free.clone();
        // The first node's level (after magic, rows, cols, fingerprints, head, graph header).
        let at = 24 + 40 * 8 + DENSE_HEAD_BYTES + GRAPH_HEADER_BYTES;
        levels[at + 1] = 0x7f;
        assert!(
            VectorFree::parse(&levels, DIM, &p).is_err(),
            "a level past the end"
        );
    }

    #[test]
    fn exact_scans_answer_as_a_full_scan_does_before_and_after_a_restore() {
        for q in [Quantization::F16, Quantization::F32, Quantization::I8] {
            let (b, vectors) = backend(q, 600);
            for key in [5, 77, 300] {
                b.remove(key).unwrap();
            }
            let restored = UsearchBackend::restore(DIM, &params(q), &b.save().unwrap()).unwrap();
            assert_eq!(restored.coarse.is_some(), q != Quantization::I8, "{q:?}");
            assert_eq!(restored.halves.is_some(), q == Quantization::I8, "{q:?}");
            let keys: RoaringBitmap = (0..600).filter(|k| k % 4 != 1).collect();
            for (i, query) in vectors.iter().step_by(37).enumerate() {
                for k in [1, 10] {
                    let full = scan_top_k(&b, query, k, &keys);
                    assert_eq!(full.len(), k);
                    assert!(full.iter().all(|s| ![5, 77, 300].contains(&s.key)));
                    assert_eq!(b.exact(query, k, &keys), full, "{q:?}, query {i}, k {k}");
                    assert_eq!(restored.exact(query, k, &keys), full, "{q:?} restored");
                }
            }
            // A key inserted after the restore is scanned too.
            let (new_key, target) = (1000, vectors[2].clone());
            restored.insert(new_key, &target).unwrap();
            let keys: RoaringBitmap = [2, new_key].into_iter().collect();
            let found = restored.exact(&target, 2, &keys);
            assert_eq!(found.len(), 2, "{q:?}");
        }
    }

    #[test]
    fn inserts_that_grow_the_graph_while_others_scan_all_finish() {
        let b = UsearchBackend::new(DIM, &params(Quantization::F16)).unwrap();
        let vectors = clustered_units(8000, DIM, 4, 0.3, 9);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (b, vectors) = (&b, &vectors);
                s.spawn(move || {
                    for key in (t..vectors.len()).step_by(4) {
                        b.insert(key as Key, &vectors[key]).unwrap();
                        if key % 16 == t {
                            // Only keys whose insert has returned, as a collection
                            // publishes them (a key mid-insert is not readable).
                            let keys: RoaringBitmap = (t as Key..=key as Key).step_by(4).collect();
                            assert!(!b.exact(&vectors[key], 5, &keys).is_empty());
                        }
                    }
                });
            }
        });
        assert_eq!(b.len(), 8000);
    }

    /// `query`'s exact top `k` of `vectors` (keys `0..`) by f16 rows, as an
    /// i8 graph's rows score them, and what each key scores.
    fn f16_truth(vectors: &[Vec<f32>], query: &[f32], k: usize) -> (Vec<Key>, Vec<f32>) {
        let scores: Vec<f32> = vectors
            .iter()
            .map(|v| vector::dot_f16(query, &halves_of(v)))
            .collect();
        let mut best = TopK::new(k);
        for (key, score) in scores.iter().enumerate() {
            best.push(Scored {
                key: key as Key,
                score: *score,
            });
        }
        (best.into_sorted().iter().map(|s| s.key).collect(), scores)
    }

    /// An i8 graph of 500 MiniLM-wide vectors, as built, restored from its
    /// saved bytes and restored from a vector-free save filled again.
    fn i8_graphs() -> (Vec<(&'static str, UsearchBackend)>, Vec<Vec<f32>>) {
        // 384 dimensions, as MiniLM's: a unit vector's components are near
        // 0.05, where one fixed scale of 127 leaves few steps of 8 bits.
        const WIDE: usize = 384;
        let p = params(Quantization::I8);
        let (b, vectors) = filled(Quantization::I8, WIDE, 500, 5);
        let restored = UsearchBackend::restore(WIDE, &p, &b.save().unwrap()).unwrap();
        let free = b.save_without_vectors().unwrap().unwrap();
        let mut v = VectorFree::parse(&free, WIDE, &p).unwrap().unwrap();
        for (key, vector) in vectors.iter().enumerate() {
            assert!(
                v.fill(key as Key, vector),
                "key {key} takes its vector back"
            );
        }
        let refilled = UsearchBackend::restore(WIDE, &p, &v.into_saved().unwrap()).unwrap();
        (
            vec![("new", b), ("restored", restored), ("refilled", refilled)],
            vectors,
        )
    }

    #[test]
    fn an_i8_graph_walks_on_codes_and_answers_with_its_f16_rows() {
        let (graphs, vectors) = i8_graphs();
        for (name, backend) in &graphs {
            let (mut found, mut asked) = (0, 0);
            for query in vectors.iter().step_by(25) {
                let (truth, scores) = f16_truth(&vectors, query, 10);
                let hits = backend.search(query, 10, 64, None).unwrap();
                assert_eq!(hits.len(), 10, "{name}");
                for hit in &hits {
                    // The row's score, not the codes' cosine (0.001 or more off).
                    let want = scores[hit.key as usize];
                    assert!(
                        (hit.score - want).abs() < 1e-5,
                        "{name}: key {} scores {} for {want}",
                        hit.key,
                        hit.score
                    );
                    found += usize::from(truth.contains(&hit.key));
                }
                assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "{name}");
                asked += truth.len();
                // Exact scans read the rows: brute force over f16.
                let exact: Vec<Key> = backend
                    .exact(query, 10, &(0..500).collect())
                    .iter()
                    .map(|s| s.key)
                    .collect();
                assert_eq!(exact, truth, "{name}: exact scan");
            }
            // Codes alone found 190 of these 200 at best.
            assert!(found >= 198, "{name}: {found} of {asked} exact neighbours");
            let read = backend.vector(7).unwrap();
            let row: Vec<f32> = halves_of(&vectors[7]).iter().map(|h| h.to_f32()).collect();
            assert_eq!(read, row, "{name}: key 7 reads back as its row");
            assert!(backend.holds(7, &vectors[7]), "{name}");
            assert!(!backend.holds(7, &vectors[8]), "{name}");
        }
    }

    #[test]
    fn an_i8_graph_without_rows_still_answers_from_its_codes() {
        // As saved before the rows existed: usearch's bytes alone.
        let (b, vectors) = filled(Quantization::I8, 64, 300, 3);
        let old = UsearchBackend::restore(64, &params(Quantization::I8), &b.save_graph().unwrap())
            .unwrap();
        assert!(old.halves.is_none());
        assert!(
            old.save_without_vectors().unwrap().is_none(),
            "keeps its codes"
        );
        let hits = old.search(&vectors[9], 5, 32, None).unwrap();
        assert_eq!(hits[0].key, 9);
        let read = old.vector(9).unwrap();
        assert!(vector::dot(&read, &vectors[9]) > 0.999);
        // Its next save is still usearch's bytes alone, and restores.
        let again = UsearchBackend::restore(64, &params(Quantization::I8), &old.save().unwrap());
        assert!(again.unwrap().halves.is_none());
    }

    #[test]
    fn a_damaged_i8_save_is_an_error_never_a_panic() {
        let (b, _) = filled(Quantization::I8, DIM, 40, 4);
        let saved = b.save().unwrap();
        assert!(saved.starts_with(I8_WITH_HALVES_MAGIC));
        let p = params(Quantization::I8);
        for cut in I8_WITH_HALVES_MAGIC.len()..saved.len() {
            assert!(
                UsearchBackend::restore(DIM, &p, &saved[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(UsearchBackend::restore(DIM + 1, &p, &saved).is_err());
        // f16 rows framed around a graph that is not i8.
        let (f16, _) = backend(Quantization::F16, 40);
        let mut rows = HalfRows::new(DIM);
        rows.put(0, &halves_of(&[0.5; DIM]));
        let framed = frame(&f16.save().unwrap(), &rows);
        assert!(UsearchBackend::restore(DIM, &p, &framed).is_err());
    }

    #[test]
    fn a_saved_graph_keeps_its_kind_and_one_of_usearchs_own_i8_codes_is_refused() {
        // An f16 graph restored where i8 is configured stays f16, rows and all.
        let (f16, vectors) = backend(Quantization::F16, 50);
        let kept =
            UsearchBackend::restore(DIM, &params(Quantization::I8), &f16.save().unwrap()).unwrap();
        assert_eq!(kept.quantization, Quantization::F16);
        assert!(kept.coarse.is_some());
        assert!(kept.halves.is_none());
        kept.insert(60, &vectors[3]).unwrap();
        let hits = kept.search(&vectors[3], 2, 16, None).unwrap();
        assert!(hits.iter().all(|h| h.score > 0.99), "{hits:?}");
        // An i8 graph as this backend built it before its own codes: usearch's
        // cast, under the inner product.
        let old = Index::new(&IndexOptions {
            dimensions: DIM,
            metric: MetricKind::IP,
            quantization: ScalarKind::I8,
            connectivity: 16,
            expansion_add: 64,
            expansion_search: 1,
            multi: false,
        })
        .unwrap();
        old.reserve(10).unwrap();
        old.add(1, &[0.5f32; DIM]).unwrap();
        let mut bytes = vec![0u8; old.serialized_length()];
        old.save_to_buffer(&mut bytes).unwrap();
        let refused = UsearchBackend::restore(DIM, &params(Quantization::I8), &bytes);
        assert!(refused.is_err(), "an inner-product i8 graph is rebuilt");
        let (i8, _) = backend(Quantization::I8, 50);
        let ours = UsearchBackend::restore(DIM, &params(Quantization::I8), &i8.save().unwrap());
        assert_eq!(ours.unwrap().len(), 50);
    }

    #[test]
    fn an_i8_graph_saved_without_vectors_takes_only_its_own_back() {
        let (b, vectors) = filled(Quantization::I8, DIM, 100, 8);
        let whole = b.save().unwrap();
        let free = b.save_without_vectors().unwrap().unwrap();
        let p = params(Quantization::I8);
        // Per vector, its codes (a byte an element) and its row (a u32 key
        // and two bytes an element) give way to an 8-byte fingerprint; the
        // framing differs by 8 bytes.
        assert_eq!(whole.len() - free.len(), 100 * (DIM + 4 + 2 * DIM - 8) + 8);
        let mut v = VectorFree::parse(&free, DIM, &p).unwrap().unwrap();
        let mut nudged = vectors[1].clone();
        nudged[0] += 0.01;
        assert!(!v.fill(1, &nudged), "another vector is refused");
        for (key, vector) in vectors.iter().enumerate() {
            assert!(v.fill(key as Key, vector), "key {key}");
        }
        assert!(v.into_saved().unwrap() == whole, "byte for byte");
        // Under another quantization the same bytes are refused (rebuilt).
        assert!(VectorFree::parse(&free, DIM, &params(Quantization::F16)).is_err());
    }
}
