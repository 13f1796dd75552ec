//! A collection kept durable by a [`Store`] and, with a [`ChangeFeed`], in step
//! with every other instance writing to the same store.
//!
//! The store is the truth; the in-memory [`Collection`] is a cache of it that
//! answers searches. A local write goes to the store first and is applied to
//! the index before it is acknowledged (read-your-writes). Other instances'
//! writes arrive as feed entries that name a record; the follower re-reads that
//! record and applies whatever the store holds *now*. Store write plus local
//! apply, and re-read plus apply, run under a per-id lock, so the index ends in
//! the store's latest state whatever order the entries and local writes race in.
//!
//! This module is the write-through collection; [`follower`] is the
//! replication (the change feed, gaps, resyncs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hashbrown::{HashMap, HashSet};
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::collection::{
    Collection, CollectionConfig, KeywordQuery, KeywordResult, Query, SearchResult,
};
use crate::error::{IndexError, Result};
use crate::filter::{Condition, Filter};
use crate::payload::{Millis, Payload, TimeField};
use crate::store::{Cursor, Entry, Expect, NewPoint, Position, Record, Store};

mod follower;

/// `read` with what has expired turned to `None`, judged at one clock
/// reading: every item of a batch at the same instant.
fn alive<T>(read: Vec<Option<T>>, payload: impl Fn(&T) -> &Payload) -> Vec<Option<T>> {
    let now = now_millis();
    read.into_iter()
        .map(|item| item.filter(|item| payload(item).alive_at(now)))
        .collect()
}

/// Own writes remembered for the follower at most (then forgotten: re-read).
const OWN_WRITES_MAX: usize = 1 << 16;
/// Per-id locks, hashed into this many stripes.
const STRIPES: usize = 256;
/// Records read per page when loading.
const LOAD_PAGE: usize = 1000;
/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(Millis::MAX))
}

/// Replication counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicationStats {
    /// The last feed position applied.
    pub position: Position,
    /// Age of the last applied entry when it was applied, in ms (store clock vs ours).
    pub lag_ms: u64,
    /// Full resyncs after falling behind a trimmed feed.
    pub resyncs: u64,
    /// Stored records the index rejected (e.g. wrong dimension), left out of searches.
    pub rejected: u64,
    /// Whether the index started from a snapshot.
    pub restored_from_snapshot: bool,
    /// Snapshots found damaged or mismatched at startup (then every record was loaded).
    pub snapshots_rejected: u64,
    /// Points of the snapshot restored at startup whose records no longer
    /// held the vector it was taken with (changed or deleted since): written
    /// again or deleted at startup. The rest kept their place in the graph.
    pub snapshot_points_stale: u64,
    /// Feed entries the follower applied by re-reading the record (others' writes).
    pub refreshed: u64,
    /// Feed entries of this instance's own writes, skipped: the index has them.
    pub own_skipped: u64,
}

/// What a restore's pass over the records found.
#[derive(Default)]
struct Scanned {
    /// Every id the store holds.
    seen: HashSet<Uuid>,
    /// Records the restored index does not hold as they are: apply them again.
    redo: HashSet<Uuid>,
    /// Points of the snapshot that did not take their vector back.
    stale: u64,
}

/// A [`Collection`] backed by a [`Store`].
pub struct DurableCollection<S> {
    index: Collection,
    store: S,
    stripes: Box<[tokio::sync::Mutex<()>]>,
    ready: AtomicBool,
    /// The follower's last read of the feed succeeded (always true without one).
    reachable: AtomicBool,
    position: Mutex<Position>,
    lag_ms: AtomicU64,
    resyncs: AtomicU64,
    rejected: AtomicU64,
    snapshots_rejected: AtomicU64,
    restored: bool,
    snapshot_points_stale: u64,
    /// Whether snapshots leave the vectors to the records (see [`Self::open`]).
    snapshots_without_vectors: bool,
    /// Versions this instance wrote and applied, until the follower sees them.
    own_writes: Mutex<HashMap<Uuid, u64>>,
    refreshed: AtomicU64,
    own_skipped: AtomicU64,
}

