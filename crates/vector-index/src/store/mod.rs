//! Durable records behind one [`Store`] trait.
//!
//! A store keeps each point as a [`Record`] with a version. Versions come from
//! one counter per collection, so they only grow, and a record deleted and
//! created again never repeats an old version (no ABA for optimistic writes).
//! Two implementations pass the same conformance tests:
//! - [`EmbeddedStore`]: a `redb` file, the default; one process.
//! - [`RedisStore`]: Redis hashes plus a change stream written in the same Lua
//!   call, for several instances sharing one Memorystore.

mod any;
mod codec;
mod embedded;
mod redis;

use std::fmt;
use std::future::Future;

use uuid::Uuid;

use crate::error::Result;
use crate::payload::Payload;

pub use self::any::AnyStore;
pub use self::codec::VectorPrecision;
pub use self::embedded::{EmbeddedStore, EntryCacheStats};
pub use self::redis::{RedisConfig, RedisFeed, RedisStore};
pub use crate::expect::Expect;

/// A stored point.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The point's id.
    pub id: Uuid,
    /// Version assigned by the store at the last write.
    pub version: u64,
    /// The vector as written (not normalised).
    pub vector: Vec<f32>,
    /// The payload.
    pub payload: Payload,
    /// Opaque bytes stored with the point and never indexed (may be empty).
    pub document: Vec<u8>,
}

/// A stored point without its vector: what turning search results into
/// answers needs ([`Store::get_entries`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The point's id.
    pub id: Uuid,
    /// Version assigned by the store at the last write.
    pub version: u64,
    /// The payload.
    pub payload: Payload,
    /// Opaque bytes stored with the point (may be empty).
    pub document: Vec<u8>,
}

impl From<Record> for Entry {
    fn from(r: Record) -> Self {
        Self {
            id: r.id,
            version: r.version,
            payload: r.payload,
            document: r.document,
        }
    }
}

/// A point to write: what [`Store::put_many`] and batch upserts take.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPoint {
    /// The point's id.
    pub id: Uuid,
    /// The vector (not normalised).
    pub vector: Vec<f32>,
    /// The payload.
    pub payload: Payload,
    /// Opaque bytes stored beside the point (may be empty).
    pub document: Vec<u8>,
}

impl NewPoint {
    /// A point without a document.
    pub fn new(id: Uuid, vector: Vec<f32>, payload: Payload) -> Self {
        Self {
            id,
            vector,
            payload,
            document: Vec::new(),
        }
    }

    /// Sets the document.
    pub fn with_document(mut self, document: Vec<u8>) -> Self {
        self.document = document;
        self
    }
}

/// An opaque position for paging through [`Store::scan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(pub(crate) String);

/// One page of a scan, and where the next begins (`None` when done).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Records of this page (a record may appear on two pages; callers upsert).
    pub records: Vec<Record>,
    /// The next page's cursor.
    pub next: Option<Cursor>,
}

/// Durable storage for a collection's records.
pub trait Store: Send + Sync + 'static {
    /// The precision it keeps vectors at: a vector read back is
    /// [`VectorPrecision::round`] of the one written.
    fn vector_precision(&self) -> VectorPrecision;

    /// Writes `vector` and `payload` (without a document) as `id` if `expect`
    /// allows; returns the new version.
    fn put(
        &self,
        id: Uuid,
        vector: &[f32],
        payload: &Payload,
        expect: Expect,
    ) -> impl Future<Output = Result<u64>> + Send {
        self.put_document(id, vector, payload, &[], expect)
    }

    /// Writes `vector`, `payload` and `document` as `id` if `expect` allows;
    /// returns the new version. Once this returns `Ok`, the write is durable in the store.
    fn put_document(
        &self,
        id: Uuid,
        vector: &[f32],
        payload: &Payload,
        document: &[u8],
        expect: Expect,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Writes several points (each as with [`Expect::Any`]) in one round trip or
    /// transaction; returns their versions in order. Each record is atomic with
    /// its change entry; the batch as a whole is not.
    fn put_many(&self, items: &[NewPoint]) -> impl Future<Output = Result<Vec<u64>>> + Send;

    /// Writes every point if each one's `expect` allows, else none (the
    /// first refusal is the error): a compare-and-set over several records in
    /// one round trip or transaction. A point repeated in `items` is checked
    /// against the batch's own earlier write. Returns the versions in order.
    fn put_all(
        &self,
        items: &[(NewPoint, Expect)],
    ) -> impl Future<Output = Result<Vec<u64>>> + Send;

    /// Deletes `id` if `expect` allows; returns the deleted version, or `None` if absent
    /// (absent is an error only under [`Expect::Version`]).
    fn delete(&self, id: Uuid, expect: Expect) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// The record `id`, if stored.
    fn get(&self, id: Uuid) -> impl Future<Output = Result<Option<Record>>> + Send;

    /// The records `ids`, in order, in one round trip or read transaction.
    fn get_many(&self, ids: &[Uuid]) -> impl Future<Output = Result<Vec<Option<Record>>>> + Send;

    /// [`Store::get_many`] without the vectors: a search's results are
    /// shown, never compared again, so their vectors need not be decoded
    /// (nor, from Redis, sent).
    fn get_entries(&self, ids: &[Uuid]) -> impl Future<Output = Result<Vec<Option<Entry>>>> + Send {
        async move {
            let records = self.get_many(ids).await?;
            Ok(records.into_iter().map(|r| r.map(Entry::from)).collect())
        }
    }

    /// Up to about `limit` records from `cursor` on (start with `Cursor::default()`).
    fn scan(&self, cursor: Cursor, limit: usize) -> impl Future<Output = Result<Page>> + Send;

    /// Replaces the stored index snapshot (atomically: a reader sees the old or the
    /// new one); `position` is the change-feed position it was taken at, for operators.
    fn save_snapshot(
        &self,
        bytes: Vec<u8>,
        position: Position,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The stored index snapshot, if any (its integrity is checked by the reader).
    fn load_snapshot(&self) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
}

/// A position in a change feed: a Redis stream entry id `<ms>-<seq>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Milliseconds part (the Redis server's clock when the entry was added).
    pub millis: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl Position {
    /// Parses `<ms>-<seq>`.
    pub fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = s.split_once('-')?;
        Some(Self {
            millis: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

/// One entry of a change feed: record `id` changed at `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Where the entry is.
    pub position: Position,
    /// The record that changed (read the store for its current state).
    pub id: Uuid,
    /// The version this change gave the record, when the feed says: an
    /// instance uses it to skip the changes it wrote itself.
    pub version: Option<u64>,
}

/// The ordered log of changes a store writes with each record change.
pub trait ChangeFeed: Send + Sync + 'static {
    /// The position of the last entry ever written, kept or trimmed since (`0-0` when none).
    fn head(&self) -> impl Future<Output = Result<Position>> + Send;
    /// Whether entries after `position` may have been trimmed away, so a reader
    /// there must resync (may err towards `true`, never towards `false`).
    fn gap_after(&self, position: Position) -> impl Future<Output = Result<bool>> + Send;
    /// Up to `count` entries after `after`, waiting up to `block` for the first.
    fn read(
        &self,
        after: Position,
        block: std::time::Duration,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Change>>> + Send;
}
