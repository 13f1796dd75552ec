//! A run's life: claiming the thread (or queueing behind its run), executing
//! under a lease, cancelling from any instance, finishing (messages, memory
//! write-back, the final record and event), and taking over runs whose
//! instance died.
//!
//! Consistency, in short:
//! - a thread has at most one active run: `Thread::active_run` is set by a
//!   compare-and-set on the thread's version, and cleared the same way by
//!   the run that holds it;
//! - a running run belongs to the instance named in its record while its
//!   lease (`lease_until`) is fresh; the owner renews it every heartbeat and,
//!   at the same read, sees a cancel asked through any instance;
//! - any instance's sweeper fails a running run whose lease has passed
//!   (`instance_lost`) and starts the next queued run of its thread;
//! - only the owner writes a run's events, numbered in order;
//! - a run starts in one write (its record, first event, input, and the
//!   thread's claim) and ends in one (its final record, last events, answer,
//!   and the thread's release): a reader never sees a run half started or
//!   a terminal event before the final run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orchestrator_api::{
    InputMessage, Message, Role, Run, RunError, RunStatus, RunUsage, Thread, event,
};
use parking_lot::Mutex;
use providers::chat::{ChatMessage, ChatRole};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vector_index::durable::now_millis;
use vector_index::store::Expect;

use crate::config::RunsConfig;
use crate::engine::{Checkpoint, Decision, Engine, Failure, Ledger, Prefetch, RunCtx, Stop};
use crate::error::ApiError;
use crate::events::{Emitter, Hub};
use crate::memory::Scope;
use crate::metrics::Metrics;
use crate::store::{Records, RunRecord, Versioned};

/// Tries of a compare-and-set before giving up (another writer keeps winning).
const CAS_TRIES: usize = 8;

/// What a new run needs.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Namespace.
    pub namespace: String,
    /// The user memories are about.
    pub user_id: Option<String>,
    /// The thread, if any, as the caller read it (with its version; read
    /// again if it has changed since).
    pub thread: Option<Versioned<Thread>>,
    /// The agent.
    pub agent: String,
    /// The input messages.
    pub input: Vec<InputMessage>,
    /// Caller's metadata.
    pub metadata: Map<String, Value>,
    /// Queue behind a busy thread's run instead of failing.
    pub queue: bool,
}

/// What the instance running a run knows of the records it holds, so the
/// run's last write need not read them first (a stale guess is a version
/// conflict, and that write then reads them).
pub struct Known {
    /// The run record's version (each lease renewal moves it).
    version: AtomicU64,
    /// The thread as this run's claim left it, with its version (`None`
    /// for a run without a thread, or one resumed here, whose claim was
    /// made elsewhere).
    thread: Option<Versioned<Thread>>,
}

impl Known {
    fn new(version: u64, thread: Option<Versioned<Thread>>) -> Self {
        Self {
            version: AtomicU64::new(version),
            thread,
        }
    }

    /// `run`'s records as this instance knows them: running, no cancel
    /// asked, and the thread if the claim left it held by the run. `None`
    /// when the run has a thread this instance does not know (a resumed
    /// run): guessing "not held" would end the run without releasing it.
    fn guess(&self, run: &Run) -> Option<Current> {
        if run.thread_id.is_some() && self.thread.is_none() {
            return None;
        }
        Some(Current::Held {
            cancel_requested: false,
            version: self.version.load(Ordering::Acquire),
            thread: self
                .thread
                .clone()
                .filter(|(t, _)| t.active_run == Some(run.id)),
        })
    }
}

/// A running run's records: as known ([`Known::guess`]) or as stored.
enum Current {
    /// Another instance ended it: its outcome.
    Ended(Run),
    /// The run is gone (its thread was deleted).
    Gone,
    /// Still running: whether a cancel was asked, the record's version and,
    /// if the run still holds it, its thread.
    Held {
        cancel_requested: bool,
        version: u64,
        thread: Option<Versioned<Thread>>,
    },
}

/// How a run begins on this instance.
enum Begin {
    /// From its input, with its first recall if one was started.
    Fresh(Option<Prefetch>),
    /// From its checkpoint, after a person's decision.
    Resume(Decision),
}