impl<S: Store> DurableCollection<S> {
    /// Opens the collection from the stored snapshot, reconciled with the records,
    /// or by loading every record when there is no usable snapshot; ready when it returns.
    pub async fn open(config: CollectionConfig, store: S) -> Result<Arc<Self>> {
        // Restored or empty, the index is then reconciled with the records.
        let (mut this, _, scanned) = Self::restore_or_empty(config, store).await?;
        match scanned {
            Some(scanned) => this.reconcile_scanned(scanned).await?,
            None => this.reconcile().await?,
        }
        // The records are read at every open anyway, so snapshots leave the
        // vectors to them (a follower, which starts from the feed, keeps them).
        this.snapshots_without_vectors = true;
        this.ready.store(true, Ordering::Release);
        Ok(Arc::new(this))
    }

    /// An index restored from the stored snapshot (with the position it was taken
    /// at), or an empty one when there is none or it is unusable; with what the
    /// pass over the records found if the snapshot needed one.
    async fn restore_or_empty(
        config: CollectionConfig,
        store: S,
    ) -> Result<(Self, Option<Position>, Option<Scanned>)> {
        let mut rejected = 0;
        let bytes = match store.load_snapshot().await {
            Ok(bytes) => bytes,
            Err(IndexError::CorruptSnapshot(_)) => {
                rejected = 1;
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(bytes) = bytes {
            match Self::restore_from_records(config.clone(), &bytes, &store).await {
                Ok((index, meta, scanned)) => match Position::parse(&meta) {
                    Some(position) => {
                        let mut this = Self::with_index(index, store);
                        this.restored = true;
                        this.snapshot_points_stale = scanned.as_ref().map_or(0, |s| s.stale);
                        return Ok((this, Some(position), scanned));
                    }
                    None => rejected = 1,
                },
                Err(IndexError::CorruptSnapshot(_)) => rejected = 1,
                Err(e) => return Err(e),
            }
        }
        let this = Self::with_index(Collection::new(config)?, store);
        this.snapshots_rejected
            .fetch_add(rejected, Ordering::Relaxed);
        Ok((this, None, None))
    }

    /// Loads a snapshot, giving a graph saved without its vectors the
    /// records' vectors back in one pass over the records, which also notes
    /// what the reconcile must do (so it need not read them all again).
    /// Returns the index, the snapshot's meta and what the pass found.
    async fn restore_from_records(
        config: CollectionConfig,
        bytes: &[u8],
        store: &S,
    ) -> Result<(Collection, String, Option<Scanned>)> {
        let mut unpacked = Collection::unpack(config, bytes)?;
        if !unpacked.wants_vectors() {
            let (index, meta) = unpacked.finish()?;
            return Ok((index, meta, None));
        }
        let mut scanned = Scanned::default();
        for_each_page(store, |records| {
            for r in &records {
                scanned.seen.insert(r.id);
                // Both halves run: a point whose payload alone changed
                // still takes its vector back and keeps its graph place.
                let filled = unpacked.fill(r.id, &r.vector);
                if !(filled && unpacked.holds_payload(r.id, &r.payload)) {
                    scanned.redo.insert(r.id);
                }
            }
            Ok(())
        })
        .await?;
        scanned.stale = unpacked.unfilled() as u64;
        let (index, meta) = unpacked.finish()?;
        Ok((index, meta, Some(scanned)))
    }

    /// Takes a snapshot of the index and stores it; returns its size in bytes.
    ///
    /// Writes to this instance wait while the index is serialised; searches do not.
    pub async fn snapshot(&self) -> Result<usize> {
        // The position first: entries applied after it are replayed on restore,
        // which is harmless; none before it can be missing from the index.
        let position = *self.position.lock();
        let meta = position.to_string();
        let bytes = if self.snapshots_without_vectors {
            // The records hold every vector: the snapshot keeps a fingerprint of each.
            self.index.snapshot_without_vectors(&meta)?
        } else {
            self.index.snapshot(&meta)?
        };
        let size = bytes.len();
        self.store.save_snapshot(bytes, position).await?;
        Ok(size)
    }

    /// Takes a snapshot every `every` until the collection is dropped.
    pub fn spawn_snapshotter(self: &Arc<Self>, every: Duration) -> JoinHandle<()> {
        // A failed snapshot (store down) is retried on the next tick.
        self.spawn_periodic(
            every,
            |this| async move { this.snapshot().await.map(|_| ()) },
        )
    }

    /// Runs `task` every `every` until the collection is dropped; errors wait for the next tick.
    fn spawn_periodic<F, Fut>(self: &Arc<Self>, every: Duration, task: F) -> JoinHandle<()>
    where
        F: Fn(Arc<Self>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send,
    {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(this) = weak.upgrade() else { return };
                let _ = task(this).await;
            }
        })
    }

