//! The embedded store: one `redb` file, the default when no Redis is configured.
//!
//! redb commits are durable when `commit` returns (fsync), and a crash leaves
//! the file at its last commit. Writes go through one writer thread that
//! commits whatever queued up during the previous fsync together
//! ([`group_commit`]); long reads run on tokio's blocking pool, point reads
//! where they are asked, so neither stalls the async workers. Entries a
//! search shows are kept decoded in an [`entry_cache`], which the writer
//! keeps in step.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, TableDefinition};
use uuid::Uuid;

mod entry_cache;
mod group_commit;

use self::entry_cache::EntryCache;
pub use self::entry_cache::EntryCacheStats;
use self::group_commit::{Done, Op, Writer};
use super::codec;
use super::{Cursor, Entry, Expect, NewPoint, Page, Position, Record, Store, VectorPrecision};
use crate::error::{IndexError, Result};
use crate::payload::Payload;

/// Records by id (as `u128`, so scans run in id order).
pub(super) const RECORDS: TableDefinition<u128, &[u8]> = TableDefinition::new("records");
/// Counters: [`VERSION_KEY`] is the last version handed out.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The key of the last version handed out, in [`META`].
pub(super) const VERSION_KEY: &str = "version";

/// A collection's records in a `redb` file.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writer: Writer,
    /// The database file (named in errors).
    path: Arc<Path>,
    /// What new records' vectors are written at.
    precision: VectorPrecision,
    /// `<file>.snapshot`, beside the database file.
    snapshot: PathBuf,
    /// Entries recently read, decoded; the writer forgets what it changes.
    entries: Arc<EntryCache>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedStore")
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`.
    ///
    /// A damaged file is an error naming it, never a panic: redb can panic on
    /// pages it cannot make sense of, so opening runs behind `catch_unwind`
    /// (reads later run on the blocking pool, where a panic is a failed task).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_cache(path, Self::DEFAULT_CACHE_MIB << 20)
    }

    /// redb's page cache of a store opened by [`EmbeddedStore::open`], in MiB
    /// (redb's own default, 1 GiB, kept a whole loaded file resident:
    /// docs/benchmarks.md, "Where the memory goes").
    pub const DEFAULT_CACHE_MIB: usize = 32;

    /// The decoded entries a store keeps by default, in MiB
    /// ([`EmbeddedStore::with_entry_cache`]).
    pub const DEFAULT_ENTRY_CACHE_MIB: usize = 16;

    /// Keeps up to about `bytes` of recently read entries decoded (0: none),
    /// so a memory that searches keep finding is not read from redb each
    /// time (docs/storage.md, "The entry cache").
    pub fn with_entry_cache(self, bytes: usize) -> Self {
        self.entries.resize(bytes);
        self
    }

    /// What the entry cache holds, and its hits and misses since opening.
    pub fn entry_cache(&self) -> EntryCacheStats {
        self.entries.stats()
    }

    /// Opens (or creates) the store at `path` with a page cache of
    /// `cache_bytes`, as [`EmbeddedStore::open`] does.
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: usize) -> Result<Self> {
        Self::open_with(path, cache_bytes, VectorPrecision::F32)
    }

    /// Opens (or creates) the store at `path` with a page cache of
    /// `cache_bytes`, writing vectors at `precision` (records written at
    /// another precision read as they are).
    pub fn open_with(
        path: impl AsRef<Path>,
        cache_bytes: usize,
        precision: VectorPrecision,
    ) -> Result<Self> {
        let path = path.as_ref();
        let damaged = |what: &str| {
            IndexError::storage(format!(
                "{}: {what}; the file is damaged: restore it from a backup or an \
                 export, or move it away to start empty",
                path.display()
            ))
        };
        match std::panic::catch_unwind(|| Self::open_unguarded(path, cache_bytes, precision)) {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "redb failed".to_owned());
                Err(damaged(&what))
            }
        }
    }

    fn open_unguarded(path: &Path, cache_bytes: usize, precision: VectorPrecision) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    IndexError::InUse(path.display().to_string())
                }
                e => IndexError::storage(format!("{}: {e}", path.display())),
            })?;
        let named =
            |e: &dyn std::fmt::Display| IndexError::storage(format!("{}: {e}", path.display()));
        // Create the tables up front so readers never see them missing.
        let tx = db.begin_write().map_err(|e| named(&e))?;
        tx.open_table(RECORDS).map_err(|e| named(&e))?;
        tx.open_table(META).map_err(|e| named(&e))?;
        tx.commit().map_err(|e| named(&e))?;
        let mut snapshot = path.as_os_str().to_owned();
        snapshot.push(".snapshot");
        let db = Arc::new(db);
        let entries = Arc::new(EntryCache::new(Self::DEFAULT_ENTRY_CACHE_MIB << 20));
        Ok(Self {
            writer: Writer::start(Arc::clone(&db), precision, Arc::clone(&entries))?,
            db,
            path: Arc::from(path),
            precision,
            snapshot: PathBuf::from(snapshot),
            entries,
        })
    }

    /// Runs a long read (a scan page, a snapshot) on tokio's blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = Arc::clone(&self.db);
        let result = tokio::task::spawn_blocking(move || f(&db))
            .await
            // A panic in redb (a damaged page) ends up here, not in the server.
            .map_err(|e| self.damaged(&e))?;
        self.named(result)
    }

    /// Runs a point read where it is asked: reading a few records from
    /// redb's page cache takes microseconds, less than handing the work to
    /// another thread and back (measured: the hand-off was a tenth of the
    /// orchestrator's CPU under load, docs/benchmarks.md).
    fn inline<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&self.db)))
            // A panic in redb (a damaged page) ends up here, not in the server.
            .map_err(|_| self.damaged(&"panicked"))?;
        self.named(result)
    }

    fn damaged(&self, e: &dyn std::fmt::Display) -> IndexError {
        IndexError::storage(format!(
            "{}: a read failed ({e}); the file may be damaged",
            self.path.display()
        ))
    }

    /// Storage errors (a record that does not decode, redb's own) name the file.
    fn named<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|e| match e {
            IndexError::Storage(m) => IndexError::Storage(format!("{}: {m}", self.path.display())),
            other => other,
        })
    }
}

impl EmbeddedStore {
    /// One write of many points (a transaction: all or none).
    async fn put_points(&self, points: Vec<(NewPoint, Expect)>) -> Result<Vec<u64>> {
        match self.writer.write(Op::PutMany { points }).await? {
            Done::PutMany(versions) => Ok(versions),
            _ => Err(IndexError::storage("store writer answered another write")),
        }
    }
}

impl Store for EmbeddedStore {
    fn vector_precision(&self) -> VectorPrecision {
        self.precision
    }

    async fn put_document(
        &self,
        id: Uuid,
        vector: &[f32],
        payload: &Payload,
        document: &[u8],
        expect: Expect,
    ) -> Result<u64> {
        let point = Box::new(NewPoint {
            id,
            vector: vector.to_vec(),
            payload: payload.clone(),
            document: document.to_vec(),
        });
        match self.writer.write(Op::Put { point, expect }).await? {
            Done::Put(version) => Ok(version),
            _ => Err(IndexError::storage("store writer answered another write")),
        }
    }

    async fn put_many(&self, items: &[NewPoint]) -> Result<Vec<u64>> {
        let points = items.iter().map(|p| (p.clone(), Expect::Any)).collect();
        self.put_points(points).await
    }

    async fn put_all(&self, items: &[(NewPoint, Expect)]) -> Result<Vec<u64>> {
        self.put_points(items.to_vec()).await
    }

    async fn delete(&self, id: Uuid, expect: Expect) -> Result<Option<u64>> {
        match self.writer.write(Op::Delete { id, expect }).await? {
            Done::Delete(found) => Ok(found),
            _ => Err(IndexError::storage("store writer answered another write")),
        }
    }

    async fn get(&self, id: Uuid) -> Result<Option<Record>> {
        Ok(self.read_each(&[id], Self::record)?.pop().flatten())
    }

    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Option<Record>>> {
        self.read_each(ids, Self::record)
    }

    async fn get_entries(&self, ids: &[Uuid]) -> Result<Vec<Option<Entry>>> {
        // The epoch before the read: what was read is kept only if no write
        // was forgotten meanwhile (entry_cache's module doc).
        let mut out = vec![None; ids.len()];
        let (epoch, missing) = self.entries.lookup(ids, &mut out);
        if missing.is_empty() {
            return Ok(out);
        }
        let wanted: Vec<Uuid> = missing.iter().map(|&i| ids[i]).collect();
        let read = self.read_each(&wanted, |id, bytes| {
            let d = codec::decode_entry(bytes)?;
            Ok(Entry {
                id,
                version: d.version,
                payload: d.payload,
                document: d.document,
            })
        })?;
        self.entries.fill(epoch, read.iter().flatten());
        for (i, entry) in missing.into_iter().zip(read) {
            out[i] = entry;
        }
        Ok(out)
    }

    async fn save_snapshot(&self, bytes: Vec<u8>, _position: Position) -> Result<()> {
        let path = self.snapshot.clone();
        tokio::task::spawn_blocking(move || {
            // Write aside, fsync, then rename over: a crash leaves the old or the new file.
            let tmp = path.with_extension("snapshot.tmp");
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::File::create(&tmp)?;
                std::io::Write::write_all(&mut f, &bytes)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                if let Some(dir) = path.parent() {
                    std::fs::File::open(dir)?.sync_all()?;
                }
                Ok(())
            };
            write().map_err(|e| IndexError::storage(format!("{}: {e}", path.display())))
        })
        .await
        .map_err(|e| IndexError::storage(format!("store task failed: {e}")))?
    }

    async fn load_snapshot(&self) -> Result<Option<Vec<u8>>> {
        let path = self.snapshot.clone();
        tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IndexError::storage(format!("{}: {e}", path.display()))),
        })
        .await
        .map_err(|e| IndexError::storage(format!("store task failed: {e}")))?
    }

    async fn scan(&self, cursor: Cursor, limit: usize) -> Result<Page> {
        self.blocking(move |db| {
            let start = match cursor.0.as_str() {
                "" => 0,
                s => s
                    .parse::<u128>()
                    .map_err(|_| IndexError::storage("invalid scan cursor"))?,
            };
            let tx = db.begin_read().map_err(IndexError::storage)?;
            let records = tx.open_table(RECORDS).map_err(IndexError::storage)?;
            let mut out = Vec::new();
            let mut next = None;
            for entry in records.range(start..).map_err(IndexError::storage)? {
                let (key, value) = entry.map_err(IndexError::storage)?;
                let key = key.value();
                if out.len() >= limit.max(1) {
                    next = Some(Cursor(key.to_string()));
                    break;
                }
                let d = codec::decode(value.value())?;
                out.push(Record {
                    id: Uuid::from_u128(key),
                    version: d.version,
                    vector: d.vector,
                    payload: d.payload,
                    document: d.document,
                });
            }
            Ok(Page { records: out, next })
        })
        .await
    }
}

impl EmbeddedStore {
    /// Where the index snapshot lives.
    pub fn snapshot_path(&self) -> &Path {
        &self.snapshot
    }

    /// `decode` of each of the records `ids` that exists, in one read
    /// transaction: one consistent view, opened once.
    fn read_each<T>(
        &self,
        ids: &[Uuid],
        decode: impl Fn(Uuid, &[u8]) -> Result<T>,
    ) -> Result<Vec<Option<T>>> {
        self.inline(|db| {
            let tx = db.begin_read().map_err(IndexError::storage)?;
            let records = tx.open_table(RECORDS).map_err(IndexError::storage)?;
            ids.iter()
                .map(|id| {
                    let bytes = records.get(id.as_u128()).map_err(IndexError::storage)?;
                    bytes.map(|b| decode(*id, b.value())).transpose()
                })
                .collect()
        })
    }

    /// The record `id` stored as `bytes`.
    fn record(id: Uuid, bytes: &[u8]) -> Result<Record> {
        let d = codec::decode(bytes)?;
        Ok(Record {
            id,
            version: d.version,
            vector: d.vector,
            payload: d.payload,
            document: d.document,
        })
    }
}
