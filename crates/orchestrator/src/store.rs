//! Threads, messages, runs and run events as records in the shared store
//! (vector-index's record collection: no vectors, versioned, Redis in the
//! cloud so every instance sees every record).
//!
//! Each record's payload says what it is (`kind`), whose it is
//! (`namespace`, `user_id`) and what it belongs to (`session_id` = the
//! thread, attribute `run=<id>` for events, `status=<s>` for runs), so
//! listings are bitmap lookups; the JSON document is the record itself.
//! Writes that race (two runs on one thread, a cancel against a finish) are
//! compare-and-set on the record's version.

use std::sync::Arc;

use orchestrator_api::{Message, Run, RunEvent, RunStatus, Thread};
use providers::chat::{ChatMessage, ToolCall};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vector_index::durable::{DurableCollection, now_millis};
use vector_index::store::{AnyStore, Expect, NewPoint};
use vector_index::{Field, Filter, Payload};

use crate::error::ApiError;

/// The collection's name in the store.
pub const COLLECTION: &str = "orchestrator";

const THREAD: &str = "thread";
const MESSAGE: &str = "message";
const RUN: &str = "run";
const EVENT: &str = "event";

/// A run as stored: the run, and what only the orchestrator needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run as callers see it.
    pub run: Run,
    /// The user memories are about.
    pub user_id: Option<String>,
    /// The input messages (kept until the run starts, for queued runs).
    pub input: Vec<orchestrator_api::InputMessage>,
    /// Instance holding the lease.
    pub owner: Option<String>,
    /// The lease ends at this instant (ms since the epoch) unless renewed.
    pub lease_until: i64,
    /// A caller asked to cancel; the owner stops at its next heartbeat.
    pub cancel_requested: bool,
    /// Where an interrupted run goes on from.
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
}

impl RunRecord {
    /// Whether its instance is gone: the record itself says running (an
    /// index entry may lag behind the record it names, and a finished run
    /// keeps the lease it ended with) and the lease passed before `now_ms`.
    pub fn lease_lost(&self, now_ms: i64) -> bool {
        self.run.status == RunStatus::Running && self.lease_until < now_ms
    }
}

/// Where an `llm` agent stopped for approval: enough to go on from there on
/// any instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The agent.
    pub agent: String,
    /// Its conversation so far (the assistant's tool calls included).
    pub messages: Vec<ChatMessage>,
    /// Model calls made so far.
    pub steps: u32,
    /// The step's tool calls not run yet; the first awaits approval.
    pub pending: Vec<ToolCall>,
}

/// A message as stored, with its place in the thread.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MessageRecord {
    message: Message,
    order: u64,
}

/// Places in `order` per millisecond: messages written in one millisecond
/// keep their batch order.
const ORDER_SLOTS: u64 = 64;

/// Messages read beyond the last `n` asked for (see [`Records::last_messages`]).
const HISTORY_MARGIN: usize = 4;

/// A record and its version.
pub type Versioned<T> = (T, u64);

/// The orchestrator's records.
pub struct Records {
    c: Arc<DurableCollection<AnyStore>>,
}

