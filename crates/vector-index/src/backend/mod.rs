//! Approximate nearest-neighbour graphs behind one trait.
//!
//! A backend stores unit vectors under internal [`Key`]s and answers k-NN
//! queries, optionally restricted by a predicate, and the exact top k of a
//! set of keys (usearch starts those from the 8-bit rows of [`coarse`]). It
//! knows nothing of ids, payloads or plans; the [`crate::Collection`] adds those.

mod coarse;
mod graph;
mod half_rows;
mod hnsw;
pub(crate) mod none;
mod prefetch;
mod rebuild;
mod saved;
pub(crate) mod usearch;

use std::fmt;
use std::str::FromStr;

use roaring::RoaringBitmap;

use crate::Key;
use crate::error::{IndexError, Result};
pub use crate::topk::Scored;
use crate::topk::TopK;
use crate::vector::dot;

pub use self::hnsw::HnswBackend;
pub use self::usearch::UsearchBackend;

/// A predicate on keys that may be called from the searching thread.
pub type Accept<'a> = &'a (dyn Fn(Key) -> bool + Sync);

/// An ANN graph over unit vectors.
pub trait AnnBackend: Send + Sync {
    /// Which implementation this is.
    fn kind(&self) -> BackendKind;
    /// Inserts a unit vector under a key that is not present.
    fn insert(&self, key: Key, vector: &[f32]) -> Result<()>;
    /// Removes `key`; removing an absent key is not an error.
    fn remove(&self, key: Key) -> Result<()>;
    /// Calls `visit` with the stored vector of every present key in `keys`.
    fn scan(&self, keys: &RoaringBitmap, visit: &mut dyn FnMut(Key, &[f32]));
    /// The exact `k` best of `keys` by dot product with the unit `query`,
    /// best first (ties by key): what scoring every stored vector gives.
    fn exact(&self, query: &[f32], k: usize, keys: &RoaringBitmap) -> Vec<Scored> {
        scan_top_k(self, query, k, keys)
    }
    /// Copies the vector of `key` into a new `Vec`, if present.
    fn vector(&self, key: Key) -> Option<Vec<f32>>;
    /// Whether `key` is present and inserting `vector` would store exactly
    /// what it holds (after the backend's quantization), so an update that
    /// keeps the vector can keep the key and skip the graph insert.
    fn holds(&self, key: Key, vector: &[f32]) -> bool {
        let _ = (key, vector);
        false
    }
    /// Up to `k` nearest keys accepted by `accept`, exploring about `ef` candidates.
    fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<Accept<'_>>,
    ) -> Result<Vec<Scored>>;
    /// Number of present keys.
    fn len(&self) -> usize;
    /// Whether no key is present.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Heap bytes the backend says it uses (graph plus vectors).
    fn memory_bytes(&self) -> usize;
    /// Serialises the graph and vectors for [`restore`].
    fn save(&self) -> Result<Vec<u8>>;
    /// Serialises the graph with a fingerprint of each vector instead of the
    /// vector, for a caller that keeps the vectors elsewhere (the records);
    /// `None` when the backend cannot be restored that way.
    fn save_without_vectors(&self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    /// Removed keys still in the graph, awaiting a rebuild.
    fn tombstones(&self) -> usize {
        0
    }
    /// Background rebuilds finished so far.
    fn rebuilds_completed(&self) -> u64 {
        0
    }
    /// Blocks until background maintenance (e.g. a rebuild) has finished.
    fn wait_idle(&self) {}
}

/// The `k` best of `keys` by scoring each stored vector that `b` scans.
pub(crate) fn scan_top_k<B: AnnBackend + ?Sized>(
    b: &B,
    query: &[f32],
    k: usize,
    keys: &RoaringBitmap,
) -> Vec<Scored> {
    let mut best = TopK::new(k);
    b.scan(keys, &mut |key, v| {
        best.push(Scored {
            key,
            score: dot(query, v),
        });
    });
    best.into_sorted()
}