/// Runs, on this instance and through the store.
pub struct Runs {
    records: Arc<Records>,
    engine: Arc<Engine>,
    hub: Hub,
    metrics: Arc<Metrics>,
    settings: RunsConfig,
    /// This instance's name in leases.
    instance: String,
    /// Runs executing here, with their cancel switches.
    local: Mutex<HashMap<Uuid, CancellationToken>>,
    /// Cancelled at shutdown: local runs stop (and are failed by the drain).
    stop: CancellationToken,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn status_event(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Completed => event::RUN_COMPLETED,
        RunStatus::Cancelled => event::RUN_CANCELLED,
        _ => event::RUN_FAILED,
    }
}

fn status_name(s: RunStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Runs {
    /// The run service.
    pub fn new(
        records: Arc<Records>,
        engine: Arc<Engine>,
        hub: Hub,
        metrics: Arc<Metrics>,
        settings: RunsConfig,
        stop: CancellationToken,
    ) -> Self {
        Self {
            records,
            engine,
            hub,
            metrics,
            settings,
            instance: Uuid::new_v4().to_string(),
            local: Mutex::new(HashMap::new()),
            stop,
        }
    }

    /// The records (threads, messages, runs, events).
    pub fn records(&self) -> &Arc<Records> {
        &self.records
    }

    /// The hub waiters on this instance listen to.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    fn lease_until(&self) -> i64 {
        now_millis().saturating_add(i64::try_from(self.settings.lease_ms).unwrap_or(i64::MAX))
    }

    /// Creates a run: claims its thread (or queues behind the thread's run
    /// when asked; otherwise a busy thread is a 409) and starts it here.
    pub async fn start(self: &Arc<Self>, new: NewRun) -> Result<Run, ApiError> {
        let id = Uuid::now_v7();
        let record = RunRecord {
            run: Run {
                id,
                thread_id: new.thread.as_ref().map(|(t, _)| t.id),
                agent: new.agent,
                namespace: new.namespace,
                status: RunStatus::Running,
                output: None,
                error: None,
                usage: RunUsage::default(),
                memories_used: Vec::new(),
                metadata: new.metadata,
                last_event: 0,
                created_at: now(),
                finished_at: None,
            },
            user_id: new.user_id,
            input: new.input,
            owner: Some(self.instance.clone()),
            lease_until: self.lease_until(),
            cancel_requested: false,
            checkpoint: None,
        };
        let Some((read, read_version)) = new.thread else {
            return self.start_here(record, None).await;
        };
        let thread = read.id;
        let mut seen = Some((read, read_version));
        for _ in 0..CAS_TRIES {
            let (mut t, version) = match seen.take() {
                Some(read) => read,
                None => self
                    .records
                    .thread(thread)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("thread {thread}")))?,
            };
            if let Some(active) = self.busy(&t).await? {
                if !new.queue {
                    return Err(busy_error(thread, active));
                }
                let mut record = record;
                record.run.status = RunStatus::Queued;
                record.owner = None;
                self.records.put_run(&record, Expect::Absent).await?;
                return Ok(record.run);
            }
            t.active_run = Some(id);
            t.updated_at = now();
            match self.start_here(record.clone(), Some((t, version))).await {
                // The thread changed since it was read: read it again.
                Err(ApiError::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(ApiError::Conflict(format!(
            "thread {thread} is changing too often to start a run; retry"
        )))
    }

    /// Stores `record` running here, with its first event, its input and
    /// (when given) its thread's claim, in one write; then executes it.
    async fn start_here(
        self: &Arc<Self>,
        mut record: RunRecord,
        claim: Option<Versioned<Thread>>,
    ) -> Result<Run, ApiError> {
        let started = self.started_event(&record.run, 1);
        record.run.last_event = 1;
        let input = input_messages(&record);
        // The first recall is a read: it goes while the run is stored.
        let prefetched = self.engine.prefetch(
            &record.run.agent,
            &record.run.namespace,
            record.user_id.as_deref(),
            &chat_messages(&record),
        );
        let (version, thread_version) = self
            .records
            .start_run(
                &record,
                &started,
                &input,
                claim.as_ref().map(|(t, v)| (t, *v)),
            )
            .await?;
        let run = record.run.clone();
        self.hub.notify(run.id);
        let thread = claim.zip(thread_version).map(|((t, _), v)| (t, v));
        self.spawn(
            record,
            Known::new(version, thread),
            Begin::Fresh(prefetched),
        );
        Ok(run)
    }

    /// The `run.started` event of `run`, numbered `seq`.
    fn started_event(&self, run: &Run, seq: u64) -> orchestrator_api::RunEvent {
        orchestrator_api::RunEvent {
            seq,
            run_id: run.id,
            event: event::RUN_STARTED.into(),
            data: json!({"run_id": run.id, "agent": run.agent, "thread_id": run.thread_id}),
            at: now(),
        }
    }

    /// Makes `run` the thread's active run if the thread is free (returns
    /// the thread as written); a 409 otherwise.
    async fn claim(&self, thread: Uuid, run: Uuid) -> Result<Versioned<Thread>, ApiError> {
        for _ in 0..CAS_TRIES {
            let (mut t, version) = self
                .records
                .thread(thread)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("thread {thread}")))?;
            if let Some(active) = self.busy(&t).await? {
                return Err(busy_error(thread, active));
            }
            t.active_run = Some(run);
            t.updated_at = now();
            match self.records.put_thread(&t, Expect::Version(version)).await {
                Ok(v) => return Ok((t, v)),
                Err(ApiError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::Conflict(format!(
            "thread {thread} is changing too often to start a run; retry"
        )))
    }

    /// The thread's active run, if it has one that has not ended.
    async fn busy(&self, t: &Thread) -> Result<Option<Uuid>, ApiError> {
        match t.active_run {
            Some(active) if self.is_live(active).await? => Ok(Some(active)),
            _ => Ok(None),
        }
    }

    /// Whether run `id` exists and has not ended.
    async fn is_live(&self, id: Uuid) -> Result<bool, ApiError> {
        Ok(self
            .records
            .run(id)
            .await?
            .is_some_and(|(r, _)| !r.run.status.is_terminal()))
    }

    /// Clears `run` as the thread's active run (if it still is), then starts
    /// the thread's oldest queued run, if any.
    async fn release(self: &Arc<Self>, thread: Uuid, run: Uuid) {
        if self.clear_active(thread, run).await {
            self.start_next(thread).await;
        }
    }

    /// Clears `run` as the thread's active run if it still is; returns
    /// whether this call cleared it.
    async fn clear_active(&self, thread: Uuid, run: Uuid) -> bool {
        for _ in 0..CAS_TRIES {
            let (mut t, version) = match self.records.thread(thread).await {
                Ok(Some(t)) => t,
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(error = %e, %thread, "cannot release the thread; the sweeper will");
                    return false;
                }
            };
            if t.active_run != Some(run) {
                return false;
            }
            t.active_run = None;
            t.updated_at = now();
            match self.records.put_thread(&t, Expect::Version(version)).await {
                Ok(_) => return true,
                Err(ApiError::Conflict(_)) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, %thread, "cannot release the thread; the sweeper will");
                    return false;
                }
            }
        }
        false
    }

    /// Starts the oldest queued run of `thread` if the thread is free.
    async fn start_next(self: &Arc<Self>, thread: Uuid) {
        let result: Result<(), ApiError> = async {
            let ids = self.records.run_ids_with(RunStatus::Queued, Some(thread));
            let mut queued = self.records.runs(&ids).await?;
            // The index may lag behind the records: start only what is still queued.
            queued.retain(|(r, _)| r.run.status == RunStatus::Queued);
            queued.sort_by_key(|(r, _)| r.run.id);
            let Some((mut record, version)) = queued.into_iter().next() else {
                return Ok(());
            };
            let Ok(claimed) = self.claim(thread, record.run.id).await else {
                return Ok(()); // still busy: its run will start this one when it ends
            };
            record.run.status = RunStatus::Running;
            record.owner = Some(self.instance.clone());
            record.lease_until = self.lease_until();
            match self
                .records
                .put_run(&record, Expect::Version(version))
                .await
            {
                Ok(v) => self.spawn(record, Known::new(v, Some(claimed)), Begin::Fresh(None)),
                Err(_) => {
                    self.clear_active(thread, record.run.id).await;
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, %thread, "cannot start the next queued run; the sweeper will");
        }
    }

    /// Executes `record` here, from its start or its checkpoint.
    fn spawn(self: &Arc<Self>, record: RunRecord, known: Known, begin: Begin) {
        let this = Arc::clone(self);
        let token = self.stop.child_token();
        self.local.lock().insert(record.run.id, token.clone());
        tokio::spawn(async move { this.execute(record, known, token, begin).await });
    }

    /// Executes a claimed run to its end.
    async fn execute(
        self: Arc<Self>,
        record: RunRecord,
        known: Known,
        cancel: CancellationToken,
        begin: Begin,
    ) {
        let known = Arc::new(known);
        let (prefetched, decision) = match begin {
            Begin::Fresh(prefetched) => (prefetched, None),
            Begin::Resume(decision) => (None, Some(decision)),
        };
        let started = Instant::now();
        self.metrics.active(1);
        let run = record.run.clone();
        let emitter = Emitter::new(
            Arc::clone(&self.records),
            self.hub.clone(),
            run.id,
            run.namespace.clone(),
            run.thread_id,
            run.last_event,
        );
        let ctx = RunCtx {
            id: run.id,
            namespace: run.namespace.clone(),
            user_id: record.user_id.clone(),
            thread: run.thread_id,
            emitter,
            // A resumed run goes on counting from where it paused.
            ledger: Mutex::new(Ledger {
                usage: run.usage.clone(),
                memories: run.memories_used.clone(),
            }),
            state: Mutex::new(Map::new()),
            prefetched: Mutex::new(prefetched),
        };
        let heartbeat = self.heartbeat(run.id, Arc::clone(&known), cancel.clone());
        let work = async {
            match (record.checkpoint.clone(), decision) {
                (Some(checkpoint), Some(decision)) => {
                    self.engine.resume(&ctx, checkpoint, decision).await
                }
                _ => self.work(&ctx, &record).await,
            }
        };
        let outcome = tokio::select! {
            r = work => r,
            () = cancel.cancelled() => Err(Failure::new("cancelled", "cancelled").into()),
            () = tokio::time::sleep(Duration::from_millis(self.settings.max_run_ms)) => Err(Failure::new(
                "timeout",
                format!("the run took longer than runs.max_run_ms ({} ms)", self.settings.max_run_ms),
            ).into()),
        };
        heartbeat.abort();
        let shutting_down = self.stop.is_cancelled();
        let final_status = self
            .finish(&ctx, &known, record, outcome, shutting_down)
            .await;
        self.local.lock().remove(&run.id);
        self.metrics.active(-1);
        if let Some(r) = &final_status {
            self.metrics.run_finished(
                &r.agent,
                &status_name(r.status),
                started.elapsed(),
                r.error.as_ref().map(|e| e.code.as_str()),
            );
        }
        // The outcome's write released the thread (an interrupted run keeps
        // it until it is resumed or cancelled); when that write failed, try
        // on its own (else the sweeper will).
        if let Some(thread) = run.thread_id
            && final_status.is_none()
        {
            self.release(thread, run.id).await;
        }
    }

    /// The run proper: history, input, the agent.
    async fn work(&self, ctx: &RunCtx, record: &RunRecord) -> Result<String, Stop> {
        // A run created running was announced when it was stored; one that
        // waited in the queue is announced now.
        let announced = record.run.last_event > 0;
        if !announced {
            let started = self.started_event(&record.run, 0);
            ctx.emitter.emit(event::RUN_STARTED, started.data).await?;
        }
        let mut conversation = Vec::new();
        if let Some(thread) = record.run.thread_id {
            // This run's own input is among the thread's last messages (it
            // is stored with the run); it comes below, from the record.
            let own = if announced { record.input.len() } else { 0 };
            let keep = self.settings.history_messages.saturating_add(own);
            let mut history = self.records.last_messages(thread, keep).await?;
            history.retain(|m| m.run_id != record.run.id);
            let skip = history.len().saturating_sub(self.settings.history_messages);
            conversation.extend(
                history
                    .into_iter()
                    .skip(skip)
                    .map(|m| ChatMessage::new(chat_role(m.role), m.content)),
            );
            if !announced {
                self.records
                    .add_messages(&record.run.namespace, thread, &input_messages(record))
                    .await?;
            }
        }
        conversation.extend(chat_messages(record));
        self.engine
            .run_agent(ctx, &record.run.agent, conversation)
            .await
    }

    /// Renews the lease every heartbeat; cancels the run when a cancel was
    /// asked through another instance.
    fn heartbeat(
        &self,
        run: Uuid,
        known: Arc<Known>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let records = Arc::clone(&self.records);
        let every = Duration::from_millis(self.settings.heartbeat_ms);
        let lease = i64::try_from(self.settings.lease_ms).unwrap_or(i64::MAX);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Ok(Some((mut r, v))) = records.run(run).await else {
                    continue; // store unreachable: try again; the lease has slack
                };
                if r.cancel_requested {
                    cancel.cancel();
                    return;
                }
                if r.run.status.is_terminal() {
                    return;
                }
                r.lease_until = now_millis().saturating_add(lease);
                match records.put_run(&r, Expect::Version(v)).await {
                    Ok(renewed) => known.version.store(renewed, Ordering::Release),
                    Err(e) => tracing::debug!(error = %e, %run, "lease renewal raced; re-reading"),
                }
            }
        })
    }

    /// Writes the outcome: the answer to the thread, the turn to memory, the
    /// final record, then the terminal event.
    async fn finish(
        self: &Arc<Self>,
        ctx: &RunCtx,
        known: &Known,
        record: RunRecord,
        outcome: Result<String, Stop>,
        shutting_down: bool,
    ) -> Option<Run> {
        let mut run = record.run.clone();
        let ledger = ctx.ledger.lock().clone();
        run.usage = ledger.usage;
        run.memories_used = ledger.memories;
        let outcome = match outcome {
            Err(Stop::Interrupted(checkpoint)) if !shutting_down => {
                run.status = RunStatus::Interrupted;
                return self
                    .conclude(
                        &ctx.emitter,
                        known,
                        run,
                        &record,
                        Some(*checkpoint),
                        Vec::new(),
                    )
                    .await;
            }
            Err(Stop::Interrupted(_)) => Err(Failure::new("cancelled", "shut down while paused")),
            Err(Stop::Failed(f)) => Err(f),
            Ok(answer) => Ok(answer),
        };
        let mut answer_messages = Vec::new();
        match outcome {
            Ok(answer) => {
                run.status = RunStatus::Completed;
                if run.thread_id.is_some() {
                    answer_messages.push(Message {
                        id: Uuid::now_v7(),
                        role: Role::Assistant,
                        content: answer.clone(),
                        agent: Some(run.agent.clone()),
                        run_id: run.id,
                        created_at: now(),
                    });
                    self.write_back(&record, &answer);
                }
                run.output = Some(answer);
            }
            Err(f) if f.code == "cancelled" && !shutting_down => {
                run.status = RunStatus::Cancelled;
            }
            Err(f) => {
                let f = if shutting_down {
                    Failure::new("instance_stopped", "the instance running it shut down")
                } else {
                    f
                };
                tracing::warn!(run = %run.id, code = f.code, message = %f.message, "run failed");
                run.status = RunStatus::Failed;
                run.error = Some(RunError {
                    code: f.code.to_owned(),
                    message: f.message,
                });
            }
        }
        run.finished_at = Some(now());
        self.conclude(&ctx.emitter, known, run, &record, None, answer_messages)
            .await
    }

    /// Stores how the run ended (or paused, with its `checkpoint`) in one
    /// write: the final record, the events still held, the terminal (or
    /// `interrupt`) event numbered after them, the `answer` messages, and
    /// the thread released (unless the run paused); then starts the
    /// thread's next queued run. The first try trusts what this instance
    /// `known`s of the run and thread records; a conflict (a cancel asked,
    /// the thread changed) makes the next tries read them. Returns the run
    /// as the store now holds it (another instance's outcome if that came
    /// first); `None` when it is gone or could not be stored.
    async fn conclude(
        self: &Arc<Self>,
        emitter: &Emitter,
        known: &Known,
        mut run: Run,
        record: &RunRecord,
        checkpoint: Option<Checkpoint>,
        answer: Vec<Message>,
    ) -> Option<Run> {
        let (mut events, last) = emitter.take_held().await;
        run.last_event = last + 1;
        events.push(terminal_event(&run, checkpoint.as_ref()));
        let release = checkpoint.is_none();
        let mut failed = None;
        for attempt in 0..CAS_TRIES {
            let written = async {
                let current = match known.guess(&run).filter(|_| attempt == 0) {
                    Some(guess) => guess,
                    None => self.current(&run, release).await?,
                };
                let (cancel_requested, version, thread) = match current {
                    Current::Ended(theirs) => return Ok(Some((theirs, None))),
                    Current::Gone => return Ok(None),
                    Current::Held {
                        cancel_requested,
                        version,
                        thread,
                    } => (cancel_requested, version, thread),
                };
                let final_record = RunRecord {
                    run: run.clone(),
                    owner: None,
                    cancel_requested,
                    checkpoint: checkpoint.clone(),
                    ..record.clone()
                };
                let thread = thread.filter(|_| release).map(|(mut t, v)| {
                    t.active_run = None;
                    t.updated_at = now();
                    (t, v)
                });
                self.records
                    .finish_run(
                        &final_record,
                        version,
                        &events,
                        &answer,
                        thread.as_ref().map(|(t, v)| (t, *v)),
                    )
                    .await?;
                Ok::<_, ApiError>(Some((run.clone(), thread.map(|(t, _)| t.id))))
            }
            .await;
            match written {
                Ok(Some((stored, released))) => {
                    self.hub.notify(run.id);
                    if let Some(thread) = released {
                        self.start_next(thread).await;
                    }
                    return Some(stored);
                }
                Ok(None) => return None,
                // The run (a cancel asked) or the thread changed: read again.
                Err(ApiError::Conflict(_)) => {}
                Err(e) => {
                    failed = Some(e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        tracing::error!(run = %run.id, error = ?failed, "the run's outcome could not be stored; the sweeper will fail it");
        None
    }

    /// The stored state of the (still running) `run` and, when `release`,
    /// of its thread if the run still holds it.
    async fn current(&self, run: &Run, release: bool) -> Result<Current, ApiError> {
        let (record, version) = match self.records.run(run.id).await? {
            Some((r, _)) if r.run.status.is_terminal() => {
                tracing::warn!(run = %run.id, "another instance ended this run first; keeping its outcome");
                return Ok(Current::Ended(r.run));
            }
            Some(found) => found,
            None => return Ok(Current::Gone), // its thread was deleted
        };
        let thread = match run.thread_id {
            Some(t) if release => self
                .records
                .thread(t)
                .await?
                .filter(|(t, _)| t.active_run == Some(run.id)),
            _ => None,
        };
        Ok(Current::Held {
            cancel_requested: record.cancel_requested,
            version,
            thread,
        })
    }

    /// Appends the turn to the thread's memory session (at most once), in
    /// the background: the caller's answer does not wait on memory-server's
    /// write. Sessions are appended in run order because a thread runs one
    /// run at a time and the next run starts after this one's record is final
    /// (the append may land after that start; it never reorders turns of one run).
    fn write_back(&self, record: &RunRecord, answer: &str) {
        let (Some(memory), Some(thread)) = (self.engine.memory.clone(), record.run.thread_id)
        else {
            return;
        };
        let record = record.clone();
        let answer = answer.to_owned();
        tokio::spawn(async move { append_turn(&memory, &record, thread, answer).await });
    }
}

/// Appends one run's turn to its thread's memory session.
async fn append_turn(
    memory: &crate::memory::MemoryLink,
    record: &RunRecord,
    thread: Uuid,
    answer: String,
) {
    let scope = Scope {
        namespace: &record.run.namespace,
        user_id: record.user_id.as_deref(),
        agent: &record.run.agent,
    };
    let mut messages: Vec<(String, String, Option<String>)> = record
        .input
        .iter()
        .map(|m| (role_name(m.role), m.content.clone(), None))
        .collect();
    messages.push(("assistant".into(), answer, Some(record.run.agent.clone())));
    if let Err(e) = memory
        .append_turn(&scope, &thread.to_string(), messages)
        .await
    {
        tracing::warn!(error = %e, run = %record.run.id, "the turn was not appended to the memory session");
    }
}

impl Runs {
    /// Asks run `id` to stop: a queued run is cancelled at once; a running
    /// one stops at once here, or at its owner's next heartbeat elsewhere.
    pub async fn cancel(self: &Arc<Self>, id: Uuid) -> Result<Run, ApiError> {
        for _ in 0..CAS_TRIES {
            let (mut r, v) = self
                .records
                .run(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("run {id}")))?;
            if r.run.status.is_terminal() {
                return Err(ApiError::Conflict(format!(
                    "run {id} has already ended ({})",
                    status_name(r.run.status)
                )));
            }
            if matches!(r.run.status, RunStatus::Queued | RunStatus::Interrupted) {
                let was_interrupted = r.run.status == RunStatus::Interrupted;
                let last = r.run.last_event;
                r.run.status = RunStatus::Cancelled;
                r.run.finished_at = Some(now());
                r.run.last_event = last + 1;
                r.checkpoint = None;
                match self.records.put_run(&r, Expect::Version(v)).await {
                    Ok(_) => {
                        let emitter = Emitter::new(
                            Arc::clone(&self.records),
                            self.hub.clone(),
                            id,
                            r.run.namespace.clone(),
                            r.run.thread_id,
                            last,
                        );
                        let data = serde_json::to_value(&r.run).unwrap_or(Value::Null);
                        emitter.emit(event::RUN_CANCELLED, data).await?;
                        if was_interrupted && let Some(thread) = r.run.thread_id {
                            self.release(thread, id).await;
                        }
                        return Ok(r.run);
                    }
                    Err(ApiError::Conflict(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            r.cancel_requested = true;
            match self.records.put_run(&r, Expect::Version(v)).await {
                Ok(_) => {
                    if let Some(token) = self.local.lock().get(&id) {
                        token.cancel();
                    }
                    return Ok(r.run);
                }
                Err(ApiError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::Conflict(format!(
            "run {id} is changing too often; retry"
        )))
    }

    /// Goes on with an interrupted run after a person's `decision` about its
    /// pending tool call, on this instance; 409 unless it is interrupted.
    pub async fn resume(self: &Arc<Self>, id: Uuid, decision: Decision) -> Result<Run, ApiError> {
        for _ in 0..CAS_TRIES {
            let (mut r, v) = self
                .records
                .run(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("run {id}")))?;
            if r.run.status != RunStatus::Interrupted || r.checkpoint.is_none() {
                return Err(ApiError::Conflict(format!(
                    "run {id} is {}, not interrupted: there is nothing to resume",
                    status_name(r.run.status)
                )));
            }
            r.run.status = RunStatus::Running;
            r.owner = Some(self.instance.clone());
            r.lease_until = self.lease_until();
            match self.records.put_run(&r, Expect::Version(v)).await {
                Ok(version) => {
                    let run = r.run.clone();
                    self.spawn(r, Known::new(version, None), Begin::Resume(decision));
                    return Ok(run);
                }
                Err(ApiError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::Conflict(format!(
            "run {id} is changing too often; retry"
        )))
    }

    /// The run once it has ended (or paused), or as it is when `wait` runs out.
    pub async fn wait(&self, id: Uuid, wait: Duration) -> Result<Run, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut news = self.hub.subscribe();
        loop {
            let (r, _) = self
                .records
                .run(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("run {id}")))?;
            if r.run.status.is_settled() || tokio::time::Instant::now() >= deadline {
                return Ok(r.run);
            }
            // Woken by this instance's news, or polling the replica for others'.
            let poll = tokio::time::Instant::now() + Duration::from_millis(250);
            crate::events::news_of(&mut news, id, deadline.min(poll)).await;
        }
    }

    /// Fails running runs whose lease has passed (their instance died) and
    /// starts queued runs whose thread is free; returns how many it failed.
    pub async fn sweep(self: &Arc<Self>) -> Result<usize, ApiError> {
        let ids = self.records.run_ids_with(RunStatus::Running, None);
        let now_ms = now_millis();
        let mut failed = 0;
        for (mut r, v) in self.records.runs(&ids).await? {
            if !r.lease_lost(now_ms) || self.local.lock().contains_key(&r.run.id) {
                continue;
            }
            let last = self.records.last_event(r.run.id).await?;
            r.run.status = RunStatus::Failed;
            r.run.error = Some(RunError {
                code: "instance_lost".into(),
                message: "the instance running it stopped renewing its lease".into(),
            });
            r.run.finished_at = Some(now());
            r.run.last_event = last + 1;
            r.owner = None;
            if self.records.put_run(&r, Expect::Version(v)).await.is_err() {
                continue; // renewed or ended meanwhile
            }
            failed += 1;
            tracing::warn!(run = %r.run.id, "run failed: its instance stopped renewing the lease");
            let emitter = Emitter::new(
                Arc::clone(&self.records),
                self.hub.clone(),
                r.run.id,
                r.run.namespace.clone(),
                r.run.thread_id,
                last,
            );
            let data = serde_json::to_value(&r.run).unwrap_or(Value::Null);
            emitter.emit(event::RUN_FAILED, data).await?;
            self.metrics.run_finished(
                &r.run.agent,
                "failed",
                Duration::ZERO,
                Some("instance_lost"),
            );
            if let Some(thread) = r.run.thread_id {
                self.release(thread, r.run.id).await;
            }
        }
        // Queued runs whose thread is free (their predecessor's instance died
        // before starting them).
        let queued = self.records.run_ids_with(RunStatus::Queued, None);
        let mut threads: Vec<Uuid> = self
            .records
            .runs(&queued)
            .await?
            .into_iter()
            .filter_map(|(r, _)| r.run.thread_id)
            .collect();
        threads.sort();
        threads.dedup();
        for thread in threads {
            if let Some((t, _)) = self.records.thread(thread).await?
                && match t.active_run {
                    Some(a) => !self.is_live(a).await?,
                    None => true,
                }
            {
                if let Some(a) = t.active_run {
                    self.clear_active(thread, a).await;
                }
                self.start_next(thread).await;
            }
        }
        Ok(failed)
    }

    /// Runs [`Self::sweep`] every heartbeat until `stop`.
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        let every = Duration::from_millis(self.settings.heartbeat_ms);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = this.stop.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                if let Err(e) = this.sweep().await {
                    tracing::warn!(error = %e, "run sweep failed; retrying next heartbeat");
                }
            }
        })
    }

    /// Waits up to `grace` for local runs to end after shutdown was asked.
    pub async fn drain(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        while !self.local.lock().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Thread records are created by the HTTP layer; this is the one place
    /// that deletes a thread (refused while a run is active).
    pub async fn delete_thread(&self, thread: &Thread) -> Result<(), ApiError> {
        if let Some(active) = thread.active_run
            && self.is_live(active).await?
        {
            return Err(ApiError::Busy {
                message: format!(
                    "thread {} has run {active} in progress: cancel it first",
                    thread.id
                ),
                active_run: active.to_string(),
            });
        }
        self.records.delete_thread(thread.id).await
    }
}

/// The event that ends a run's stream: `interrupt` for a paused run (its
/// pending call), else the terminal status event with the run.
fn terminal_event(run: &Run, checkpoint: Option<&Checkpoint>) -> orchestrator_api::RunEvent {
    let (kind, data) = match checkpoint {
        Some(c) => {
            let call = c.pending.first();
            (
                event::INTERRUPT,
                json!({
                    "agent": c.agent,
                    "id": call.map(|c| c.id.clone()),
                    "tool": call.map(|c| c.name.clone()),
                    "arguments": call.map(|c| c.arguments.clone()),
                }),
            )
        }
        None => (
            status_event(run.status),
            serde_json::to_value(run).unwrap_or(Value::Null),
        ),
    };
    orchestrator_api::RunEvent {
        seq: run.last_event,
        run_id: run.id,
        event: kind.into(),
        data,
        at: now(),
    }
}

/// The 409 for a run asked on a thread whose run `active` is in progress.
fn busy_error(thread: Uuid, active: Uuid) -> ApiError {
    ApiError::Busy {
        message: format!(
            "thread {thread} has run {active} in progress: wait for it, cancel it, \
             or send \"queue\": true to run after it"
        ),
        active_run: active.to_string(),
    }
}

/// A run's input as thread messages.
fn input_messages(record: &RunRecord) -> Vec<Message> {
    record
        .input
        .iter()
        .map(|m| Message {
            id: Uuid::now_v7(),
            role: m.role,
            content: m.content.clone(),
            agent: None,
            run_id: record.run.id,
            created_at: now(),
        })
        .collect()
}

/// A run's input as model messages.
fn chat_messages(record: &RunRecord) -> Vec<ChatMessage> {
    record
        .input
        .iter()
        .map(|m| ChatMessage::new(chat_role(m.role), m.content.clone()))
        .collect()
}

/// The model-side role of a thread message.
fn chat_role(r: Role) -> ChatRole {
    match r {
        Role::User => ChatRole::User,
        Role::Assistant => ChatRole::Assistant,
        Role::System => ChatRole::System,
    }
}

/// A role's name in memory-server sessions.
fn role_name(r: Role) -> String {
    match r {
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::System => "system",
    }
    .to_owned()
}
