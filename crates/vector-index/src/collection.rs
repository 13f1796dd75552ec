//! A collection: points `(id, vector, payload)` with filtered k-NN search.
//!
//! Ids are UUIDs; internally every version of a point gets a fresh `u32` key,
//! so the ANN graph, the payload bitmaps and the key→id map all speak keys.
//! An upsert inserts the new key into the graph first, then swaps the id over
//! under a short write lock, then removes the old key: a search never sees an
//! id twice or a half-written point, and never holds a lock a writer needs
//! while it walks the graph.
//!
//! A search works from a snapshot of allowed keys, so an old key must stay in
//! the graph and in the key→id map until every search that may hold it has
//! finished, or a point being updated could vanish from results for an
//! instant. Old keys are therefore retired through epoch-based reclamation
//! (`crossbeam-epoch`): searches pin the epoch, and a key is forgotten only
//! once all earlier pins are gone. A search thus sees one consistent snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use uuid::Uuid;

use crate::Key;
use crate::backend::{self, AnnBackend, BackendKind, GraphParams, Scored};
use crate::error::{IndexError, Result};
use crate::filter::{Condition, Filter};
use crate::lexical::LexicalIndex;
use crate::payload::{Field, Payload};
use crate::payload_index::{PayloadIndex, PayloadView};
use crate::planner::{Plan, PlannerConfig, Strategy};
use crate::snapshot;
use crate::text::{AnalyzerSettings, Analyzers, TextConfig};
use crate::vector::normalized;

/// Settings of a collection, fixed at creation.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionConfig {
    /// Vector dimension, 1..=65536.
    pub dim: usize,
    /// Which ANN library holds the graph.
    pub backend: BackendKind,
    /// Graph-construction parameters.
    pub graph: GraphParams,
    /// Default search width when a query gives none.
    pub ef_search: usize,
    /// Largest `k` a query may ask for.
    pub max_k: usize,
    /// Largest search width a query may ask for.
    pub max_ef: usize,
    /// When to scan exactly and how far to widen filtered graph searches.
    pub planner: PlannerConfig,
    /// How each namespace's text is analyzed for keyword search.
    pub text: TextConfig,
    /// When set, only points carrying this attribute count towards a
    /// namespace's keyword statistics (document count, average length,
    /// document frequencies); the others are found and scored but never move
    /// them. A server marks what every reader may see, so scores cannot
    /// reveal the words of points a searcher cannot see. `None`: all count.
    pub keyword_statistics: Option<String>,
    /// Whether points carry vectors; false for a record collection
    /// ([`CollectionConfig::records`]), whose `dim` is then unused.
    pub vectors: bool,
}

impl CollectionConfig {
    /// A record collection: points without vectors, found by
    /// id and payload only — versioned, replicated, expiring and snapshotted
    /// like any collection when held by a `DurableCollection`. Vectors given
    /// to it are ignored; similarity search is refused.
    pub fn records() -> Self {
        Self {
            vectors: false,
            ..Self::new(1)
        }
    }

    /// Whether this is a record collection (no vectors).
    pub fn is_records(&self) -> bool {
        !self.vectors
    }

    /// Defaults for `dim`-dimensional vectors on the default backend.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            backend: BackendKind::Usearch,
            graph: GraphParams::default(),
            ef_search: 64,
            max_k: 1000,
            max_ef: 4096,
            planner: PlannerConfig::default(),
            text: TextConfig::default(),
            keyword_statistics: None,
            vectors: true,
        }
    }

    /// Whether a point with `payload` counts towards keyword statistics.
    fn counts_in_statistics(&self, payload: &Payload) -> bool {
        self.keyword_statistics
            .as_ref()
            .is_none_or(|a| payload.attributes.iter().any(|x| x == a))
    }

    /// The same configuration on another backend.
    pub fn with_backend(mut self, backend: BackendKind) -> Self {
        self.backend = backend;
        self
    }

    fn validate(&self) -> Result<()> {
        backend::check_range("dim", self.dim, 1, 65_536)?;
        backend::check_range("max_k", self.max_k, 1, 100_000)?;
        backend::check_range("max_ef", self.max_ef, 1, 100_000)?;
        backend::check_range("ef_search", self.ef_search, 1, self.max_ef)?;
        if let Some(r) = self.planner.cost_ratio
            && !(r.is_finite() && r >= 0.0)
        {
            return Err(IndexError::InvalidParameter {
                name: "cost_ratio",
                reason: format!("must be a finite number >= 0, got {r}"),
            });
        }
        self.graph.validate()
    }
}

/// A k-NN query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Query vector (any non-zero length; it is normalised).
    pub vector: Vec<f32>,
    /// Number of results wanted.
    pub k: usize,
    /// Which points may be returned.
    pub filter: Filter,
    /// Search width; the collection default when `None`.
    pub ef: Option<usize>,
    /// Lets the caller override the planner (benchmarks, debugging).
    pub strategy: Strategy,
}

impl Query {
    /// The `k` nearest points to `vector`, unfiltered.
    pub fn new(vector: Vec<f32>, k: usize) -> Self {
        Self {
            vector,
            k,
            filter: Filter::all(),
            ef: None,
            strategy: Strategy::Auto,
        }
    }