    fn with_index(index: Collection, store: S) -> Self {
        Self {
            index,
            store,
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            ready: AtomicBool::new(false),
            reachable: AtomicBool::new(true),
            position: Mutex::new(Position::default()),
            lag_ms: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            snapshots_rejected: AtomicU64::new(0),
            restored: false,
            snapshot_points_stale: 0,
            snapshots_without_vectors: false,
            own_writes: Mutex::new(HashMap::new()),
            refreshed: AtomicU64::new(0),
            own_skipped: AtomicU64::new(0),
        }
    }

    /// The in-memory index (read-only use: writes must go through this type).
    pub fn index(&self) -> &Collection {
        &self.index
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Whether the index has loaded and caught up with the feed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Whether the store answered the follower's last read. Documents are
    /// read from the store, so while this is false reads fail as writes do
    /// and the instance should not take traffic. Without a follower (the
    /// embedded store lives in this process) it is always true.
    pub fn store_reachable(&self) -> bool {
        self.reachable.load(Ordering::Acquire)
    }

    /// Replication position, lag and counters.
    pub fn replication(&self) -> ReplicationStats {
        ReplicationStats {
            position: *self.position.lock(),
            lag_ms: self.lag_ms.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            restored_from_snapshot: self.restored,
            snapshot_points_stale: self.snapshot_points_stale,
            snapshots_rejected: self.snapshots_rejected.load(Ordering::Relaxed),
            refreshed: self.refreshed.load(Ordering::Relaxed),
            own_skipped: self.own_skipped.load(Ordering::Relaxed),
        }
    }

    /// Notes writes this instance made and applied, so that the follower does
    /// not read them back from the store.
    fn remember_own(&self, writes: impl IntoIterator<Item = (Uuid, u64)>) {
        let mut own = self.own_writes.lock();
        // Entries the follower passed before they were noted are never
        // removed; forgetting them all only costs re-reads.
        if own.len() >= OWN_WRITES_MAX {
            own.clear();
        }
        own.extend(writes);
    }

    fn stripe_of(&self, id: Uuid) -> usize {
        let h = id.as_u128();
        ((h ^ (h >> 64)) as usize) % STRIPES
    }

    fn stripe(&self, id: Uuid) -> &tokio::sync::Mutex<()> {
        &self.stripes[self.stripe_of(id)]
    }

    /// Writes the point if `expect` allows; searchable when this returns. Returns its version.
    pub async fn upsert(
        &self,
        id: Uuid,
        vector: &[f32],
        payload: Payload,
        expect: Expect,
    ) -> Result<u64> {
        self.upsert_document(id, vector, payload, &[], expect).await
    }

    /// Writes the point with a `document` stored beside it (not indexed) if
    /// `expect` allows; searchable when this returns. Returns its version.
    pub async fn upsert_document(
        &self,
        id: Uuid,
        vector: &[f32],
        payload: Payload,
        document: &[u8],
        expect: Expect,
    ) -> Result<u64> {
        // Bad input is rejected before the store sees it.
        self.index.validate(vector, &payload)?;
        let _guard = self.stripe(id).lock().await;
        let version = self
            .store
            .put_document(id, vector, &payload, document, expect)
            .await?;
        // The index holds what the store will give back (not what it was
        // sent), so a restart or another instance searches the same vectors.
        let kept = self.store.vector_precision().round(vector);
        self.index.upsert(id, &kept, payload)?;
        self.remember_own([(id, version)]);
        Ok(version)
    }

    /// Writes many points (each as with [`Expect::Any`]) in one store round trip;
    /// all are searchable when this returns. Returns their versions in order.
    pub async fn upsert_many(&self, items: Vec<NewPoint>) -> Result<Vec<u64>> {
        for p in &items {
            self.index.validate(&p.vector, &p.payload)?;
        }
        let _guards = self.lock_stripes(items.iter().map(|p| p.id)).await;
        let versions = self.store.put_many(&items).await?;
        self.applied(items, &versions)?;
        Ok(versions)
    }

    /// Writes every point if each one's `expect` allows, else none (a
    /// compare-and-set over several records, in one store write); all are
    /// searchable when this returns. Returns their versions in order.
    pub async fn upsert_all(&self, items: Vec<(NewPoint, Expect)>) -> Result<Vec<u64>> {
        for (p, _) in &items {
            self.index.validate(&p.vector, &p.payload)?;
        }
        let _guards = self.lock_stripes(items.iter().map(|(p, _)| p.id)).await;
        let versions = self.store.put_all(&items).await?;
        self.applied(items.into_iter().map(|(p, _)| p).collect(), &versions)?;
        Ok(versions)
    }

    /// Brings the index up to a batch the store has just written, with each
    /// vector as the store will give it back (see [`Self::upsert_document`]).
    fn applied(&self, mut items: Vec<NewPoint>, versions: &[u64]) -> Result<()> {
        let precision = self.store.vector_precision();
        for p in &mut items {
            if let std::borrow::Cow::Owned(v) = precision.round(&p.vector) {
                p.vector = v;
            }
        }
        let written: Vec<(Uuid, u64)> = items
            .iter()
            .map(|p| p.id)
            .zip(versions.iter().copied())
            .collect();
        // Duplicates within the batch must apply in order: parallel apply is
        // for distinct ids only.
        let distinct: HashSet<Uuid> = items.iter().map(|p| p.id).collect();
        if distinct.len() == items.len() {
            self.apply_all(
                items
                    .into_iter()
                    .map(|p| Record {
                        id: p.id,
                        version: 0,
                        vector: p.vector,
                        payload: p.payload,
                        document: Vec::new(),
                    })
                    .collect(),
            )?;
        } else {
            for p in items {
                self.index.upsert(p.id, &p.vector, p.payload)?;
            }
        }
        // A repeated id keeps its last version; the earlier ones are re-read.
        self.remember_own(written);
        Ok(())
    }

    /// Deletes the point if `expect` allows; returns the deleted version, if any.
    pub async fn delete(&self, id: Uuid, expect: Expect) -> Result<Option<u64>> {
        let _guard = self.stripe(id).lock().await;
        let found = self.store.delete(id, expect).await?;
        if found.is_some() {
            self.index.delete(id)?;
        }
        Ok(found)
    }

    /// The stored record, with its version; `None` once it has expired
    /// (even before the sweeper deletes it).
    pub async fn get(&self, id: Uuid) -> Result<Option<Record>> {
        let now = now_millis();
        Ok(self
            .store
            .get(id)
            .await?
            .filter(|r| r.payload.alive_at(now)))
    }

    /// The stored records `ids`, in order, in one read; expired ones are `None`.
    pub async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Option<Record>>> {
        let records = self.store.get_many(ids).await?;
        Ok(alive(records, |r| &r.payload))
    }

    /// [`Self::get_many`] without the vectors ([`Store::get_entries`]).
    pub async fn get_entries(&self, ids: &[Uuid]) -> Result<Vec<Option<Entry>>> {
        let entries = self.store.get_entries(ids).await?;
        Ok(alive(entries, |e| &e.payload))
    }

    /// Ids of the live points `filter` matches (expired points never match).
    pub fn ids_matching(&self, filter: &Filter) -> Vec<Uuid> {
        let mut filter = filter.clone();
        alive_now(&mut filter);
        self.index.ids_matching(&filter)
    }

    /// How many live points `filter` matches.
    pub fn count_matching(&self, filter: &Filter) -> u64 {
        let mut filter = filter.clone();
        alive_now(&mut filter);
        self.index.count_matching(&filter)
    }

    /// Searches the index; points whose `expires_at` has passed are never returned.
    pub fn search(&self, query: &Query) -> Result<SearchResult> {
        let mut query = query.clone();
        alive_now(&mut query.filter);
        self.index.search(&query)
    }

    /// Keyword (BM25) search; points whose `expires_at` has passed are never returned.
    pub fn search_keyword(&self, query: &KeywordQuery) -> Result<KeywordResult> {
        let mut query = query.clone();
        alive_now(&mut query.filter);
        self.index.search_keyword(&query)
    }

    /// Deletes every point expired at `now` through the normal delete path
    /// (so every instance sees it); returns how many this call deleted.
    pub async fn sweep_expired(&self, now: Millis) -> Result<usize> {
        let expired = Filter::all().range(TimeField::Expires, None, now.checked_add(1));
        let mut deleted = 0;
        for id in self.index.ids_matching(&expired) {
            let Some(record) = self.store.get(id).await? else {
                self.refresh(id).await?;
                continue;
            };
            if record.payload.expires_at.is_none_or(|e| e > now) {
                continue;
            }
            // Only the version we saw expire: an update in between wins.
            match self.delete(id, Expect::Version(record.version)).await {
                Ok(Some(_)) => deleted += 1,
                Ok(None) | Err(IndexError::VersionConflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// Runs [`Self::sweep_expired`] every `every` until the collection is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) -> JoinHandle<()> {
        // A failed sweep (store down) is retried on the next tick.
        self.spawn_periodic(every, |this| async move {
            this.sweep_expired(now_millis()).await.map(|_| ())
        })
    }

    /// Applies a stored record to the index, or counts it if the index rejects it.
    fn apply(&self, record: Record) -> Result<()> {
        // The follower re-reads this instance's own writes too: skip a record
        // the index already holds, rather than re-inserting it into the graph.
        if self.index.holds(record.id, &record.vector, &record.payload) {
            return Ok(());
        }
        match self.index.upsert(record.id, &record.vector, record.payload) {
            Ok(_) => Ok(()),
            Err(
                IndexError::DimensionMismatch { .. }
                | IndexError::NonFinite { .. }
                | IndexError::ZeroVector
                | IndexError::InvalidPayload(_),
            ) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                self.index.delete(record.id)?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Applies records with distinct ids on every core. Graph insertion is the
    /// slow part of loading and of batches, and both backends insert in parallel.
    /// This blocks the calling thread for the duration.
    fn apply_all(&self, records: Vec<Record>) -> Result<()> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads < 2 || records.len() < 64 {
            return records.into_iter().try_for_each(|r| self.apply(r));
        }
        let per = records.len().div_ceil(threads);
        let mut chunks: Vec<Vec<Record>> = Vec::with_capacity(threads);
        let mut records = records.into_iter();
        for _ in 0..threads {
            chunks.push(records.by_ref().take(per).collect());
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| s.spawn(move || chunk.into_iter().try_for_each(|r| self.apply(r))))
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(IndexError::storage("an index worker panicked")))
            })
        })
    }

