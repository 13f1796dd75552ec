//! The `usearch` backend: native removal, capacity grown on demand.
//!
//! usearch keeps one search context per "thread slot" reserved up front and
//! fails an operation when none is free, so a small semaphore bounds the
//! operations in flight to the reserved slots. Growing the capacity must not
//! overlap any operation, hence the `RwLock` taken exclusively only to grow.

use parking_lot::{Condvar, Mutex, RwLock};
use roaring::RoaringBitmap;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::{Accept, AnnBackend, BackendKind, GraphParams, Quantization, Scored};
use crate::Key;
use crate::error::{IndexError, Result};

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

/// ANN backend over `usearch` (f32 storage, inner-product metric on unit vectors).
pub struct UsearchBackend {
    index: RwLock<Index>,
    slots: Slots,
    dim: usize,
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
        let options = IndexOptions {
            dimensions: dim,
            metric: MetricKind::IP,
            quantization: match params.quantization {
                Quantization::F32 => ScalarKind::F32,
                Quantization::F16 => ScalarKind::F16,
                Quantization::I8 => ScalarKind::I8,
            },
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
        Ok(Self {
            index: RwLock::new(index),
            slots: Slots {
                free: Mutex::new(THREAD_SLOTS),
                freed: Condvar::new(),
            },
            dim,
        })
    }

    /// Loads a graph saved by [`AnnBackend::save`].
    pub fn restore(dim: usize, params: &GraphParams, bytes: &[u8]) -> Result<Self> {
        let backend = Self::new(dim, params)?;
        {
            let index = backend.index.write();
            index.load_from_buffer(bytes).map_err(backend_error)?;
            if index.dimensions() != dim {
                return Err(backend_error(format!(
                    "saved graph has {} dimensions, expected {dim}",
                    index.dimensions()
                )));
            }
            index.change_expansion_search(1);
            let capacity = (index.size() + index.size() / 4).max(MIN_CAPACITY);
            index
                .reserve_capacity_and_threads(capacity, THREAD_SLOTS)
                .map_err(backend_error)?;
        }
        Ok(backend)
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
        let mut last_error = None;
        for _ in 0..ADD_ATTEMPTS {
            let capacity = {
                let index = self.index.read();
                let capacity = index.capacity();
                // Room for every operation that may be adding at this moment.
                if index.size() + THREAD_SLOTS < capacity {
                    match index.add(u64::from(key), vector) {
                        Ok(()) => return Ok(()),
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

    fn remove(&self, key: Key) -> Result<()> {
        let _slot = self.slots.acquire();
        self.index
            .read()
            .remove(u64::from(key))
            .map(|_| ())
            .map_err(backend_error)
    }

    fn scan(&self, keys: &RoaringBitmap, visit: &mut dyn FnMut(Key, &[f32])) {
        let index = self.index.read();
        let mut buf = vec![0f32; self.dim];
        if index.scalar_kind() == ScalarKind::F16 {
            // usearch widens f16 one element at a time; reading the stored
            // halves and widening them with F16C is several times faster.
            let mut halves = vec![0i16; self.dim];
            let mut bits = vec![half::f16::ZERO; self.dim];
            for key in keys {
                if let Ok(1) = index.get(u64::from(key), usearch::f16::from_mut_i16s(&mut halves)) {
                    for (b, h) in bits.iter_mut().zip(&halves) {
                        *b = half::f16::from_bits(*h as u16);
                    }
                    half::slice::HalfFloatSliceExt::convert_to_f32_slice(&bits[..], &mut buf);
                    visit(key, &buf);
                }
            }
            return;
        }
        for key in keys {
            if let Ok(1) = index.get(u64::from(key), &mut buf) {
                visit(key, &buf);
            }
        }
    }

    fn holds(&self, key: Key, vector: &[f32]) -> bool {
        if vector.len() != self.dim {
            return false;
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
        let mut buf = vec![0f32; self.dim];
        match self.index.read().get(u64::from(key), &mut buf) {
            Ok(1) => Some(buf),
            _ => None,
        }
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
        let matches = match accept {
            None => index.search(query, wanted),
            Some(accept) => {
                // Keys are ours, always below 2^32.
                index.filtered_search(query, wanted, |key: u64| accept(key as Key))
            }
        }
        .map_err(backend_error)?;
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
    }

    fn save(&self) -> Result<Vec<u8>> {
        let index = self.index.read();
        let mut buf = vec![0u8; index.serialized_length()];
        index.save_to_buffer(&mut buf).map_err(backend_error)?;
        Ok(buf)
    }
}