    /// Restricts results to points matching `filter`.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the search width.
    pub fn ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    /// Overrides the planner.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The point's id.
    pub id: Uuid,
    /// Cosine similarity to the query in `[-1, 1]` (vector search), or the
    /// BM25 score, `>= 0` (keyword search).
    pub score: f32,
}

/// A keyword (BM25) query over one namespace's text.
#[derive(Debug, Clone, PartialEq)]
pub struct KeywordQuery {
    /// The namespace searched (BM25 statistics are per namespace).
    pub namespace: String,
    /// Any text: it is analyzed into terms, never parsed as syntax.
    pub text: String,
    /// Number of results wanted.
    pub k: usize,
    /// Which points may be returned (the namespace condition is implied).
    pub filter: Filter,
    /// BM25's parameters.
    pub bm25: crate::lexical::Bm25,
}

impl KeywordQuery {
    /// The `k` best matches for `text` in `namespace`, unfiltered.
    pub fn new(namespace: impl Into<String>, text: impl Into<String>, k: usize) -> Self {
        Self {
            namespace: namespace.into(),
            text: text.into(),
            k,
            filter: Filter::all(),
            bm25: crate::lexical::Bm25::default(),
        }
    }

    /// Scores with BM25 parameters `bm25` instead of the defaults.
    pub fn bm25(mut self, bm25: crate::lexical::Bm25) -> Self {
        self.bm25 = bm25;
        self
    }

    /// Restricts results to points matching `filter`.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }
}

/// The answer to a [`KeywordQuery`].
#[derive(Debug, Clone, PartialEq)]
pub struct KeywordResult {
    /// Best first (BM25 score); ties broken by id.
    pub hits: Vec<Hit>,
    /// The query's terms after analysis (empty: nothing could match).
    pub terms: Vec<String>,
    /// How many points the filter allowed.
    pub allowed: u64,
    /// Time spent, in microseconds.
    pub took_us: u64,
}

/// A snapshot read but not yet loaded ([`Collection::unpack`]); one taken
/// without its vectors first takes them back through [`Unpacked::fill`].
pub struct Unpacked<'a> {
    config: CollectionConfig,
    header: snapshot::Header,
    graph: &'a [u8],
    vector_free: Option<backend::VectorFree<'a>>,
    /// Each saved point's key, when the vectors are to be filled.
    key_of: HashMap<Uuid, Key>,
}

impl Unpacked<'_> {
    /// Whether the snapshot was taken without its vectors.
    pub fn wants_vectors(&self) -> bool {
        self.vector_free.is_some()
    }

    /// Gives point `id` its vector back (as written; it is normalised here).
    /// Kept only if it is the vector the snapshot was taken with; a point
    /// that changed or is unknown is left for the caller to write again.
    /// Returns whether it was kept.
    pub fn fill(&mut self, id: Uuid, vector: &[f32]) -> bool {
        let (Some(v), Some(key)) = (self.vector_free.as_mut(), self.key_of.get(&id)) else {
            return false;
        };
        normalized(vector, self.config.dim).is_ok_and(|unit| v.fill(*key, &unit))
    }

    /// Whether point `id` of the snapshot has exactly `payload`.
    pub fn holds_payload(&self, id: Uuid, payload: &Payload) -> bool {
        let Some(key) = self.key_of.get(&id) else {
            return false;
        };
        // Points are sorted by key (see `Collection::unpack`).
        let points = &self.header.points;
        points
            .binary_search_by_key(key, |p| p.key)
            .is_ok_and(|i| points[i].payload == *payload)
    }

    /// Points of the snapshot not filled yet (0 when it holds its vectors).
    pub fn unfilled(&self) -> usize {
        self.vector_free
            .as_ref()
            .map_or(0, |v| self.key_of.len().saturating_sub(v.filled()))
    }

    /// Loads the collection; returns it and the snapshot's meta. A point
    /// whose vector was not filled holds a zero vector until it is written
    /// again or deleted.
    pub fn finish(self) -> Result<(Collection, String)> {
        Collection::from_unpacked(self)
    }
}

/// The answer to a [`Query`], with how it was computed.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    /// Best first; ties broken by id.
    pub hits: Vec<Hit>,
    /// The plan that ran.
    pub plan: Plan,
    /// How many points the filter allowed.
    pub allowed: u64,
    /// The search width used by graph plans (`max(ef, k)`).
    pub ef: usize,
    /// Time spent, in microseconds.
    pub took_us: u64,
}

/// A stored point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The point's id.
    pub id: Uuid,
    /// Its unit-length vector.
    pub vector: Vec<f32>,
    /// Its payload.
    pub payload: Payload,
}

/// Counters that describe a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionStats {
    /// Points stored.
    pub points: u64,
    /// Removed points still in the graph.
    pub tombstones: usize,
    /// Graph rebuilds finished.
    pub rebuilds: u64,
    /// Bytes the backend reports for graph and vectors.
    pub backend_bytes: usize,
    /// Retired keys the backend failed to remove (skipped by searches).
    pub orphans: u64,
    /// Approximate bytes of the keyword (BM25) index, text excluded.
    pub lexical_bytes: usize,
}