    /// Locks the stripes of `ids`, in ascending order so two batches cannot deadlock.
    async fn lock_stripes(
        &self,
        ids: impl Iterator<Item = Uuid>,
    ) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = ids.map(|id| self.stripe_of(id)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for s in stripes {
            guards.push(self.stripes[s].lock().await);
        }
        guards
    }

    /// [`Self::refresh`] for many ids with one store round trip: their stripes are
    /// locked (in ascending order, so batches cannot deadlock), the records read
    /// together, and the index made to match.
    async fn refresh_many(&self, mut ids: Vec<Uuid>) -> Result<()> {
        ids.sort_unstable();
        ids.dedup();
        let _guards = self.lock_stripes(ids.iter().copied()).await;
        self.refresh_locked(ids).await
    }

    /// Makes the index hold what the store holds for `ids` (sorted, distinct),
    /// whose stripes the caller holds.
    async fn refresh_locked(&self, ids: Vec<Uuid>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let records = self.store.get_many(&ids).await?;
        let mut present = Vec::with_capacity(records.len());
        for (id, record) in ids.into_iter().zip(records) {
            match record {
                Some(r) => present.push(r),
                None => {
                    self.index.delete(id)?;
                }
            }
        }
        self.apply_all(present)
    }

    /// Makes the index hold what the store holds for `id` now.
    async fn refresh(&self, id: Uuid) -> Result<()> {
        let _guard = self.stripe(id).lock().await;
        match self.store.get(id).await? {
            Some(record) => self.apply(record),
            None => self.index.delete(id).map(|_| ()),
        }
    }

