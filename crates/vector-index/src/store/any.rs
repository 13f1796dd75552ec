//! [`AnyStore`]: the embedded store or Redis, chosen by configuration at run
//! time, as one type.
//!
//! [`Store`] uses `impl Future` returns (no boxing on the hot path), so it is
//! not object-safe; an enum gives callers one concrete type instead of a
//! generic threaded through every layer, at the cost of one `match` per store
//! call (nanoseconds beside a disk sync or a network round trip).

use uuid::Uuid;

use super::{
    Cursor, EmbeddedStore, Entry, EntryCacheStats, Expect, NewPoint, Page, Position, Record,
    RedisStore, Store, VectorPrecision,
};
use crate::error::Result;
use crate::payload::Payload;

/// Either store.
// A process holds a handful (one per collection), so the variants' sizes do
// not matter, and boxing Redis's would add a pointer hop to every call.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum AnyStore {
    /// One redb file in this process.
    Embedded(EmbeddedStore),
    /// Redis, shared with other instances.
    Redis(RedisStore),
}

impl From<EmbeddedStore> for AnyStore {
    fn from(s: EmbeddedStore) -> Self {
        Self::Embedded(s)
    }
}

impl From<RedisStore> for AnyStore {
    fn from(s: RedisStore) -> Self {
        Self::Redis(s)
    }
}

impl AnyStore {
    /// The embedded store's entry cache (Redis has none).
    pub fn entry_cache(&self) -> Option<EntryCacheStats> {
        match self {
            Self::Embedded(s) => Some(s.entry_cache()),
            Self::Redis(_) => None,
        }
    }
}

/// Calls the same method on whichever store it is.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Embedded($s) => $call.await,
            AnyStore::Redis($s) => $call.await,
        }
    };
}

impl Store for AnyStore {
    fn vector_precision(&self) -> VectorPrecision {
        match self {
            Self::Embedded(s) => s.vector_precision(),
            Self::Redis(s) => s.vector_precision(),
        }
    }

    async fn put_document(
        &self,
        id: Uuid,
        vector: &[f32],
        payload: &Payload,
        document: &[u8],
        expect: Expect,
    ) -> Result<u64> {
        each!(self, s => s.put_document(id, vector, payload, document, expect))
    }

    async fn put_many(&self, items: &[NewPoint]) -> Result<Vec<u64>> {
        each!(self, s => s.put_many(items))
    }

    async fn put_all(&self, items: &[(NewPoint, Expect)]) -> Result<Vec<u64>> {
        each!(self, s => s.put_all(items))
    }

    async fn delete(&self, id: Uuid, expect: Expect) -> Result<Option<u64>> {
        each!(self, s => s.delete(id, expect))
    }

    async fn get(&self, id: Uuid) -> Result<Option<Record>> {
        each!(self, s => s.get(id))
    }

    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Option<Record>>> {
        each!(self, s => s.get_many(ids))
    }

    async fn get_entries(&self, ids: &[Uuid]) -> Result<Vec<Option<Entry>>> {
        each!(self, s => s.get_entries(ids))
    }

    async fn scan(&self, cursor: Cursor, limit: usize) -> Result<Page> {
        each!(self, s => s.scan(cursor, limit))
    }

    async fn save_snapshot(&self, bytes: Vec<u8>, position: Position) -> Result<()> {
        each!(self, s => s.save_snapshot(bytes, position))
    }

    async fn load_snapshot(&self) -> Result<Option<Vec<u8>>> {
        each!(self, s => s.load_snapshot())
    }
}