#[derive(Default)]
struct State {
    ids: HashMap<Uuid, Key>,
    keys: HashMap<Key, Uuid>,
    payloads: PayloadIndex,
    lexical: LexicalIndex,
}

impl State {
    /// Indexes a new key's payload and its analyzed text (`counted`: in the
    /// keyword statistics).
    fn insert(&mut self, key: Key, payload: &Payload, terms: &[String], counted: bool) {
        self.payloads.insert(key, payload);
        if let Some(ns) = self.payloads.namespace(key) {
            self.lexical.insert(&ns, key, terms, counted);
        }
    }

    /// Unindexes a key's payload and text (the key→id entry is left to the caller).
    fn unindex(&mut self, key: Key) {
        if let Some(ns) = self.payloads.namespace(key) {
            self.lexical.remove(&ns, key);
        }
        self.payloads.remove(key);
    }
}

/// Points re-analyzed per hold of the write lock when an analyzer changes.
const REANALYZE_CHUNK: usize = 1024;

/// Points with filtered k-NN search; `Send + Sync`, safe to share across threads.
pub struct Collection {
    config: CollectionConfig,
    /// Changed only under the write gate, so every write analyzes with one analyzer.
    analyzers: RwLock<Analyzers>,
    backend: Arc<dyn AnnBackend>,
    state: RwLock<State>,
    next_key: AtomicU64,
    orphans: AtomicU64,
    /// Retired keys whose grace period has passed, awaiting removal from the graph.
    retired: Arc<Mutex<Vec<Key>>>,
    /// Writers hold it shared for their whole write; a snapshot holds it exclusively.
    write_gate: RwLock<()>,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("config", &self.config)
            .field("points", &self.len())
            .finish()
    }
}

impl Collection {
    /// An empty collection; fails if a setting is out of range.
    pub fn new(config: CollectionConfig) -> Result<Self> {
        config.validate()?;
        let backend: Arc<dyn AnnBackend> = if config.is_records() {
            Arc::new(backend::none::NoVectors::new(config.backend))
        } else {
            Arc::from(backend::build(config.backend, config.dim, &config.graph)?)
        };
        Ok(Self {
            analyzers: RwLock::new(Analyzers::new(&config.text)),
            config,
            backend,
            state: RwLock::new(State::default()),
            next_key: AtomicU64::new(0),
            orphans: AtomicU64::new(0),
            retired: Arc::new(Mutex::new(Vec::new())),
            write_gate: RwLock::new(()),
        })
    }

    /// The collection's settings.
    pub fn config(&self) -> &CollectionConfig {
        &self.config
    }

    /// Number of points.
    pub fn len(&self) -> u64 {
        self.state.read().payloads.len()
    }

    /// Whether the collection has no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size and maintenance counters.
    pub fn stats(&self) -> CollectionStats {
        CollectionStats {
            points: self.len(),
            tombstones: self.backend.tombstones(),
            rebuilds: self.backend.rebuilds_completed(),
            backend_bytes: self.backend.memory_bytes(),
            orphans: self.orphans.load(Ordering::Relaxed),
            lexical_bytes: self.state.read().lexical.memory_bytes(),
        }
    }

    /// Blocks until deferred removals and background maintenance (graph rebuilds) have run.
    pub fn wait_idle(&self) {
        // Each flush may advance the epoch once; a few rounds collect what no
        // running search can still see.
        for _ in 0..16 {
            crossbeam_epoch::pin().flush();
        }
        self.remove_retired();
        self.backend.wait_idle();
    }

    /// A checked, self-contained copy of the collection (points, payloads, graph),
    /// carrying `meta` (e.g. the change-feed position it corresponds to).
    /// Writes wait while it is taken; searches do not.
    pub fn snapshot(&self, meta: &str) -> Result<Vec<u8>> {
        self.snapshot_with(meta, |backend| backend.save())
    }

    /// [`Collection::snapshot`] without the vectors where the backend can
    /// leave them out (usearch, and our graph): for a caller that keeps every
    /// vector elsewhere, e.g. in its records, and gives them back to
    /// [`Unpacked::fill`] on restore. The snapshot then holds a fingerprint
    /// of each vector, so only the vectors it was taken with are taken back.
    pub fn snapshot_without_vectors(&self, meta: &str) -> Result<Vec<u8>> {
        self.snapshot_with(meta, |backend| match backend.save_without_vectors()? {
            Some(graph) => Ok(graph),
            None => backend.save(),
        })
    }

    fn snapshot_with(
        &self,
        meta: &str,
        save: impl FnOnce(&dyn AnnBackend) -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let _frozen = self.write_gate.write();
        let state = self.state.read();
        let live = state.payloads.live();
        let mut points = Vec::with_capacity(live.len() as usize);
        let mut retired = Vec::new();
        for (key, id) in state.keys.iter() {
            match state.payloads.get(*key) {
                Some(payload) if live.contains(*key) => points.push(snapshot::SavedPoint {
                    key: *key,
                    id: *id,
                    payload,
                }),
                _ => retired.push(*key),
            }
        }
        // Retired keys already dropped from the key map but not from the graph.
        retired.extend(self.retired.lock().iter().copied());
        let header = snapshot::Header {
            dim: self.config.dim,
            backend: self.config.backend.name().to_string(),
            next_key: self.next_key.load(Ordering::Relaxed),
            retired,
            points,
            meta: meta.to_string(),
        };
        snapshot::encode(&header, &save(self.backend.as_ref())?)
    }