/// The available backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// `hnsw_rs`: pure Rust; deletes are tombstones plus background rebuilds.
    Hnsw,
    /// `usearch`: C++ library with native removal.
    Usearch,
    /// `graph`: our own HNSW (hnswlib's layout, f16 or f32); deletes are
    /// tombstones plus rebuilds off the lock.
    Graph,
}

impl BackendKind {
    /// Every backend, in display order.
    pub const ALL: [BackendKind; 3] = [BackendKind::Hnsw, BackendKind::Usearch, BackendKind::Graph];

    /// Short lowercase name (`hnsw`, `usearch`, `graph`).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Hnsw => "hnsw",
            BackendKind::Usearch => "usearch",
            BackendKind::Graph => "graph",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = IndexError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "hnsw" | "hnsw_rs" => Ok(BackendKind::Hnsw),
            "usearch" => Ok(BackendKind::Usearch),
            "graph" => Ok(BackendKind::Graph),
            _ => Err(IndexError::InvalidParameter {
                name: "backend",
                reason: format!("unknown backend `{s}`; use `hnsw`, `usearch` or `graph`"),
            }),
        }
    }
}

/// How the graph stores vectors (usearch; hnsw_rs stores `f32` only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// Full precision.
    #[default]
    F32,
    /// Half precision: half the memory, faster graph inserts and searches,
    /// recall within noise of `f32` in the ANN bench; exact scans start from
    /// 8-bit rows and widen only the vectors that may make the top k.
    F16,
    /// 8-bit codes, each vector at its own scale, that a search walks on,
    /// with every vector also kept at f16 to score the walk's best
    /// candidates from, so recall is f16's. In our graph the graph itself
    /// is the f16 one (built, saved and scanned at f16) and the codes cost
    /// a byte per component more; its walk reads half the bytes per node.
    /// In usearch's the graph is of codes, with f16 rows beside it.
    I8,
}

impl FromStr for Quantization {
    type Err = IndexError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Quantization::F32),
            "f16" => Ok(Quantization::F16),
            "i8" => Ok(Quantization::I8),
            _ => Err(IndexError::InvalidParameter {
                name: "quantization",
                reason: format!("unknown quantization `{s}`; use `f32`, `f16` or `i8`"),
            }),
        }
    }
}

/// Graph-construction parameters shared by both backends.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphParams {
    /// Neighbours kept per node (HNSW `M`), 4..=128.
    pub connectivity: usize,
    /// Candidate list size while inserting (`ef_construction`), 8..=4096.
    pub ef_construction: usize,
    /// Expected number of points; a sizing hint only.
    pub capacity_hint: usize,
    /// hnsw_rs only: rebuild once tombstones exceed this share of the graph, in (0, 1].
    pub rebuild_tombstone_ratio: f64,
    /// How vectors are stored in the graph (hnsw_rs needs `F32`).
    pub quantization: Quantization,
}

impl Default for GraphParams {
    fn default() -> Self {
        Self {
            connectivity: 16,
            ef_construction: 128,
            capacity_hint: 1024,
            rebuild_tombstone_ratio: 0.2,
            quantization: Quantization::F32,
        }
    }
}

impl GraphParams {
    /// Checks every parameter's range, so no library assert or `exit` can be reached.
    pub fn validate(&self) -> Result<()> {
        check_range("connectivity", self.connectivity, 4, 128)?;
        check_range("ef_construction", self.ef_construction, 8, 4096)?;
        check_range("capacity_hint", self.capacity_hint, 0, 1 << 31)?;
        let r = self.rebuild_tombstone_ratio;
        if !(r > 0.0 && r <= 1.0) {
            return Err(IndexError::InvalidParameter {
                name: "rebuild_tombstone_ratio",
                reason: format!("must be in (0, 1], got {r}"),
            });
        }
        Ok(())
    }
}

/// How many of an i8 walk's best candidates a search scores again at f16
/// for `k` results: four per result, and at least 32. Rounding reorders
/// near-ties, not distant ranks, and every vector scored again is a cache miss.
pub(crate) fn rescored(k: usize) -> usize {
    (k * 4).max(32)
}

