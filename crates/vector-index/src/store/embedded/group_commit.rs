//! Group commit for the embedded store: one thread owns redb's single write
//! transaction and commits every write queued while the previous commit was
//! syncing, with one fsync for all of them.
//!
//! Each write keeps its own outcome: a version conflict fails that write
//! alone, and writes in one group see each other in queue order. A caller is
//! answered only after the commit holding its write is durable; if the
//! commit fails, every write of the group fails and none is stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;

use redb::{Database, ReadableTable, Table};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::entry_cache::EntryCache;
use super::{META, RECORDS, VERSION_KEY};
use crate::error::{IndexError, Result};
use crate::store::codec;
use crate::store::{Expect, NewPoint, VectorPrecision};

/// Largest number of writes committed together.
const MAX_GROUP: usize = 512;

/// A write to apply.
pub(super) enum Op {
    /// Store a point if `expect` allows.
    Put {
        point: Box<NewPoint>,
        expect: Expect,
    },
    /// Store every point if each one's `expect` allows, else none.
    PutMany { points: Vec<(NewPoint, Expect)> },
    /// Remove a point if `expect` allows.
    Delete { id: Uuid, expect: Expect },
}

impl Op {
    /// The ids the write may change.
    fn ids(&self) -> Vec<Uuid> {
        match self {
            Op::Put { point, .. } => vec![point.id],
            Op::PutMany { points } => points.iter().map(|(p, _)| p.id).collect(),
            Op::Delete { id, .. } => vec![*id],
        }
    }
}

/// What a write did.
pub(super) enum Done {
    /// The version a put was given.
    Put(u64),
    /// The versions of a put-many, in order.
    PutMany(Vec<u64>),
    /// The version a delete removed, if there was a record.
    Delete(Option<u64>),
}

/// One queued write and where its outcome goes.
struct Write {
    op: Op,
    reply: oneshot::Sender<Result<Done>>,
}

/// The queue to the writer thread; clones share one thread.
#[derive(Clone)]
pub(super) struct Writer(Arc<Thread>);

/// The writer thread and its queue.
struct Thread {
    queue: Option<mpsc::Sender<Write>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Thread {
    /// Closes the queue and waits for the thread, so the database is closed
    /// (and may be reopened) once the last store handle is gone.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Writer {
    /// Starts the writer thread for `db`; it stops when every `Writer` is dropped.
    /// Vectors are written at `precision`; what a commit changed is
    /// forgotten by `entries` before its writes are answered.
    pub(super) fn start(
        db: Arc<Database>,
        precision: VectorPrecision,
        entries: Arc<EntryCache>,
    ) -> Result<Self> {
        let (queue, writes) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("redb-writer".into())
            .spawn(move || run(&db, &writes, precision, &entries))
            .map_err(|e| IndexError::storage(format!("cannot start the store writer: {e}")))?;
        Ok(Self(Arc::new(Thread {
            queue: Some(queue),
            handle: Some(handle),
        })))
    }

    /// Applies `op` durably and returns what it did.
    pub(super) async fn write(&self, op: Op) -> Result<Done> {
        let (reply, done) = oneshot::channel();
        self.0
            .queue
            .as_ref()
            .ok_or_else(|| IndexError::storage("the store writer has stopped"))?
            .send(Write { op, reply })
            .map_err(|_| IndexError::storage("the store writer has stopped"))?;
        done.await
            .map_err(|_| IndexError::storage("the store writer has stopped"))?
    }
}

fn run(
    db: &Database,
    writes: &mpsc::Receiver<Write>,
    precision: VectorPrecision,
    entries: &EntryCache,
) {
    while let Ok(first) = writes.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match writes.try_recv() {
                Ok(w) => group.push(w),
                Err(_) => break,
            }
        }
        commit(db, group, precision, entries);
    }
}