    /// Rebuilds a collection from [`Collection::snapshot`] bytes; returns it and the meta.
    /// A damaged or mismatched snapshot is [`IndexError::CorruptSnapshot`], and
    /// so is one taken without its vectors (restore that with [`Collection::unpack`]).
    pub fn restore(config: CollectionConfig, bytes: &[u8]) -> Result<(Self, String)> {
        let unpacked = Self::unpack(config, bytes)?;
        if unpacked.wants_vectors() {
            return Err(IndexError::CorruptSnapshot(
                "the snapshot was taken without its vectors; restore it with unpack and fill"
                    .into(),
            ));
        }
        unpacked.finish()
    }

    /// Checks and reads a snapshot ([`Collection::snapshot`] or
    /// [`Collection::snapshot_without_vectors`]) up to the point of loading it.
    pub fn unpack(config: CollectionConfig, bytes: &[u8]) -> Result<Unpacked<'_>> {
        config.validate()?;
        let (mut header, graph) = snapshot::decode(bytes)?;
        // In key order, so the keyword index's posting lists are built by appending.
        header.points.sort_unstable_by_key(|p| p.key);
        if header.dim != config.dim || header.backend != config.backend.name() {
            return Err(IndexError::CorruptSnapshot(format!(
                "snapshot is {} x {}, the collection is {} x {}",
                header.backend,
                header.dim,
                config.backend.name(),
                config.dim
            )));
        }
        let vector_free = if config.is_records() {
            None
        } else {
            backend::VectorFree::parse(config.backend, graph, config.dim, &config.graph)?
        };
        let key_of = match vector_free {
            Some(_) => header.points.iter().map(|p| (p.id, p.key)).collect(),
            None => HashMap::new(),
        };
        Ok(Unpacked {
            config,
            header,
            graph,
            vector_free,
            key_of,
        })
    }

    fn from_unpacked(u: Unpacked<'_>) -> Result<(Self, String)> {
        let Unpacked {
            config,
            header,
            graph,
            vector_free,
            ..
        } = u;
        let refilled = vector_free.map(|v| v.into_saved()).transpose()?;
        let graph = refilled.as_deref().unwrap_or(graph);
        let analyzers = Analyzers::new(&config.text);
        // The graph loads on one core while the payload and keyword indexes build on the other.
        let (backend, state) = std::thread::scope(|s| {
            let loading = s.spawn(|| -> Result<Box<dyn AnnBackend>> {
                let backend: Box<dyn AnnBackend> = if config.is_records() {
                    Box::new(backend::none::NoVectors::restore(config.backend, graph)?)
                } else {
                    backend::restore(config.backend, config.dim, &config.graph, graph)
                        .map_err(|e| IndexError::CorruptSnapshot(e.to_string()))?
                };
                for key in &header.retired {
                    backend.remove(*key)?;
                }
                Ok(backend)
            });
            let state = (|| {
                let mut state = State::default();
                for p in &header.points {
                    p.payload
                        .validate()
                        .map_err(|e| IndexError::CorruptSnapshot(e.to_string()))?;
                    state.ids.insert(p.id, p.key);
                    state.keys.insert(p.key, p.id);
                    let terms = analyzers.of(&p.payload.namespace).terms(&p.payload.text);
                    let counted = config.counts_in_statistics(&p.payload);
                    state.insert(p.key, &p.payload, &terms, counted);
                }
                Ok::<_, IndexError>(state)
            })();
            let backend = loading
                .join()
                .map_err(|_| IndexError::CorruptSnapshot("graph loading panicked".into()))?;
            Ok::<_, IndexError>((backend?, state?))
        })?;
        if backend.len() != header.points.len() {
            return Err(IndexError::CorruptSnapshot(format!(
                "graph holds {} vectors for {} points",
                backend.len(),
                header.points.len()
            )));
        }
        let collection = Self {
            config,
            analyzers: RwLock::new(analyzers),
            backend: Arc::from(backend),
            state: RwLock::new(state),
            next_key: AtomicU64::new(header.next_key),
            orphans: AtomicU64::new(0),
            retired: Arc::new(Mutex::new(Vec::new())),
            write_gate: RwLock::new(()),
        };
        Ok((collection, header.meta))
    }

    /// Checks a point as [`Collection::upsert`] would, without writing anything.
    pub fn validate(&self, vector: &[f32], payload: &Payload) -> Result<()> {
        payload.validate()?;
        self.unit(vector).map(|_| ())
    }

    /// The vector an upsert hands the backend: `vector` at unit length, or
    /// none at all in a records collection, which keeps no vector whatever
    /// was stored with the record.
    fn unit(&self, vector: &[f32]) -> Result<Vec<f32>> {
        if self.config.is_records() {
            return Ok(Vec::new());
        }
        normalized(vector, self.config.dim)
    }

    /// Inserts or replaces the point `id`; returns whether it replaced one.
    pub fn upsert(&self, id: Uuid, vector: &[f32], payload: Payload) -> Result<bool> {
        let _writing = self.write_gate.read();
        self.remove_retired();
        payload.validate()?;
        let unit = self.unit(vector)?;
        let terms = self
            .analyzers
            .read()
            .of(&payload.namespace)
            .terms(&payload.text);
        let counted = self.config.counts_in_statistics(&payload);
        // Same vector (a session's, a record's): keep the key and its place
        // in the graph, and re-index only the payload.
        let current = self.state.read().ids.get(&id).copied();
        if let Some(old) = current
            && self.backend.holds(old, &unit)
        {
            let mut state = self.state.write();
            if state.ids.get(&id) == Some(&old) {
                state.unindex(old);
                state.insert(old, &payload, &terms, counted);
                return Ok(true);
            }
        }
        let key = self.allocate_key()?;
        self.backend.insert(key, &unit)?;
        let replaced = {
            let mut state = self.state.write();
            let old = state.ids.insert(id, key);
            state.keys.insert(key, id);
            state.insert(key, &payload, &terms, counted);
            if let Some(old) = old {
                // The key→id entry stays until the grace period ends (`remove_retired`).
                state.unindex(old);
            }
            old
        };
        if let Some(old) = replaced {
            self.retire(old);
        }
        Ok(replaced.is_some())
    }

    /// Removes the point `id`; returns whether it existed.
    pub fn delete(&self, id: Uuid) -> Result<bool> {
        let _writing = self.write_gate.read();
        self.remove_retired();
        let key = {
            let mut state = self.state.write();
            let Some(key) = state.ids.remove(&id) else {
                return Ok(false);
            };
            state.unindex(key);
            key
        };
        self.retire(key);
        Ok(true)
    }

    /// Removes a key that is no longer mapped to an id from the graph.
    ///
    /// The write has already happened (the id map says so), so a failure here
    /// must not be reported as a failed write: the key stays in the graph as an
    /// orphan that searches skip, and is counted.
    fn retire(&self, key: Key) {
        let ready = Arc::clone(&self.retired);
        let guard = crossbeam_epoch::pin();
        // Runs once every search pinned before now has finished, on whatever
        // thread next collects garbage, so it only queues the key: the removal
        // itself happens in `remove_retired`, on a writer's own thread.
        guard.defer(move || ready.lock().push(key));
        guard.flush();
    }

    /// Forgets the retired keys no running search can still see.
    fn remove_retired(&self) {
        let keys = std::mem::take(&mut *self.retired.lock());
        if keys.is_empty() {
            return;
        }
        {
            let mut state = self.state.write();
            for key in &keys {
                state.keys.remove(key);
            }
        }
        for key in keys {
            if self.backend.remove(key).is_err() {
                self.orphans.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The point `id`, if present.
    pub fn get(&self, id: Uuid) -> Option<Point> {
        // A concurrent upsert may retire the key between the two reads; retry
        // with the newer key (each retry means a newer version was written).
        for _ in 0..8 {
            let (key, payload) = {
                let state = self.state.read();
                let key = *state.ids.get(&id)?;
                (key, state.payloads.get(key)?)
            };
            if let Some(vector) = self.backend.vector(key) {
                return Some(Point {
                    id,
                    vector,
                    payload,
                });
            }
        }
        None
    }

    /// The payload of point `id`, if present, without reading its vector
    /// (for callers that only filter or order by payload fields).
    pub fn payload(&self, id: Uuid) -> Option<Payload> {
        let state = self.state.read();
        let key = *state.ids.get(&id)?;
        state.payloads.get(key)
    }

    /// Whether point `id` is present with exactly `payload` and the vector an
    /// upsert of `vector` would store (after the backend's quantization), so
    /// that upserting them would change nothing.
    pub fn holds(&self, id: Uuid, vector: &[f32], payload: &Payload) -> bool {
        let key = {
            let state = self.state.read();
            match state.ids.get(&id) {
                Some(&key) if state.payloads.get(key).as_ref() == Some(payload) => key,
                _ => return false,
            }
        };
        self.unit(vector)
            .is_ok_and(|unit| self.backend.holds(key, &unit))
    }

    /// Whether `id` is present.
    pub fn contains(&self, id: Uuid) -> bool {
        self.state.read().ids.contains_key(&id)
    }

    /// Every value `field` has on some point, sorted (e.g. the namespaces in use).
    pub fn values(&self, field: Field) -> Vec<String> {
        let mut values: Vec<String> = (self.state.read().payloads.values(field).iter())
            .map(|v| v.to_string())
            .collect();
        values.sort_unstable();
        values
    }

    /// Analyzes `namespace`'s text with `settings` from now on (`None`: the
    /// configured analyzer again) and re-indexes the namespace's keyword
    /// postings with it; returns how many points were re-analyzed.
    ///
    /// The analyzer changes while no write is in flight, so every later
    /// write uses the new one; the points written before are re-analyzed
    /// from their current payload, a chunk per lock, so searches and writes
    /// go on in between (a search may meanwhile see some points under the
    /// old analysis).
    pub fn set_analyzer(&self, namespace: &str, settings: Option<AnalyzerSettings>) -> usize {
        {
            let _frozen = self.write_gate.write();
            self.analyzers.write().set(namespace, settings);
        }
        let keys: Vec<Key> = {
            let filter = Filter::all().eq(Field::Namespace, namespace);
            self.state
                .read()
                .payloads
                .matching(&filter)
                .iter()
                .collect()
        };
        let mut done = 0;
        for chunk in keys.chunks(REANALYZE_CHUNK) {
            let analyzers = self.analyzers.read();
            let analyzer = analyzers.of(namespace);
            let mut state = self.state.write();
            for &key in chunk {
                // Replaced or deleted since the key list was taken: its
                // successor was analyzed anew when written.
                let (Some(payload), Some(ns)) =
                    (state.payloads.get(key), state.payloads.namespace(key))
                else {
                    continue;
                };
                let terms = analyzer.terms(&payload.text);
                let counted = self.config.counts_in_statistics(&payload);
                state.lexical.remove(&ns, key);
                state.lexical.insert(&ns, key, &terms, counted);
                done += 1;
            }
        }
        done
    }

    /// The analyzer settings `namespace`'s text is analyzed with.
    pub fn analyzer(&self, namespace: &str) -> AnalyzerSettings {
        self.analyzers.read().of(namespace).settings()
    }

    /// How many points match `filter`.
    pub fn count_matching(&self, filter: &Filter) -> u64 {
        self.state.read().payloads.matching(filter).len()
    }

    /// The ids of every point matching `filter` (no order).
    pub fn ids_matching(&self, filter: &Filter) -> Vec<Uuid> {
        let state = self.state.read();
        state
            .payloads
            .matching(filter)
            .iter()
            .filter_map(|k| state.keys.get(&k).copied())
            .collect()
    }

    /// What `f` makes of each point matching `filter` and its payload, read
    /// in place under one read lock (`f` must not call back into the
    /// collection); the points `f` returns `None` for are left out.
    pub fn map_matching<T>(
        &self,
        filter: &Filter,
        mut f: impl FnMut(Uuid, PayloadView<'_>) -> Option<T>,
    ) -> Vec<T> {
        let state = self.state.read();
        state
            .payloads
            .matching(filter)
            .iter()
            .filter_map(|k| f(*state.keys.get(&k)?, state.payloads.view(k)?))
            .collect()
    }

    /// The `k` points most similar to the query that match its filter.
    pub fn search(&self, query: &Query) -> Result<SearchResult> {
        let started = Instant::now();
        if self.config.is_records() {
            return Err(IndexError::InvalidParameter {
                name: "query",
                reason: "this collection holds records without vectors; find them by id or filter"
                    .into(),
            });
        }
        self.check_k(query.k)?;
        let ef = query.ef.unwrap_or(self.config.ef_search);
        backend::check_range("ef", ef, 1, self.config.max_ef)?;
        let q = normalized(&query.vector, self.config.dim)?;
        let (hits, plan, allowed) = self.search_snapshot(&q, query, ef)?;
        Ok(SearchResult {
            hits,
            plan,
            allowed,
            ef: ef.max(query.k),
            took_us: started.elapsed().as_micros().try_into().unwrap_or(u64::MAX),
        })
    }

    /// The `k` points whose text best matches the query by BM25, among those
    /// of its namespace that match its filter. Any text is accepted: text
    /// without searchable terms (only punctuation or stop words) matches nothing.
    pub fn search_keyword(&self, query: &KeywordQuery) -> Result<KeywordResult> {
        let started = Instant::now();
        self.check_k(query.k)?;
        let terms = self
            .analyzers
            .read()
            .of(&query.namespace)
            .terms(&query.text);
        let mut filter = query.filter.clone();
        filter
            .conditions
            .push(Condition::Equals(Field::Namespace, query.namespace.clone()));
        // One read lock: the allowed set, the postings and the key map agree.
        let state = self.state.read();
        let allowed = state.payloads.matching(&filter);
        let scored = if terms.is_empty() {
            Vec::new()
        } else {
            state
                .lexical
                .search_with(&query.namespace, &terms, query.k, &allowed, query.bm25)
        };
        let mut hits: Vec<Hit> = scored
            .iter()
            .filter_map(|s| {
                state.keys.get(&s.key).map(|id| Hit {
                    id: *id,
                    score: s.score,
                })
            })
            .collect();
        drop(state);
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        Ok(KeywordResult {
            hits,
            terms,
            allowed: allowed.len(),
            took_us: started.elapsed().as_micros().try_into().unwrap_or(u64::MAX),
        })
    }

    /// One search over one snapshot of allowed keys: `(hits, plan, allowed)`.
    fn search_snapshot(
        &self,
        q: &[f32],
        query: &Query,
        ef: usize,
    ) -> Result<(Vec<Hit>, Plan, u64)> {
        // Keeps every key of our snapshot in the graph and in the key map until we finish.
        let _pin = crossbeam_epoch::pin();
        // Only the bitmap work happens under the read lock.
        let (allowed, live) = {
            let state = self.state.read();
            (state.payloads.matching(&query.filter), state.payloads.len())
        };
        let mut plan =
            self.config
                .planner
                .choose(self.config.backend, query.strategy, allowed.len(), live);
        let scored = match plan {
            Plan::Exact | Plan::ExactFallback => self.backend.exact(q, query.k, &allowed),
            Plan::Graph => self.backend.search(q, query.k, ef, None)?,
            Plan::FilteredGraph => {
                let accept = |key: Key| allowed.contains(key);
                self.backend.search(q, query.k, ef, Some(&accept))?
            }
        };
        let mut hits = self.resolve(&scored, &allowed);
        let reachable = allowed.len().min(query.k as u64) as usize;
        if !plan.is_exact() && hits.len() < reachable {
            // The graph could not reach enough allowed points: fall back to exact.
            plan = Plan::ExactFallback;
            hits = self.resolve(&self.backend.exact(q, query.k, &allowed), &allowed);
        }
        Ok((hits, plan, allowed.len()))
    }

    /// Refuses a `k` of 0 or above the configured maximum.
    fn check_k(&self, k: usize) -> Result<()> {
        let max = self.config.max_k;
        if k == 0 || k > max {
            return Err(IndexError::InvalidK { got: k, max });
        }
        Ok(())
    }

    fn allocate_key(&self) -> Result<Key> {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        Key::try_from(key).map_err(|_| IndexError::KeysExhausted(u64::from(Key::MAX) + 1))
    }

    /// Maps the snapshot's keys to ids, best first.
    fn resolve(&self, scored: &[Scored], allowed: &RoaringBitmap) -> Vec<Hit> {
        let state = self.state.read();
        let mut hits: Vec<Hit> = scored
            .iter()
            .filter(|s| allowed.contains(s.key))
            .filter_map(|s| {
                state.keys.get(&s.key).map(|id| Hit {
                    id: *id,
                    score: s.score,
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(c: &Collection, id: Uuid) -> Option<Key> {
        c.state.read().ids.get(&id).copied()
    }

    #[test]
    fn an_update_that_keeps_the_vector_keeps_the_key_and_one_that_moves_it_does_not() {
        for backend in [BackendKind::Usearch, BackendKind::Hnsw] {
            let mut config = CollectionConfig::new(4);
            config.backend = backend;
            let c = Collection::new(config).unwrap();
            let id = Uuid::now_v7();
            let v = [0.5, 0.5, 0.5, 0.5];
            c.upsert(id, &v, Payload::new("a")).unwrap();
            let first = key_of(&c, id);
            let mut p = Payload::new("a");
            p.tags = vec!["later".into()];
            assert!(c.upsert(id, &v, p).unwrap());
            assert_eq!(key_of(&c, id), first, "{backend:?}: same vector, same key");
            let tagged = c.ids_matching(&Filter::all().eq(Field::Tag, "later"));
            assert_eq!(tagged, vec![id], "{backend:?}: the new payload is indexed");
            assert!(
                c.upsert(id, &[1.0, 0.0, 0.0, 0.0], Payload::new("a"))
                    .unwrap()
            );
            assert_ne!(
                key_of(&c, id),
                first,
                "{backend:?}: a new vector, a new key"
            );
            assert!(
                c.ids_matching(&Filter::all().eq(Field::Tag, "later"))
                    .is_empty()
            );
            let got = c.get(id).unwrap();
            assert!(
                (got.vector[0] - 1.0).abs() < 1e-3,
                "{backend:?}: {:?}",
                got.vector
            );
        }
    }

    #[test]
    fn holds_compares_what_an_upsert_would_store_after_quantization() {
        for quantization in [backend::Quantization::F16, backend::Quantization::F32] {
            let mut config = CollectionConfig::new(4);
            config.graph.quantization = quantization;
            let c = Collection::new(config).unwrap();
            let id = Uuid::now_v7();
            // Not a unit vector and not exact in f16: only a comparison after
            // normalising and quantizing finds it unchanged.
            let v = [0.3, 0.1, 0.7, 0.2];
            c.upsert(id, &v, Payload::new("a")).unwrap();
            assert!(c.holds(id, &v, &Payload::new("a")), "{quantization:?}");
            assert!(!c.holds(id, &v, &Payload::new("b")), "{quantization:?}");
            assert!(!c.holds(id, &[0.3, 0.1, 0.2, 0.7], &Payload::new("a")));
            assert!(!c.holds(Uuid::now_v7(), &v, &Payload::new("a")));
            assert!(
                !c.holds(id, &[0.3, 0.1], &Payload::new("a")),
                "wrong dimension"
            );
        }
    }

    #[test]
    fn a_snapshot_without_vectors_takes_back_only_the_vectors_it_was_taken_with() {
        let mut config = CollectionConfig::new(8);
        config.graph.quantization = backend::Quantization::F16;
        let c = Collection::new(config.clone()).unwrap();
        let rows: Vec<Vec<f32>> = crate::synthetic::clustered(50, 8, 3, 0.4, 5)
            .chunks(8)
            .map(<[f32]>::to_vec)
            .collect();
        let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
        for (id, v) in ids.iter().zip(&rows) {
            c.upsert(*id, v, Payload::new("a")).unwrap();
        }
        let bytes = c.snapshot_without_vectors("at 7").unwrap();
        assert!(bytes.len() < c.snapshot("at 7").unwrap().len());
        assert!(matches!(
            Collection::restore(config.clone(), &bytes),
            Err(IndexError::CorruptSnapshot(_))
        ));
        let mut unpacked = Collection::unpack(config.clone(), &bytes).unwrap();
        assert!(unpacked.wants_vectors());
        let mut changed = rows[3].clone();
        changed.reverse();
        assert!(
            !unpacked.fill(ids[3], &changed),
            "not the vector it was taken with"
        );
        assert!(
            !unpacked.fill(Uuid::now_v7(), &rows[0]),
            "not a point of it"
        );
        for (i, (id, v)) in ids.iter().zip(&rows).enumerate().filter(|(i, _)| *i != 3) {
            // Scaled: a vector is taken back as written and normalised here.
            let scaled: Vec<f32> = v.iter().map(|x| x * 3.0).collect();
            assert!(unpacked.fill(*id, &scaled), "point {i}");
        }
        let (r, meta) = unpacked.finish().unwrap();
        assert_eq!(meta, "at 7");
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(key_of(&r, *id), key_of(&c, *id), "point {i} keeps its key");
            let (got, was) = (r.get(*id).unwrap().vector, c.get(*id).unwrap().vector);
            if i == 3 {
                assert!(
                    got.iter().all(|x| *x == 0.0),
                    "unfilled: zero until written"
                );
            } else {
                assert_eq!(got, was, "point {i}");
            }
        }
        // A snapshot with its vectors needs nothing.
        let whole = c.snapshot("").unwrap();
        assert!(!Collection::unpack(config, &whole).unwrap().wants_vectors());
    }

    #[test]
    fn map_matching_reads_the_matching_payloads_in_place() {
        let c = Collection::new(CollectionConfig::new(4)).unwrap();
        let v = [0.5, 0.5, 0.5, 0.5];
        let point = |session: &str, user: Option<&str>, at: crate::Millis, turn: &str| {
            let mut p = Payload::new("a");
            p.session_id = Some(session.into());
            p.user_id = user.map(str::to_owned);
            p.created_at = at;
            p.attributes = vec![format!("turn={turn}"), "other".into()];
            p
        };
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        c.upsert(ids[0], &v, point("s1", Some("u"), 10, "1"))
            .unwrap();
        c.upsert(ids[1], &v, point("s1", None, 20, "2")).unwrap();
        c.upsert(ids[2], &v, point("s2", Some("u"), 30, "3"))
            .unwrap();
        c.upsert(ids[3], &v, point("s1", Some("u"), 40, "4"))
            .unwrap();
        let mut seen = c.map_matching(&Filter::all().eq(Field::Session, "s1"), |id, p| {
            assert_eq!(p.session_id(), Some("s1"));
            let turn = p.attributes().find_map(|a| a.strip_prefix("turn="))?;
            (p.user_id() == Some("u")).then(|| (id, p.created_at(), turn.to_owned()))
        });
        seen.sort();
        assert_eq!(
            seen,
            vec![(ids[0], 10, "1".to_owned()), (ids[3], 40, "4".to_owned())],
            "other sessions and the closure's `None`s are left out"
        );
        c.delete(ids[3]).unwrap();
        let left = c.map_matching(&Filter::all().eq(Field::Session, "s1"), |id, _| Some(id));
        assert_eq!(left.len(), 2, "a deleted point is gone: {left:?}");
    }

    #[test]
    fn an_analyzer_set_at_run_time_re_analyzes_its_namespace_only() {
        let c = Collection::new(CollectionConfig::new(4)).unwrap();
        let v = [0.5, 0.5, 0.5, 0.5];
        let text = |ns: &str, t: &str| {
            let mut p = Payload::new(ns);
            p.text = t.into();
            p
        };
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        c.upsert(a, &v, text("a", "the dogs were running")).unwrap();
        c.upsert(b, &v, text("b", "the dogs were running")).unwrap();
        let found = |ns: &str, q: &str| {
            c.search_keyword(&KeywordQuery::new(ns, q, 5))
                .unwrap()
                .hits
                .len()
        };
        assert_eq!(found("a", "run"), 1, "stemmed by default");
        let unstemmed = AnalyzerSettings {
            stemming: false,
            ..AnalyzerSettings::default()
        };
        assert_eq!(c.set_analyzer("a", Some(unstemmed)), 1);
        assert_eq!(c.analyzer("a"), unstemmed);
        assert_eq!(found("a", "run"), 0, "the stored text is analyzed anew");
        assert_eq!(found("a", "running"), 1);
        assert_eq!(found("b", "run"), 1, "another namespace keeps its analyzer");
        let later = Uuid::now_v7();
        c.upsert(later, &v, text("a", "a running cat")).unwrap();
        assert_eq!(
            found("a", "running"),
            2,
            "later writes use the new analyzer"
        );
        c.set_analyzer("a", None);
        assert_eq!(found("a", "run"), 2, "back to the configured analyzer");
    }
}