    /// [`Self::reconcile`] from what the restore's pass over the records
    /// found: applies the records it listed and drops the points the store no
    /// longer has, without reading every record again.
    async fn reconcile_scanned(&self, scanned: Scanned) -> Result<()> {
        let redo: Vec<Uuid> = scanned.redo.into_iter().collect();
        for ids in redo.chunks(LOAD_PAGE) {
            let records = self.store.get_many(ids).await?;
            self.apply_all(records.into_iter().flatten().collect())?;
        }
        self.drop_unseen(&scanned.seen)
    }

    /// Brings the index in line with the records: applies what differs, drops
    /// what the store no longer has. Loads an empty index, or reconciles a
    /// restored one. Only at open, before anyone else can write through this
    /// instance.
    async fn reconcile(&self) -> Result<()> {
        let mut seen = HashSet::new();
        for_each_page(&self.store, |records| {
            seen.extend(records.iter().map(|r| r.id));
            // `apply` skips records the index already holds unchanged; a key
            // Redis SCAN repeats is applied twice, harmlessly.
            self.apply_all(records)
        })
        .await?;
        self.drop_unseen(&seen)
    }

    /// Deletes the points whose ids the store did not list.
    fn drop_unseen(&self, seen: &HashSet<Uuid>) -> Result<()> {
        for id in self.index.ids_matching(&Filter::all()) {
            if !seen.contains(&id) {
                self.index.delete(id)?;
            }
        }
        Ok(())
    }
}

/// Hands every record of `store` to `each_page`, a page at a time.
async fn for_each_page<S: Store>(
    store: &S,
    mut each_page: impl FnMut(Vec<Record>) -> Result<()>,
) -> Result<()> {
    let mut cursor = Cursor::default();
    loop {
        let page = store.scan(cursor, LOAD_PAGE).await?;
        each_page(page.records)?;
        match page.next {
            Some(next) => cursor = next,
            None => return Ok(()),
        }
    }
}

/// Narrows `filter` to points not expired now: a search never returns an
/// expired point, even before the sweeper deletes it.
fn alive_now(filter: &mut Filter) {
    filter
        .conditions
        .push(Condition::NotExpiredAt(now_millis()));
}
