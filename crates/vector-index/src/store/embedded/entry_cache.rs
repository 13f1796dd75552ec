//! Recently read entries, decoded, so that a memory found again by the next
//! search skips redb's B-tree descent and the decoding of its payload.
//!
//! Only the embedded store has one: its file belongs to one process, and
//! every write to it passes the one writer thread, which forgets what it
//! changed before it answers the write. A reader that raced that writer
//! could put back what it read before the commit; so each fill names the
//! write epoch it started under ([`EntryCache::lookup`] gives it, before the
//! read transaction begins), and a fill is dropped if any write has been
//! forgotten since. What the cache holds is therefore never older than
//! the last acknowledged write.

use lru::LruCache;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::store::Entry;

/// What an entry costs the cache beyond its strings: the map's node and
/// the entry's own fields (an estimate; the budget is approximate).
const ENTRY_OVERHEAD: usize = 192;

/// Decoded entries by id, least recently read out first, within a byte budget.
pub(super) struct EntryCache {
    inner: Mutex<Inner>,
}

struct Inner {
    entries: LruCache<Uuid, (Entry, usize)>,
    /// At most this many bytes (estimated) are held.
    budget: usize,
    bytes: usize,
    /// Bumped by every forget: a fill begun under an older epoch is dropped.
    epoch: u64,
    hits: u64,
    misses: u64,
}

/// What an entry cache holds and how often it answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryCacheStats {
    /// Entries held.
    pub entries: u64,
    /// Their estimated bytes.
    pub bytes: u64,
    /// Entries asked for and found, since the store opened.
    pub hits: u64,
    /// Entries asked for and read from the file.
    pub misses: u64,
}

impl EntryCache {
    /// A cache of about `budget` bytes; 0 holds nothing.
    pub(super) fn new(budget: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                budget,
                bytes: 0,
                epoch: 0,
                hits: 0,
                misses: 0,
            }),
        }
    }

    /// The write epoch now.
    #[cfg(test)]
    fn epoch(&self) -> u64 {
        self.inner.lock().epoch
    }

    /// Copies of the cached entries of `ids` into `out` (same order). Returns
    /// the write epoch, to give [`Self::fill`] with what the store then
    /// reads, and the indexes of the ids it does not hold.
    pub(super) fn lookup(&self, ids: &[Uuid], out: &mut [Option<Entry>]) -> (u64, Vec<usize>) {
        let mut inner = self.inner.lock();
        if inner.budget == 0 {
            return (inner.epoch, (0..ids.len()).collect());
        }
        let mut missing = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match inner.entries.get(id) {
                Some((entry, _)) => out[i] = Some(entry.clone()),
                None => missing.push(i),
            }
        }
        inner.hits += (ids.len() - missing.len()) as u64;
        inner.misses += missing.len() as u64;
        (inner.epoch, missing)
    }

    /// What it holds now, and its hits and misses so far.
    pub(super) fn stats(&self) -> EntryCacheStats {
        let inner = self.inner.lock();
        EntryCacheStats {
            entries: inner.entries.len() as u64,
            bytes: inner.bytes as u64,
            hits: inner.hits,
            misses: inner.misses,
        }
    }

    /// Keeps `read` (entries read from the store after `epoch` was taken),
    /// unless a write was forgotten since.
    pub(super) fn fill<'a>(&self, epoch: u64, read: impl IntoIterator<Item = &'a Entry>) {
        let mut inner = self.inner.lock();
        if inner.epoch != epoch || inner.budget == 0 {
            return;
        }
        for entry in read {
            let cost = cost(entry);
            if cost > inner.budget / 8 {
                // A few large documents would push out many small ones.
                continue;
            }
            if let Some((_, old)) = inner.entries.put(entry.id, (entry.clone(), cost)) {
                inner.bytes -= old;
            }
            inner.bytes += cost;
        }
        inner.trim();
    }

    /// Holds at most about `budget` bytes from now on.
    pub(super) fn resize(&self, budget: usize) {
        let mut inner = self.inner.lock();
        inner.budget = budget;
        inner.trim();
    }

    /// Drops `ids` (written or deleted); fills begun before are dropped too.
    pub(super) fn forget(&self, ids: impl IntoIterator<Item = Uuid>) {
        let mut inner = self.inner.lock();
        inner.epoch += 1;
        for id in ids {
            if let Some((_, cost)) = inner.entries.pop(&id) {
                inner.bytes -= cost;
            }
        }
    }
}

