//! Replication: following the store's change feed. Each entry names a
//! record; the follower re-reads it and applies what the store holds now,
//! skipping the entries of this instance's own writes. A follower behind a
//! gap (entries trimmed or deleted after its position) resyncs from a full
//! scan. The task ends when the collection is dropped.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use hashbrown::{HashMap, HashSet};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{DurableCollection, LOAD_PAGE, now_millis};
use crate::collection::CollectionConfig;
use crate::error::Result;
use crate::filter::Filter;
use crate::store::{Change, ChangeFeed, Cursor, Position, Store};

/// Feed entries read per call.
const FEED_BATCH: usize = 1000;
/// How long a feed read waits for new entries.
const FEED_BLOCK: Duration = Duration::from_millis(500);
/// Pause after a failed feed read before trying again.
const FEED_RETRY: Duration = Duration::from_millis(200);

impl<S: Store> DurableCollection<S> {
    /// Opens the collection, and follows `feed` on a background task.
    ///
    /// With a usable snapshot the index is restored and the feed replayed from
    /// the snapshot's position; otherwise every record is loaded. Returns once
    /// that is done; [`Self::is_ready`] turns true when the follower has caught
    /// up. The task stops when the collection is dropped.
    pub async fn open_following<F: ChangeFeed>(
        config: CollectionConfig,
        store: S,
        feed: F,
    ) -> Result<(Arc<Self>, JoinHandle<()>)> {
        // Everything written after `start` is replayed, so a write racing with
        // the load is never lost (replaying re-reads, so repeats are harmless).
        let head = feed.head().await?;
        // A snapshot an `open` instance took without vectors costs one pass
        // over the records here; the feed, not that pass, brings in what changed.
        let (this, restored, _) = Self::restore_or_empty(config, store).await?;
        let start = match restored {
            Some(position) => position,
            None => {
                this.reconcile().await?;
                head
            }
        };
        *this.position.lock() = start;
        let this = Arc::new(this);
        let task = tokio::spawn(follow(Arc::downgrade(&this), feed, start));
        Ok((this, task))
    }

    /// Follows `feed` from the last applied position on a new background task
    /// (e.g. after the previous one was stopped).
    pub fn spawn_follower<F: ChangeFeed>(self: &Arc<Self>, feed: F) -> JoinHandle<()> {
        let start = *self.position.lock();
        tokio::spawn(follow(Arc::downgrade(self), feed, start))
    }

    /// Whether `change` is this instance's own write, already applied.
    fn is_own(own: &HashMap<Uuid, u64>, change: &Change) -> bool {
        change
            .version
            .is_some_and(|version| own.get(&change.id) == Some(&version))
    }

    /// Forgets the own write `change` reports, or one a newer change superseded.
    fn forget_seen(own: &mut HashMap<Uuid, u64>, change: &Change) {
        if let Some(version) = change.version
            && own.get(&change.id).is_some_and(|&mine| mine <= version)
        {
            own.remove(&change.id);
        }
    }