/// Applies `group` in one transaction and answers every write.
fn commit(db: &Database, group: Vec<Write>, precision: VectorPrecision, entries: &EntryCache) {
    let mut outcomes = Vec::with_capacity(group.len());
    let result = (|| -> Result<()> {
        let tx = db.begin_write().map_err(IndexError::storage)?;
        {
            let mut records = tx.open_table(RECORDS).map_err(IndexError::storage)?;
            let mut meta = tx.open_table(META).map_err(IndexError::storage)?;
            let mut last = meta
                .get(VERSION_KEY)
                .map_err(IndexError::storage)?
                .map_or(0, |v| v.value());
            for w in &group {
                outcomes.push(apply(&mut records, &mut last, &w.op, precision)?);
            }
            meta.insert(VERSION_KEY, last)
                .map_err(IndexError::storage)?;
        }
        tx.commit().map_err(IndexError::storage)
    })();
    // A caller that stopped waiting is not an error: its write stands.
    match result {
        Ok(()) => {
            // Before any answer: an acknowledged write is never shadowed
            // by an entry read before it.
            entries.forget(group.iter().flat_map(|w| w.op.ids()));
            for (w, outcome) in group.into_iter().zip(outcomes) {
                let _ = w.reply.send(outcome);
            }
        }
        Err(e) => {
            let message = e.to_string();
            for w in group {
                let _ = w.reply.send(Err(IndexError::Storage(message.clone())));
            }
        }
    }
}

/// The stored version of `id`, if any.
fn version_of(records: &Table<u128, &[u8]>, id: Uuid) -> Result<Option<u64>> {
    match records.get(id.as_u128()).map_err(IndexError::storage)? {
        Some(bytes) => Ok(Some(codec::version(bytes.value())?)),
        None => Ok(None),
    }
}

fn conflict(id: Uuid, expected: Expect, found: Option<u64>) -> IndexError {
    IndexError::VersionConflict {
        id,
        expected,
        found,
    }
}

/// Applies one write. The outer `Err` is a storage failure that dooms the
/// whole group; the inner one fails this write alone.
fn apply(
    records: &mut Table<u128, &[u8]>,
    last: &mut u64,
    op: &Op,
    precision: VectorPrecision,
) -> Result<Result<Done>> {
    Ok(match op {
        Op::Put { point, expect } => {
            let found = version_of(records, point.id)?;
            if !expect.allows(found) {
                return Ok(Err(conflict(point.id, *expect, found)));
            }
            let version = *last + 1;
            let bytes = match codec::encode(
                version,
                &point.vector,
                precision,
                &point.payload,
                &point.document,
            ) {
                Ok(b) => b,
                Err(e) => return Ok(Err(e)),
            };
            records
                .insert(point.id.as_u128(), bytes.as_slice())
                .map_err(IndexError::storage)?;
            *last = version;
            Ok(Done::Put(version))
        }
        Op::PutMany { points } => {
            // Check and encode everything first, so a refused or bad point
            // stores none of them; a repeated id is checked against the
            // batch's own earlier write.
            let mut batch: HashMap<Uuid, u64> = HashMap::new();
            let mut encoded = Vec::with_capacity(points.len());
            for (i, (p, expect)) in points.iter().enumerate() {
                if *expect != Expect::Any {
                    let found = match batch.get(&p.id) {
                        Some(v) => Some(*v),
                        None => version_of(records, p.id)?,
                    };
                    if !expect.allows(found) {
                        return Ok(Err(conflict(p.id, *expect, found)));
                    }
                }
                let version = *last + 1 + i as u64;
                batch.insert(p.id, version);
                match codec::encode(version, &p.vector, precision, &p.payload, &p.document) {
                    Ok(b) => encoded.push((p.id, version, b)),
                    Err(e) => return Ok(Err(e)),
                }
            }
            let mut versions = Vec::with_capacity(encoded.len());
            for (id, version, bytes) in encoded {
                records
                    .insert(id.as_u128(), bytes.as_slice())
                    .map_err(IndexError::storage)?;
                versions.push(version);
                *last = version;
            }
            Ok(Done::PutMany(versions))
        }
        Op::Delete { id, expect } => {
            let found = version_of(records, *id)?;
            if !expect.allows(found) {
                return Ok(Err(conflict(*id, *expect, found)));
            }
            if found.is_some() {
                records.remove(id.as_u128()).map_err(IndexError::storage)?;
                // A delete takes a version, as every change does.
                *last += 1;
            }
            Ok(Done::Delete(found))
        }
    })
}