fn decode<T: DeserializeOwned>(id: Uuid, document: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(document)
        .map_err(|e| ApiError::Internal(format!("record {id} cannot be read: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::Internal(format!("cannot encode: {e}")))
}

fn payload(kind: &str, namespace: &str, user: Option<&str>, thread: Option<Uuid>) -> Payload {
    let now = now_millis();
    Payload {
        namespace: namespace.to_owned(),
        user_id: user.map(str::to_owned),
        session_id: thread.map(|t| t.to_string()),
        kind: Some(kind.to_owned()),
        created_at: now,
        updated_at: now,
        ..Payload::default()
    }
}

fn status_attr(s: RunStatus) -> String {
    let name = serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("status={name}")
}

/// The record of a thread.
fn thread_point(thread: &Thread) -> Result<NewPoint, ApiError> {
    let p = payload(THREAD, &thread.namespace, thread.user_id.as_deref(), None);
    Ok(NewPoint::new(thread.id, Vec::new(), p).with_document(encode(thread)?))
}

/// The record of a run.
fn run_point(record: &RunRecord) -> Result<NewPoint, ApiError> {
    let run = &record.run;
    let mut p = payload(
        RUN,
        &run.namespace,
        record.user_id.as_deref(),
        run.thread_id,
    );
    p.attributes = vec![status_attr(run.status)];
    let mut point = NewPoint::new(run.id, Vec::new(), p);
    point.document = encode(record)?;
    Ok(point)
}

/// The record of a burst of a run's events (one record per write, not per
/// event: a run writes a handful of bursts and the record count is what
/// the store's indexes pay for).
fn events_point(
    namespace: &str,
    thread: Option<Uuid>,
    run: Uuid,
    events: &[RunEvent],
) -> Result<NewPoint, ApiError> {
    let mut p = payload(EVENT, namespace, None, thread);
    p.attributes = vec![format!("run={run}")];
    let mut point = NewPoint::new(Uuid::now_v7(), Vec::new(), p);
    point.document = encode(&events)?;
    Ok(point)
}

/// An event record as stored: a burst, or (as written before bursts) one event.
#[derive(Deserialize)]
#[serde(untagged)]
enum EventRecord {
    Burst(Vec<RunEvent>),
    One(RunEvent),
}

impl EventRecord {
    fn into_events(self) -> Vec<RunEvent> {
        match self {
            Self::Burst(events) => events,
            Self::One(event) => vec![event],
        }
    }
}

/// The records of `messages` appended to `thread`, in order.
fn message_points(
    namespace: &str,
    thread: Uuid,
    messages: &[Message],
) -> Result<Vec<NewPoint>, ApiError> {
    let base = u64::try_from(now_millis())
        .unwrap_or(0)
        .saturating_mul(ORDER_SLOTS);
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let record = MessageRecord {
                message: m.clone(),
                order: base + i as u64,
            };
            let mut p = payload(MESSAGE, namespace, None, Some(thread));
            p.attributes = vec![format!("run={}", m.run_id)];
            let mut point = NewPoint::new(m.id, Vec::new(), p);
            point.document = encode(&record)?;
            Ok(point)
        })
        .collect()
}

/// One write of a run's start or end: its record (if `expect` allows), its
/// `events`, the `messages` it adds to its thread, and the thread (if still
/// at the given version). The run's record comes first, the thread last.
fn run_write(
    record: &RunRecord,
    expect: Expect,
    events: &[RunEvent],
    messages: &[Message],
    thread: Option<Versioned<&Thread>>,
) -> Result<Vec<(NewPoint, Expect)>, ApiError> {
    let run = &record.run;
    let mut points = vec![(run_point(record)?, expect)];
    if !events.is_empty() {
        let burst = events_point(&run.namespace, run.thread_id, run.id, events)?;
        points.push((burst, Expect::Any));
    }
    if let Some(t) = run.thread_id {
        for m in message_points(&run.namespace, t, messages)? {
            points.push((m, Expect::Any));
        }
    }
    if let Some((t, version)) = thread {
        points.push((thread_point(t)?, Expect::Version(version)));
    }
    Ok(points)
}

impl Records {
    /// Records in `collection`.
    pub fn new(collection: Arc<DurableCollection<AnyStore>>) -> Self {
        Self { c: collection }
    }

    /// Whether the store answers (for `/readyz`).
    pub fn reachable(&self) -> bool {
        self.c.is_ready() && self.c.store_reachable()
    }

    /// The collection (for the sweeper and snapshots).
    pub fn collection(&self) -> &Arc<DurableCollection<AnyStore>> {
        &self.c
    }

    async fn get<T: DeserializeOwned>(
        &self,
        id: Uuid,
        kind: &str,
    ) -> Result<Option<Versioned<T>>, ApiError> {
        match self.c.get(id).await? {
            Some(r) if r.payload.kind.as_deref() == Some(kind) => {
                Ok(Some((decode(id, &r.document)?, r.version)))
            }
            _ => Ok(None),
        }
    }

    async fn get_all<T: DeserializeOwned>(&self, ids: &[Uuid]) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            for (id, r) in chunk.iter().zip(self.c.get_many(chunk).await?) {
                // Deleted between the lookup and the read: gone, not an error.
                if let Some(r) = r {
                    out.push(decode(*id, &r.document)?);
                }
            }
        }
        Ok(out)
    }

    // ---- threads ----

    /// Stores `thread` if `expect` allows; returns the new version.
    pub async fn put_thread(&self, thread: &Thread, expect: Expect) -> Result<u64, ApiError> {
        let point = thread_point(thread)?;
        Ok(self
            .c
            .upsert_document(thread.id, &[], point.payload, &point.document, expect)
            .await?)
    }

    /// The thread `id`.
    pub async fn thread(&self, id: Uuid) -> Result<Option<Versioned<Thread>>, ApiError> {
        self.get(id, THREAD).await
    }

    /// Threads in `namespaces` (any namespace for `None`), of `user` when given.
    pub async fn threads(
        &self,
        namespaces: Option<&[String]>,
        user: Option<&str>,
    ) -> Result<Vec<Thread>, ApiError> {
        let mut f = Filter::all().eq(Field::Kind, THREAD);
        if let Some(ns) = namespaces {
            f = f.any_of(Field::Namespace, ns.iter().cloned());
        }
        if let Some(u) = user {
            f = f.eq(Field::User, u);
        }
        self.get_all(&self.c.ids_matching(&f)).await
    }

    /// Deletes the thread and everything in it (messages, runs, events).
    pub async fn delete_thread(&self, id: Uuid) -> Result<(), ApiError> {
        let inside = self
            .c
            .ids_matching(&Filter::all().eq(Field::Session, id.to_string()));
        let runs: Vec<RunRecord> = self
            .get_all(
                &self.c.ids_matching(
                    &Filter::all()
                        .eq(Field::Session, id.to_string())
                        .eq(Field::Kind, RUN),
                ),
            )
            .await?;
        for run in runs {
            for e in self.event_ids(run.run.id) {
                self.c.delete(e, Expect::Any).await?;
            }
        }
        for r in inside {
            self.c.delete(r, Expect::Any).await?;
        }
        self.c.delete(id, Expect::Any).await?;
        Ok(())
    }

    // ---- messages ----

    /// Appends `messages` to their thread, in order.
    pub async fn add_messages(
        &self,
        namespace: &str,
        thread: Uuid,
        messages: &[Message],
    ) -> Result<(), ApiError> {
        self.c
            .upsert_many(message_points(namespace, thread, messages)?)
            .await?;
        Ok(())
    }

    /// The messages run `run` added to its thread, oldest first.
    pub async fn run_messages(&self, run: Uuid) -> Result<Vec<Message>, ApiError> {
        let f = Filter::all()
            .eq(Field::Kind, MESSAGE)
            .eq(Field::Attribute, format!("run={run}"));
        let mut records: Vec<MessageRecord> = self.get_all(&self.c.ids_matching(&f)).await?;
        records.sort_by_key(|r| (r.order, r.message.id));
        Ok(records.into_iter().map(|r| r.message).collect())
    }

    /// The thread's messages, oldest first.
    pub async fn messages(&self, thread: Uuid) -> Result<Vec<Message>, ApiError> {
        self.last_messages(thread, usize::MAX).await
    }

    /// The thread's last `n` messages, oldest first, read without reading
    /// the rest: message ids are time-ordered (UUIDv7, made before the
    /// write that numbers `order`, and a thread's runs write one after
    /// another), so the newest ids hold the last messages; a small margin
    /// covers a clock that stepped back.
    pub async fn last_messages(&self, thread: Uuid, n: usize) -> Result<Vec<Message>, ApiError> {
        let f = Filter::all()
            .eq(Field::Session, thread.to_string())
            .eq(Field::Kind, MESSAGE);
        let mut ids = self.c.ids_matching(&f);
        ids.sort_unstable();
        let keep = n.saturating_add(HISTORY_MARGIN);
        let ids = &ids[ids.len().saturating_sub(keep)..];
        let mut records: Vec<MessageRecord> = self.get_all(ids).await?;
        records.sort_by_key(|r| (r.order, r.message.id));
        let skip = records.len().saturating_sub(n);
        Ok(records.into_iter().skip(skip).map(|r| r.message).collect())
    }

    // ---- runs ----

    /// Stores `record` if `expect` allows; returns the new version.
    pub async fn put_run(&self, record: &RunRecord, expect: Expect) -> Result<u64, ApiError> {
        let point = run_point(record)?;
        Ok(self
            .c
            .upsert_document(point.id, &[], point.payload, &point.document, expect)
            .await?)
    }

    /// Stores a new run with its first event and its input messages, and
    /// claims its thread (the thread as read, with `active_run` set, written
    /// only if still at that version), in one write: the run is visible,
    /// announced, in its thread and holds the thread at once, or none of it
    /// happened (a conflict: the thread changed; read it again). Returns the
    /// versions of the run record and of the claimed thread.
    pub async fn start_run(
        &self,
        record: &RunRecord,
        started: &RunEvent,
        input: &[Message],
        claim: Option<Versioned<&Thread>>,
    ) -> Result<(u64, Option<u64>), ApiError> {
        let points = run_write(
            record,
            Expect::Absent,
            std::slice::from_ref(started),
            input,
            claim,
        )?;
        let claimed = claim.is_some();
        let versions = self.c.upsert_all(points).await?;
        let run = versions
            .first()
            .copied()
            .ok_or_else(|| ApiError::Internal("the store returned no version".into()))?;
        Ok((run, versions.last().copied().filter(|_| claimed)))
    }

    /// Stores how a run ended in one write: its final `record` (if the run
    /// is still at `version`), its last `events`, its `answer` messages, and
    /// its thread with the run no longer active (`release`, if the thread is
    /// still at that version). All of it or nothing: a conflict means the run
    /// or the thread changed; read them again.
    pub async fn finish_run(
        &self,
        record: &RunRecord,
        version: u64,
        events: &[RunEvent],
        answer: &[Message],
        release: Option<Versioned<&Thread>>,
    ) -> Result<(), ApiError> {
        let points = run_write(record, Expect::Version(version), events, answer, release)?;
        self.c.upsert_all(points).await?;
        Ok(())
    }

    /// The run `id`.
    pub async fn run(&self, id: Uuid) -> Result<Option<Versioned<RunRecord>>, ApiError> {
        self.get(id, RUN).await
    }

    /// Runs with `status` (all namespaces), for the lease sweeper and queues,
    /// as this instance's index has it: a follower's may lag, so a caller
    /// checks the status of the records it then reads.
    pub fn run_ids_with(&self, status: RunStatus, thread: Option<Uuid>) -> Vec<Uuid> {
        let mut f = Filter::all()
            .eq(Field::Kind, RUN)
            .eq(Field::Attribute, status_attr(status));
        if let Some(t) = thread {
            f = f.eq(Field::Session, t.to_string());
        }
        self.c.ids_matching(&f)
    }

    /// The runs `ids` that still exist, with versions.
    pub async fn runs(&self, ids: &[Uuid]) -> Result<Vec<Versioned<RunRecord>>, ApiError> {
        let mut out = Vec::new();
        for (id, r) in ids.iter().zip(self.c.get_many(ids).await?) {
            if let Some(r) = r {
                out.push((decode(*id, &r.document)?, r.version));
            }
        }
        Ok(out)
    }

    // ---- events ----

    fn event_ids(&self, run: Uuid) -> Vec<Uuid> {
        self.c.ids_matching(
            &Filter::all()
                .eq(Field::Kind, EVENT)
                .eq(Field::Attribute, format!("run={run}")),
        )
    }

    /// Stores `events` of `run` in `namespace`, as one record.
    pub async fn add_events(
        &self,
        namespace: &str,
        thread: Option<Uuid>,
        run: Uuid,
        events: &[RunEvent],
    ) -> Result<(), ApiError> {
        if events.is_empty() {
            return Ok(());
        }
        let point = events_point(namespace, thread, run, events)?;
        self.c.upsert_many(vec![point]).await?;
        Ok(())
    }

    /// The run's events with a sequence number above `after` among the
    /// records not in `known` (which this call adds to), in order, each
    /// with the id of the record holding it.
    pub async fn events_after(
        &self,
        run: Uuid,
        after: u64,
        known: &mut std::collections::HashSet<Uuid>,
    ) -> Result<Vec<(Uuid, RunEvent)>, ApiError> {
        let fresh: Vec<Uuid> = self
            .event_ids(run)
            .into_iter()
            .filter(|id| !known.contains(id))
            .collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        for chunk in fresh.chunks(500) {
            for (id, r) in chunk.iter().zip(self.c.get_many(chunk).await?) {
                if let Some(r) = r {
                    let stored: EventRecord = decode(*id, &r.document)?;
                    known.insert(*id);
                    for e in stored.into_events() {
                        if e.seq > after {
                            events.push((*id, e));
                        }
                    }
                }
            }
        }
        events.sort_by_key(|(_, e)| e.seq);
        Ok(events)
    }

    /// Every stored event of the run, in order.
    pub async fn events(&self, run: Uuid) -> Result<Vec<RunEvent>, ApiError> {
        let mut known = std::collections::HashSet::new();
        Ok(self
            .events_after(run, 0, &mut known)
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    /// The highest sequence number stored for the run (0 for none).
    pub async fn last_event(&self, run: Uuid) -> Result<u64, ApiError> {
        let mut known = std::collections::HashSet::new();
        Ok(self
            .events_after(run, 0, &mut known)
            .await?
            .last()
            .map_or(0, |(_, e)| e.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, run: Uuid) -> RunEvent {
        RunEvent {
            seq,
            run_id: run,
            event: orchestrator_api::event::RUN_STARTED.to_owned(),
            data: serde_json::json!({"n": seq}),
            at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_event_record_reads_as_a_burst_or_as_one_event_written_before_bursts() {
        let run = Uuid::now_v7();
        let burst = vec![event(1, run), event(2, run)];
        let stored = encode(&burst).unwrap();
        let read: EventRecord = decode(run, &stored).unwrap();
        let seqs: Vec<u64> = read.into_events().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2]);

        let old = encode(&event(7, run)).unwrap();
        let read: EventRecord = decode(run, &old).unwrap();
        let events = read.into_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].seq, 7);
        assert_eq!(events[0].data["n"], 7);
    }

    fn record(status: RunStatus, lease_until: i64) -> RunRecord {
        RunRecord {
            run: Run {
                id: Uuid::now_v7(),
                thread_id: None,
                agent: "a".into(),
                namespace: "n".into(),
                status,
                output: None,
                error: None,
                usage: Default::default(),
                memories_used: Vec::new(),
                metadata: Default::default(),
                last_event: 3,
                created_at: time::OffsetDateTime::UNIX_EPOCH,
                finished_at: None,
            },
            user_id: None,
            input: Vec::new(),
            owner: Some("i".into()),
            lease_until,
            cancel_requested: false,
            checkpoint: None,
        }
    }

    #[test]
    fn only_a_running_record_past_its_lease_has_lost_it() {
        let now = 10_000;
        assert!(record(RunStatus::Running, now - 1).lease_lost(now));
        assert!(!record(RunStatus::Running, now).lease_lost(now));
        // A run that ended keeps the lease it ended with; a sweep that read
        // its id from a lagging index must not fail it again.
        for ended in [
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Cancelled,
            RunStatus::Interrupted,
            RunStatus::Queued,
        ] {
            assert!(!record(ended, now - 1).lease_lost(now), "{ended:?}");
        }
    }
}