/// Returns an [`IndexError::InvalidParameter`] unless `min <= value <= max`.
pub(crate) fn check_range(name: &'static str, value: usize, min: usize, max: usize) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(IndexError::InvalidParameter {
            name,
            reason: format!("must be between {min} and {max}, got {value}"),
        })
    }
}

fn check_quantization(kind: BackendKind, params: &GraphParams) -> Result<()> {
    if kind == BackendKind::Hnsw && params.quantization != Quantization::F32 {
        return Err(IndexError::InvalidParameter {
            name: "quantization",
            reason: "the hnsw backend stores f32 vectors only; use usearch for f16 or i8".into(),
        });
    }
    Ok(())
}

/// Checks that a backend of `kind` can be built with `params`.
pub fn check(kind: BackendKind, params: &GraphParams) -> Result<()> {
    params.validate()?;
    check_quantization(kind, params)
}

/// A graph saved without its vectors ([`AnnBackend::save_without_vectors`]),
/// taking them back from the records before it is restored.
pub(crate) enum VectorFree<'a> {
    Usearch(usearch::VectorFree<'a>),
    Graph(graph::VectorFree<'a>),
}

impl<'a> VectorFree<'a> {
    /// Reads a graph of `kind` saved without its vectors; `None` when
    /// `bytes` is one saved with them, or `kind` never leaves them out.
    pub(crate) fn parse(
        kind: BackendKind,
        bytes: &'a [u8],
        dim: usize,
        params: &GraphParams,
    ) -> Result<Option<Self>> {
        Ok(match kind {
            BackendKind::Usearch => {
                usearch::VectorFree::parse(bytes, dim, params)?.map(Self::Usearch)
            }
            BackendKind::Graph => {
                let element = graph::element_bytes(params.quantization);
                graph::VectorFree::parse(bytes, dim, element)?.map(Self::Graph)
            }
            BackendKind::Hnsw => None,
        })
    }

    /// Gives `key` its unit-length `vector` back if it is the one the graph
    /// was saved with; returns whether it was.
    pub(crate) fn fill(&mut self, key: Key, vector: &[f32]) -> bool {
        match self {
            Self::Usearch(v) => v.fill(key, vector),
            Self::Graph(v) => v.fill(key, vector),
        }
    }

    /// Slots given their vector back.
    pub(crate) fn filled(&self) -> usize {
        match self {
            Self::Usearch(v) => v.filled(),
            Self::Graph(v) => v.filled(),
        }
    }

    /// The graph's whole saved form, for [`restore`].
    pub(crate) fn into_saved(self) -> Result<Vec<u8>> {
        match self {
            Self::Usearch(v) => v.into_saved(),
            Self::Graph(v) => Ok(v.into_saved()),
        }
    }
}

/// Builds a backend of `kind` for `dim`-dimensional vectors.
pub fn build(kind: BackendKind, dim: usize, params: &GraphParams) -> Result<Box<dyn AnnBackend>> {
    check(kind, params)?;
    Ok(match kind {
        BackendKind::Hnsw => Box::new(HnswBackend::new(dim, params.clone())),
        BackendKind::Usearch => Box::new(UsearchBackend::new(dim, params)?),
        BackendKind::Graph => graph::build(dim, params)?,
    })
}

/// Rebuilds a backend from what [`AnnBackend::save`] wrote. The bytes must have
/// been checked (checksum) by the caller: libraries trust their own format.
pub fn restore(
    kind: BackendKind,
    dim: usize,
    params: &GraphParams,
    bytes: &[u8],
) -> Result<Box<dyn AnnBackend>> {
    check(kind, params)?;
    Ok(match kind {
        BackendKind::Hnsw => Box::new(HnswBackend::restore(dim, params.clone(), bytes)?),
        BackendKind::Usearch => Box::new(UsearchBackend::restore(dim, params, bytes)?),
        BackendKind::Graph => graph::restore(dim, params, bytes)?,
    })
}
