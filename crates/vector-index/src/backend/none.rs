//! No vectors at all: the backend of a record collection (dimension 0),
//! whose points are records found by id and payload, never by similarity.
//! It keeps only which keys are present, so a collection's bookkeeping
//! (lengths, snapshots) works unchanged.

use parking_lot::Mutex;
use roaring::RoaringBitmap;

use super::{Accept, AnnBackend, BackendKind, Scored};
use crate::Key;
use crate::error::{IndexError, Result};

/// Present keys, and nothing else.
#[derive(Debug)]
pub struct NoVectors {
    kind: BackendKind,
    keys: Mutex<RoaringBitmap>,
}

impl NoVectors {
    /// An empty one, reporting `kind` (the configuration's, for snapshot headers).
    pub fn new(kind: BackendKind) -> Self {
        Self {
            kind,
            keys: Mutex::new(RoaringBitmap::new()),
        }
    }

    /// One holding the keys [`AnnBackend::save`] wrote.
    pub fn restore(kind: BackendKind, bytes: &[u8]) -> Result<Self> {
        let keys = RoaringBitmap::deserialize_from(bytes)
            .map_err(|e| IndexError::CorruptSnapshot(format!("record keys: {e}")))?;
        Ok(Self {
            kind,
            keys: Mutex::new(keys),
        })
    }
}

impl AnnBackend for NoVectors {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn insert(&self, key: Key, _vector: &[f32]) -> Result<()> {
        self.keys.lock().insert(key);
        Ok(())
    }

    fn remove(&self, key: Key) -> Result<()> {
        self.keys.lock().remove(key);
        Ok(())
    }

    fn scan(&self, _keys: &RoaringBitmap, _visit: &mut dyn FnMut(Key, &[f32])) {}

    fn vector(&self, _key: Key) -> Option<Vec<f32>> {
        None
    }

    fn holds(&self, key: Key, _vector: &[f32]) -> bool {
        // No vectors are kept: every present key holds what any insert would.
        self.keys.lock().contains(key)
    }

    fn search(
        &self,
        _query: &[f32],
        _k: usize,
        _ef: usize,
        _accept: Option<Accept<'_>>,
    ) -> Result<Vec<Scored>> {
        Err(IndexError::InvalidParameter {
            name: "query",
            reason:
                "this collection holds records without vectors; it cannot be searched by similarity"
                    .into(),
        })
    }

    fn len(&self) -> usize {
        self.keys.lock().len() as usize
    }

    fn memory_bytes(&self) -> usize {
        self.keys.lock().serialized_size()
    }

    fn save(&self) -> Result<Vec<u8>> {
        let keys = self.keys.lock();
        let mut out = Vec::with_capacity(keys.serialized_size());
        keys.serialize_into(&mut out)
            .map_err(|e| IndexError::storage(format!("record keys: {e}")))?;
        Ok(out)
    }
}