impl Inner {
    /// Drops the least recently read until within the budget.
    fn trim(&mut self) {
        while self.bytes > self.budget {
            match self.entries.pop_lru() {
                Some((_, (_, cost))) => self.bytes -= cost,
                None => break,
            }
        }
    }
}

/// About what `entry` occupies in the cache, in bytes.
fn cost(entry: &Entry) -> usize {
    let p = &entry.payload;
    let strings = [&p.agent_id, &p.user_id, &p.session_id, &p.kind]
        .into_iter()
        .flatten()
        .map(String::len)
        .sum::<usize>()
        + p.tags
            .iter()
            .chain(&p.attributes)
            .map(|s| s.len() + 24)
            .sum::<usize>();
    ENTRY_OVERHEAD + entry.document.len() + p.text.len() + p.namespace.len() + strings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;

    fn entry(n: u128, document: &str) -> Entry {
        Entry {
            id: Uuid::from_u128(n),
            version: 1,
            payload: Payload {
                namespace: "ns".into(),
                ..Payload::default()
            },
            document: document.as_bytes().to_vec(),
        }
    }

    fn held(cache: &EntryCache, n: u128) -> Option<Entry> {
        let mut out = [None];
        cache.lookup(&[Uuid::from_u128(n)], &mut out);
        let [e] = out;
        e
    }

    #[test]
    fn a_fill_is_held_until_its_id_is_forgotten() {
        let cache = EntryCache::new(1 << 20);
        cache.fill(cache.epoch(), [&entry(1, "a"), &entry(2, "b")]);
        assert_eq!(held(&cache, 1).map(|e| e.document), Some(b"a".to_vec()));
        cache.forget([Uuid::from_u128(1)]);
        assert!(held(&cache, 1).is_none());
        assert!(
            held(&cache, 2).is_some(),
            "only the written id is forgotten"
        );
    }

    #[test]
    fn a_fill_that_raced_a_write_is_dropped() {
        let cache = EntryCache::new(1 << 20);
        // A reader takes the epoch, then reads the store; the writer commits
        // and forgets before the reader fills: what it read may be stale.
        let before = cache.epoch();
        cache.forget([Uuid::from_u128(1)]);
        cache.fill(before, [&entry(1, "old")]);
        assert!(held(&cache, 1).is_none());
        cache.fill(cache.epoch(), [&entry(1, "new")]);
        assert_eq!(held(&cache, 1).map(|e| e.document), Some(b"new".to_vec()));
    }

    #[test]
    fn the_least_recently_read_leave_first_within_the_budget() {
        let one = cost(&entry(0, &"x".repeat(100)));
        let cache = EntryCache::new(8 * one + one / 2);
        for n in 0..8 {
            cache.fill(cache.epoch(), [&entry(n, &"x".repeat(100))]);
        }
        assert!(held(&cache, 0).is_some(), "read again: now the most recent");
        cache.fill(cache.epoch(), [&entry(8, &"x".repeat(100))]);
        assert!(held(&cache, 0).is_some());
        assert!(held(&cache, 1).is_none(), "the least recently read left");
        assert!(cache.inner.lock().bytes <= 8 * one + one / 2);
        // Larger than an eighth of the budget: never held.
        cache.fill(cache.epoch(), [&entry(9, &"x".repeat(2 * one))]);
        assert!(held(&cache, 9).is_none());
    }

    #[test]
    fn a_budget_of_zero_holds_nothing() {
        let cache = EntryCache::new(1 << 20);
        cache.fill(cache.epoch(), [&entry(1, "a")]);
        cache.resize(0);
        assert!(held(&cache, 1).is_none(), "shrinking drops what is over");
        cache.fill(cache.epoch(), [&entry(1, "a")]);
        assert!(held(&cache, 1).is_none());
    }
}