    /// Applies feed entries: this instance's own writes are skipped (the index
    /// has them), the others' records are read back from the store.
    async fn apply_changes(&self, batch: &[Change]) -> Result<()> {
        let mut ids: Vec<Uuid> = batch.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        // A writer holds an id's stripe from before its store write until it
        // has noted the write as its own, so under the stripes every own
        // write of this batch is known.
        let _guards = self.lock_stripes(ids.iter().copied()).await;
        let mut others: Vec<Uuid> = {
            let own = self.own_writes.lock();
            batch
                .iter()
                .filter(|c| !Self::is_own(&own, c))
                .map(|c| c.id)
                .collect()
        };
        let (skipped, refreshed) = (batch.len() - others.len(), others.len());
        others.sort_unstable();
        others.dedup();
        // A batch that fails is read again whole: its own writes must still
        // be known then, and nothing counted twice.
        self.refresh_locked(others).await?;
        {
            let mut own = self.own_writes.lock();
            for change in batch {
                Self::forget_seen(&mut own, change);
            }
        }
        self.own_skipped
            .fetch_add(skipped as u64, Ordering::Relaxed);
        self.refreshed
            .fetch_add(refreshed as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Rebuilds the index's view from the store after missing feed entries.
    async fn resync<F: ChangeFeed>(&self, feed: &F) -> Result<Position> {
        // Re-reading everything covers our own writes too.
        self.own_writes.lock().clear();
        let head = feed.head().await?;
        let mut seen = HashSet::new();
        let mut cursor = Cursor::default();
        loop {
            let page = self.store.scan(cursor, LOAD_PAGE).await?;
            let ids: Vec<Uuid> = page.records.iter().map(|r| r.id).collect();
            seen.extend(ids.iter().copied());
            // Re-read under the per-id locks: writes may race with the resync.
            self.refresh_many(ids).await?;
            match page.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        // Points the store no longer has (deleted while we were behind).
        let gone: Vec<Uuid> = self
            .index
            .ids_matching(&Filter::all())
            .into_iter()
            .filter(|id| !seen.contains(id))
            .collect();
        self.refresh_many(gone).await?;
        self.resyncs.fetch_add(1, Ordering::Relaxed);
        Ok(head)
    }

    /// One round of following: returns whether the feed is drained.
    async fn follow_once<F: ChangeFeed>(&self, feed: &F, position: &mut Position) -> Result<bool> {
        if feed.gap_after(*position).await? {
            *position = self.resync(feed).await?;
            *self.position.lock() = *position;
            return Ok(false);
        }
        // Until caught up, poll: an empty answer means ready now, not after a block.
        let block = if self.is_ready() {
            FEED_BLOCK
        } else {
            Duration::ZERO
        };
        let batch = feed.read(*position, block, FEED_BATCH).await?;
        let Some(last) = batch.last() else {
            return Ok(true);
        };
        self.apply_changes(&batch).await?;
        *position = last.position;
        *self.position.lock() = last.position;
        let now = u64::try_from(now_millis()).unwrap_or(0);
        self.lag_ms
            .store(now.saturating_sub(last.position.millis), Ordering::Relaxed);
        Ok(batch.len() < FEED_BATCH)
    }
}

/// The follower task: applies feed entries until the collection is dropped.
async fn follow<S: Store, F: ChangeFeed>(
    weak: Weak<DurableCollection<S>>,
    feed: F,
    mut position: Position,
) {
    loop {
        let Some(this) = weak.upgrade() else { return };
        match this.follow_once(&feed, &mut position).await {
            Ok(drained) => {
                this.reachable.store(true, Ordering::Release);
                if drained {
                    this.ready.store(true, Ordering::Release);
                }
            }
            Err(_) => {
                // Store unreachable (or refusing, e.g. while loading its data):
                // say so for readiness, and retry.
                this.reachable.store(false, Ordering::Release);
                drop(this);
                tokio::time::sleep(FEED_RETRY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::error::IndexError;
    use crate::payload::Payload;
    use crate::store::{EmbeddedStore, Expect, NewPoint, Page, Record};

    /// The embedded store, whose batched reads fail while `fail_reads` is set.
    struct FlakyStore {
        inner: EmbeddedStore,
        fail_reads: Arc<AtomicBool>,
    }

    impl Store for FlakyStore {
        fn vector_precision(&self) -> crate::store::VectorPrecision {
            self.inner.vector_precision()
        }
        async fn put_document(
            &self,
            id: Uuid,
            vector: &[f32],
            payload: &Payload,
            document: &[u8],
            expect: Expect,
        ) -> Result<u64> {
            self.inner
                .put_document(id, vector, payload, document, expect)
                .await
        }
        async fn put_many(&self, items: &[NewPoint]) -> Result<Vec<u64>> {
            self.inner.put_many(items).await
        }
        async fn put_all(&self, items: &[(NewPoint, Expect)]) -> Result<Vec<u64>> {
            self.inner.put_all(items).await
        }
        async fn delete(&self, id: Uuid, expect: Expect) -> Result<Option<u64>> {
            self.inner.delete(id, expect).await
        }
        async fn get(&self, id: Uuid) -> Result<Option<Record>> {
            self.inner.get(id).await
        }
        async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Option<Record>>> {
            if self.fail_reads.load(Ordering::SeqCst) {
                return Err(IndexError::storage("read timed out (test)"));
            }
            self.inner.get_many(ids).await
        }
        async fn scan(&self, cursor: Cursor, limit: usize) -> Result<Page> {
            self.inner.scan(cursor, limit).await
        }
        async fn save_snapshot(&self, bytes: Vec<u8>, position: Position) -> Result<()> {
            self.inner.save_snapshot(bytes, position).await
        }
        async fn load_snapshot(&self) -> Result<Option<Vec<u8>>> {
            self.inner.load_snapshot().await
        }
    }

    fn change(id: Uuid, version: u64, seq: u64) -> Change {
        Change {
            position: Position { millis: 1, seq },
            id,
            version: Some(version),
        }
    }

    #[tokio::test]
    async fn a_feed_batch_that_fails_is_retried_with_its_own_writes_still_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let fail_reads = Arc::new(AtomicBool::new(false));
        let store = FlakyStore {
            inner: EmbeddedStore::open(dir.path().join("db")).unwrap(),
            fail_reads: fail_reads.clone(),
        };
        let collection = DurableCollection::open(CollectionConfig::new(2), store)
            .await
            .unwrap();
        // One write of ours, and one another instance made straight to the store.
        let mine = Uuid::now_v7();
        let my_version = collection
            .upsert(mine, &[1.0, 0.0], Payload::new("ns"), Expect::Any)
            .await
            .unwrap();
        let theirs = Uuid::now_v7();
        let their_version = collection
            .store
            .put(theirs, &[0.0, 1.0], &Payload::new("ns"), Expect::Any)
            .await
            .unwrap();
        let batch = [
            change(mine, my_version, 0),
            change(theirs, their_version, 1),
        ];

        fail_reads.store(true, Ordering::SeqCst);
        assert!(collection.apply_changes(&batch).await.is_err());
        let r = collection.replication();
        assert_eq!((r.own_skipped, r.refreshed), (0, 0), "nothing counted");
        assert!(!collection.index().contains(theirs));

        fail_reads.store(false, Ordering::SeqCst);
        collection.apply_changes(&batch).await.unwrap();
        let r = collection.replication();
        assert_eq!((r.own_skipped, r.refreshed), (1, 1), "counted once: {r:?}");
        assert!(collection.index().contains(theirs));
        assert!(
            collection.own_writes.lock().is_empty(),
            "seen writes forgotten"
        );
    }
}
