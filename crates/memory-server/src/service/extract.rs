//! Extraction: long-term memories mined from a session's new messages by a
//! chat model, as a background job.
//!
//! A job covers the session's messages from the first not yet extracted to
//! the last present when the model is asked. It runs in two halves:
//! 1. plan: ask the model for candidates ([`super::prompts`]), show it the
//!    stored memories most like each, take its decisions, and turn every
//!    proposal outside the rules (an unknown action, a memory it was not
//!    shown) into `ignore` with the reason; then save the plan in the job
//!    record, before anything is applied;
//! 2. apply each planned decision idempotently ([`super::consolidate`]),
//!    move the session's extraction cursor, and mark the job done.
//!
//! A crash in the first half costs model calls and nothing else; in the
//! second half the re-run applies the saved plan again, which changes
//! nothing twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use providers::chat::{ChatMessage, ChatModel, ChatModelConfig, ChatRequest, ChatRole};
use providers::embed::Purpose;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;
use uuid::Uuid;
use vector_index::{Field, Filter, Query, TimeField};

use super::MemoryService;
use super::merge::MERGE;
use super::policy::Policies;
use super::prompts;
use super::sessions::Extraction;
use super::summarize::SUMMARIZE;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Held, JobQueue, Planned, Stop};
use crate::model::{
    Action, ExtractRequest, ExtractionPolicy, Job, JobList, JobState, JobUsage, Kind, ListJobs,
    MemoryPolicy, Message, Session,
};
use crate::validate;

/// A chat model extraction may use, with the settings it was built from (prices).
pub struct ChatModelEntry {
    /// The model.
    pub model: Arc<dyn ChatModel>,
    /// Its configuration.
    pub config: ChatModelConfig,
}

/// What memory maintenance needs beside the memories: the namespace
/// policies, the job queue and the chat models by name.
pub struct Maintenance {
    /// Namespace policies.
    pub policies: Policies,
    /// The durable job queue.
    pub jobs: Arc<JobQueue>,
    /// Chat models by their `[models]` name.
    pub models: BTreeMap<String, ChatModelEntry>,
}

/// Who jobs act as: write access to the job's namespace only, no agent, so
/// they see and write shared memories only.
const MAINTAINER: &str = "memory-maintainer";

/// The kind of an extraction job.
const EXTRACT: &str = "extract";

/// Jobs listed by default.
const DEFAULT_JOBS: usize = 50;

/// A reason longer than this is cut (it is kept in history).
const MAX_REASON_CHARS: usize = 500;

fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl MemoryService {
    /// The job queue.
    pub fn jobs(&self) -> &Arc<JobQueue> {
        &self.jobs
    }

    /// The chat model `name`, if configured.
    pub fn chat_model(&self, name: &str) -> Option<&ChatModelEntry> {
        self.chat_models.get(name)
    }

    /// Checks that `policy`'s model is configured.
    pub(super) fn check_policy_model(&self, policy: &crate::model::MemoryPolicy) -> ApiResult<()> {
        match policy.extracting() {
            Some(e) if !self.chat_models.contains_key(&e.model) => Err(ApiError::invalid(
                "extraction.model",
                format!(
                    "`{}` is not a chat model of this server; configured: [{}]",
                    e.model,
                    self.chat_models
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            _ => Ok(()),
        }
    }

    /// A new queued job `id` of `kind` in `ns`, queued by `trigger`.
    pub(super) fn blank_job(id: Uuid, kind: &str, ns: &str, trigger: &str) -> Job {
        let now = OffsetDateTime::now_utc();
        Job {
            id,
            namespace: ns.to_owned(),
            kind: kind.into(),
            session_id: None,
            memory_ids: Vec::new(),
            trigger: trigger.into(),
            state: JobState::Queued,
            from_message: 0,
            to_message: None,
            missed_messages: 0,
            folded_messages: None,
            attempts: 0,
            error: None,
            not_before: now,
            decisions: Vec::new(),
            usage: JobUsage::default(),
            created_at: now,
            started_at: None,
            updated_at: now,
        }
    }

    /// A new job of `kind` over `session` from message `from` (numbered in `epoch`).
    pub(super) fn new_job(
        kind: &str,
        session: &Session,
        (epoch, from): (i64, u64),
        trigger: &str,
    ) -> Job {
        let ns = &session.namespace;
        let id = JobQueue::job_id(kind, ns, &session.session_id, epoch, from);
        let mut job = Self::blank_job(id, kind, ns, trigger);
        job.session_id = Some(session.session_id.clone());
        job.from_message = from;
        job
    }

    /// A new extraction job of `session` from `next`.
    fn extraction_job(session: &Session, next: Extraction, trigger: &str) -> Job {
        Self::new_job(EXTRACT, session, (next.epoch, next.from), trigger)
    }

    /// After an append under `policy`: queues an extraction once the session
    /// has the policy's number of messages not yet extracted, and a summary
    /// once it passes the summary threshold. Costs an in-memory check while
    /// such a job is queued; a failure is logged, and the next append queues
    /// it again (nothing has moved).
    pub(super) async fn after_append(
        &self,
        policy: &MemoryPolicy,
        session: &Session,
        total: u64,
        next: Extraction,
    ) {
        let due = policy
            .extracting()
            .and_then(|e| e.after_messages)
            .is_some_and(|n| total.saturating_sub(next.from) >= u64::from(n));
        if due {
            self.queue_quietly(Self::extraction_job(session, next, "messages"), next.epoch)
                .await;
        }
        if let Some(s) = self.summarizing(policy)
            && Self::over_summary_threshold(s, &session.messages)
        {
            let job = Self::summary_job(session, next.epoch);
            self.queue_quietly(job, next.epoch).await;
        }
    }

    /// Queues an extraction of every session whose idle deadline (its last
    /// append plus its namespace's `idle_seconds`) fell in `(after, until]`
    /// (ms) and that has messages not yet extracted; how many were queued.
    /// The in-memory index finds the candidates; only they are read.
    pub async fn queue_idle_extractions(&self, after: i64, until: i64) -> ApiResult<usize> {
        let mut queued = 0;
        for ns in self.collection.index().values(Field::Namespace) {
            let policy = self.policies.of(&ns).await?.policy;
            let Some(idle) = policy.extracting().and_then(|e| e.idle_seconds) else {
                continue;
            };
            let idle_ms = i64::try_from(idle.saturating_mul(1000)).unwrap_or(i64::MAX);
            let updated = (
                after.saturating_sub(idle_ms).saturating_add(1),
                until.saturating_sub(idle_ms).saturating_add(1),
            );
            let ids = self.collection.ids_matching(
                &Filter::all()
                    .eq(Field::Namespace, ns.as_str())
                    .eq(Field::Attribute, super::sessions::SESSION)
                    .range(TimeField::Updated, Some(updated.0), Some(updated.1)),
            );
            let records = self.timed("get_many", self.collection.get_many(&ids));
            for r in records.await?.into_iter().flatten() {
                // One read per session: the record the scan read is decoded.
                let Some((session, next)) = Self::job_view_of(&r)? else {
                    continue;
                };
                if session.trimmed + session.messages.len() as u64 > next.from {
                    let job = Self::extraction_job(&session, next, "idle");
                    self.queue_quietly(job, next.epoch).await;
                    queued += 1;
                }
            }
        }
        Ok(queued)
    }

    /// After a job moved a session on (an extraction's cursor, a fold):
    /// queues what appends made due meanwhile, which their own triggers
    /// could not (they found this job still queued or running).
    pub(super) async fn after_job(&self, ns: &str, session_id: &str) -> ApiResult<()> {
        let policy = self.policies.of(ns).await?.policy;
        if let Some((session, next)) = self.session_for_job(ns, session_id).await? {
            let total = session.trimmed + session.messages.len() as u64;
            self.after_append(&policy, &session, total, next).await;
        }
        Ok(())
    }

    /// After a promote: queues an extraction when the policy asks for it.
    pub(super) async fn after_promote(&self, session: &Session) {
        let wanted = matches!(
            self.policies.of(&session.namespace).await,
            Ok(p) if p.policy.extracting().is_some_and(|e| e.on_promote)
        );
        if !wanted {
            return;
        }
        match self
            .session_for_job(&session.namespace, &session.session_id)
            .await
        {
            Ok(Some((s, next))) => {
                let job = Self::extraction_job(&s, next, "promote");
                self.queue_quietly(job, next.epoch).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the session; no extraction queued"),
        }
    }

    /// Queues `job` unless it is known; a failure is logged (see [`Self::after_append`]).
    pub(super) async fn queue_quietly(&self, job: Job, epoch: i64) {
        if self.jobs.records().index().contains(job.id) {
            return; // queued (or run) already
        }
        let (id, kind) = (job.id, job.kind.clone());
        if let Err(e) = self.jobs.enqueue(job, epoch, false).await {
            tracing::warn!(error = %e, %id, kind, "cannot queue a job");
        }
    }

    /// Queues an extraction of `session_id`'s messages not yet extracted
    /// (`write` on the namespace), or queues its dead-lettered one again.
    pub async fn extract(
        &self,
        who: &Principal,
        session_id: &str,
        req: ExtractRequest,
    ) -> ApiResult<Job> {
        let ns = &req.namespace;
        validate::namespace(&self.limits, ns)?;
        validate::label(&self.limits, "session_id", session_id)?;
        who.require(ns, Role::Write)?;
        let policy = self.policies.of(ns).await?.policy;
        if policy.extracting().is_none() {
            return Err(ApiError::Conflict(format!(
                "extraction is off in `{ns}`: set the namespace policy's extraction \
                 (strategy and model) first"
            )));
        }
        let (session, next) = self.session_for_job(ns, session_id).await?.ok_or_else(|| {
            ApiError::NotFound(format!("session `{session_id}` not found in `{ns}`"))
        })?;
        let total = session.trimmed + session.messages.len() as u64;
        let job = Self::extraction_job(&session, next, "demand");
        if total <= next.from && !self.jobs.records().index().contains(job.id) {
            return Err(ApiError::Conflict(format!(
                "session `{session_id}` has no messages since its last extraction"
            )));
        }
        self.jobs.enqueue(job, next.epoch, true).await
    }

    /// Jobs of a namespace (`read` on it), newest first.
    pub async fn list_jobs(&self, who: &Principal, q: ListJobs) -> ApiResult<JobList> {
        validate::namespace(&self.limits, &q.namespace)?;
        who.require(&q.namespace, Role::Read)?;
        if let Some(s) = &q.session_id {
            validate::label(&self.limits, "session_id", s)?;
        }
        let limit = validate::top_k(&self.limits, "limit", q.limit.unwrap_or(DEFAULT_JOBS))?;
        let jobs = self
            .jobs
            .list(&q.namespace, q.state, q.session_id.as_deref(), limit)
            .await?;
        Ok(JobList { jobs })
    }

    /// Runs the held job to its end (an extraction: see the module docs; a
    /// summary: [`super::summarize`]); `pause` (tests only) waits after an
    /// extraction's plan and before each decision.
    pub async fn run_job(&self, held: &Mutex<Held>, pause: Duration) -> Result<(), Stop> {
        let kind = held.lock().await.record.job.kind.clone();
        match kind.as_str() {
            SUMMARIZE => return self.run_summary(held).await,
            MERGE => return self.run_merge(held).await,
            _ => {}
        }
        let (id, ns, session_id, epoch, plan) = {
            let h = held.lock().await;
            let j = &h.record.job;
            (
                j.id,
                j.namespace.clone(),
                j.session_id.clone().unwrap_or_default(),
                h.record.epoch,
                h.record.plan.clone(),
            )
        };
        let policy = self.policies.of(&ns).await?.policy;
        let Some(extraction) = policy.extracting().cloned() else {
            return self
                .finish(
                    held,
                    Vec::new(),
                    Some("extraction was turned off; nothing extracted"),
                )
                .await;
        };
        let Some((session, next)) = self.session_for_job(&ns, &session_id).await? else {
            return self
                .finish(
                    held,
                    Vec::new(),
                    Some("the session no longer exists; nothing extracted"),
                )
                .await;
        };
        if next.epoch != epoch {
            return self
                .finish(
                    held,
                    Vec::new(),
                    Some("the session was replaced; nothing extracted"),
                )
                .await;
        }
        let plan = match plan {
            Some(p) => p,
            None => self.plan(held, &extraction, &session).await?,
        };
        let mut decisions = Vec::with_capacity(plan.len());
        for (i, p) in plan.iter().enumerate() {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let d = self.apply_planned(&ns, &session, id, i, p).await?;
            self.metrics.decision(d.action);
            decisions.push(d);
        }
        let to = held.lock().await.record.job.to_message.unwrap_or(next.from);
        self.advance_extraction(&ns, &session_id, (epoch, to))
            .await?;
        self.finish(held, decisions, None).await?;
        // Done whatever follows: a failure here is logged, and the next
        // append (or idle scan) queues what is due.
        if let Err(e) = self.after_job(&ns, &session_id).await {
            tracing::warn!(error = %e, session = %session_id, "cannot queue the next job");
        }
        Ok(())
    }

    /// Adds `usage` to the held job (saved) and charges the namespace's budget.
    pub(super) async fn account(&self, held: &Mutex<Held>, usage: &JobUsage) -> Result<(), Stop> {
        let ns = {
            let mut h = held.lock().await;
            let u = &mut h.record.job.usage;
            u.calls += usage.calls;
            u.input_tokens += usage.input_tokens;
            u.output_tokens += usage.output_tokens;
            u.cost_usd += usage.cost_usd;
            self.jobs.save(&mut h).await?;
            h.record.job.namespace.clone()
        };
        if usage.calls > 0
            && let Err(e) = self.jobs.spend(&ns, usage).await
        {
            tracing::warn!(error = %e, namespace = %ns, "model use not charged to the budget");
        }
        Ok(())
    }

    /// Marks the held job done with `decisions` (and a note why there are none).
    pub(super) async fn finish(
        &self,
        held: &Mutex<Held>,
        decisions: Vec<crate::model::Decision>,
        note: Option<&str>,
    ) -> Result<(), Stop> {
        let mut h = held.lock().await;
        h.record.job.decisions = decisions;
        h.record.job.state = JobState::Done;
        h.record.job.error = note.map(str::to_owned);
        h.record.owner = None;
        self.jobs.save(&mut h).await?;
        Ok(())
    }

    /// The first half: asks the model, validates what it proposes, and saves
    /// the plan (with the model use, which the namespace's budget is charged).
    async fn plan(
        &self,
        held: &Mutex<Held>,
        policy: &ExtractionPolicy,
        session: &Session,
    ) -> Result<Vec<Planned>, Stop> {
        let from = held.lock().await.record.job.from_message;
        let total = session.trimmed + session.messages.len() as u64;
        let start = from.max(session.trimmed);
        let skip = usize::try_from(start - session.trimmed).unwrap_or(usize::MAX);
        let messages = session.messages.get(skip..).unwrap_or_default();
        let mut usage = JobUsage::default();
        let planned = if messages.is_empty() {
            Ok(Vec::new())
        } else {
            self.propose(policy, session, (start, total), messages, &mut usage)
                .await
        };
        if let Ok(p) = &planned {
            let mut h = held.lock().await;
            h.record.plan = Some(p.clone());
            h.record.job.to_message = Some(total);
            h.record.job.missed_messages = start - from;
        }
        // One write saves the plan and the model use.
        self.account(held, &usage).await?;
        Ok(planned?)
    }

    /// Asks the model for candidates from `messages` (numbered from
    /// `start`), then for decisions about those with similar stored memories.
    async fn propose(
        &self,
        policy: &ExtractionPolicy,
        session: &Session,
        (start, end): (u64, u64),
        messages: &[Message],
        usage: &mut JobUsage,
    ) -> ApiResult<Vec<Planned>> {
        let entry = self.chat_models.get(&policy.model).ok_or_else(|| {
            ApiError::Unavailable(format!(
                "the policy's model `{}` is not configured on this instance",
                policy.model
            ))
        })?;
        let answer = self
            .ask(
                entry,
                prompts::candidates_system(policy.strategy, policy.prompt.as_deref()),
                prompts::candidates_user(start, messages),
                prompts::candidates_schema(),
                usage,
            )
            .await?;
        let items = answer
            .get("memories")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ApiError::BadGateway("the model's answer has no `memories` list".into())
            })?;
        let mut planned: Vec<Planned> = items
            .iter()
            .enumerate()
            .map(|(k, item)| self.candidate(k, item, (start, end)))
            .collect();
        self.decide(entry, session, &mut planned, usage).await?;
        Ok(planned)
    }

    /// One candidate as planned: `add`, or `ignore` with why it was refused.
    fn candidate(&self, k: usize, item: &Value, (start, end): (u64, u64)) -> Planned {
        let strings = |key: &str, max: usize| -> Vec<String> {
            item.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|s| cut(s.trim(), self.limits.max_label_chars))
                        .filter(|s| !s.is_empty())
                        .take(max)
                        .collect()
                })
                .unwrap_or_default()
        };
        let when = |key: &str| {
            item.get(key)
                .and_then(Value::as_str)
                .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        };
        let text = item
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_owned();
        let mut tags = strings("tags", self.limits.max_tags);
        if validate::tags(&self.limits, "tags", &tags).is_err() {
            tags.clear();
        }
        let mut p = Planned {
            action: Action::Add,
            kind: item
                .get("kind")
                .and_then(Value::as_str)
                .and_then(Kind::parse)
                .filter(|k| *k != Kind::Message)
                .unwrap_or(Kind::Semantic),
            tags,
            people: strings("people", 16),
            valid_from: when("valid_from"),
            valid_until: when("valid_until"),
            target: None,
            messages: item
                .get("messages")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_u64)
                        .filter(|n| (start..end).contains(n))
                        .take(64)
                        .collect()
                })
                .unwrap_or_default(),
            reason: "new".into(),
            text: text.clone(),
        };
        let refused = if k >= prompts::MAX_CANDIDATES {
            Some(format!(
                "beyond the {} candidates one job considers",
                prompts::MAX_CANDIDATES
            ))
        } else {
            validate::text(&self.limits, "text", &text)
                .err()
                .map(|e| e.to_string())
        };
        if let Some(why) = refused {
            p.action = Action::Ignore;
            p.text = cut(&text, 200);
            p.reason = format!("rejected: {why}");
        }
        p
    }

    /// Shows the model the stored memories most like each `add` candidate
    /// and applies its decisions to `planned`; candidates with nothing
    /// similar stored stay `add` without asking.
    async fn decide(
        &self,
        entry: &ChatModelEntry,
        session: &Session,
        planned: &mut [Planned],
        usage: &mut JobUsage,
    ) -> ApiResult<()> {
        let adds: Vec<usize> = (0..planned.len())
            .filter(|i| planned[*i].action == Action::Add)
            .collect();
        if adds.is_empty() {
            return Ok(());
        }
        let texts = adds.iter().map(|i| planned[*i].text.clone()).collect();
        let vectors = self.embed(texts, Purpose::Query).await?;
        let ns = session.namespace.as_str();
        let user = session.user_id.as_deref();
        let mut scope = Self::visible_filter(ns, None);
        if let Some(u) = user {
            scope = scope.eq(Field::User, u);
        }
        let scope = Self::believed(scope, None);
        // label → memory id, per candidate; labels are unique in the call.
        let mut shown: Vec<(usize, Vec<(String, Uuid)>)> = Vec::new();
        let mut items = Vec::new();
        let mut next_label = 1;
        for (i, v) in adds.iter().zip(vectors) {
            let hits = self
                .collection
                .search(&Query::new(v, prompts::NEIGHBOURS * 2).filter(scope.clone()))?;
            let ids: Vec<Uuid> = hits.hits.iter().map(|h| h.id).collect();
            let records = self
                .timed("get_many", self.collection.get_many(&ids))
                .await?;
            let mut similar = Vec::new();
            let mut labels = Vec::new();
            for r in records.into_iter().flatten() {
                // The index filtered by scope; a memory with no user is only
                // compared with memories with no user.
                if r.payload.namespace != ns || r.payload.user_id.as_deref() != user {
                    continue;
                }
                let Some(m) = self.readable(&r) else { continue };
                let label = format!("m{next_label}");
                next_label += 1;
                similar.push((label.clone(), m.text));
                labels.push((label, m.id));
                if labels.len() == prompts::NEIGHBOURS {
                    break;
                }
            }
            if !labels.is_empty() {
                items.push(prompts::Shown {
                    candidate: *i,
                    text: planned[*i].text.clone(),
                    stored: similar,
                });
                shown.push((*i, labels));
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        let answer = self
            .ask(
                entry,
                prompts::decisions_system(),
                prompts::decisions_user(&items),
                prompts::decisions_schema(),
                usage,
            )
            .await?;
        let decisions = answer
            .get("decisions")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ApiError::BadGateway("the model's answer has no `decisions` list".into())
            })?;
        let mut decided = vec![false; planned.len()];
        for d in decisions {
            let Some(i) = d
                .get("candidate")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok())
            else {
                continue;
            };
            let Some((_, labels)) = shown.iter().find(|(c, _)| *c == i) else {
                continue; // not a candidate it was asked about
            };
            if decided[i] {
                continue; // the first decision about a candidate wins
            }
            decided[i] = true;
            let reason = cut(
                d.get("reason").and_then(Value::as_str).unwrap_or("").trim(),
                MAX_REASON_CHARS,
            );
            let p = &mut planned[i];
            let action = d.get("action").and_then(Value::as_str).unwrap_or("");
            let target = d.get("target").and_then(Value::as_str).and_then(|t| {
                labels
                    .iter()
                    .find(|(label, _)| label == t.trim())
                    .map(|(_, id)| *id)
            });
            match (action, target) {
                ("add", _) => p.reason = reason,
                ("ignore", _) => {
                    p.action = Action::Ignore;
                    p.reason = reason;
                }
                ("update" | "supersede", Some(t)) => {
                    p.action = if action == "update" {
                        Action::Update
                    } else {
                        Action::Supersede
                    };
                    p.target = Some(t);
                    p.reason = reason;
                    if action == "update"
                        && let Some(text) = d.get("text").and_then(Value::as_str)
                        && validate::text(&self.limits, "text", text.trim()).is_ok()
                    {
                        p.text = text.trim().to_owned();
                    }
                }
                ("update" | "supersede", None) => {
                    p.action = Action::Ignore;
                    p.reason = format!(
                        "rejected: `{action}` must name one of the memories shown for the \
                         candidate ({}); it named {}",
                        labels
                            .iter()
                            .map(|(l, _)| l.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        d.get("target").map_or("none".into(), Value::to_string)
                    );
                }
                (other, _) => {
                    p.action = Action::Ignore;
                    p.reason = format!(
                        "rejected: `{}` is not an action (add, update, supersede or ignore)",
                        cut(other, 40)
                    );
                }
            }
        }
        Ok(())
    }

    /// One model call answering in JSON following `schema`; its use is
    /// added to `usage` (and the metrics) even when the answer is unusable.
    pub(super) async fn ask(
        &self,
        entry: &ChatModelEntry,
        system: String,
        user: String,
        schema: Value,
        usage: &mut JobUsage,
    ) -> ApiResult<Value> {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::new(ChatRole::System, system),
                ChatMessage::new(ChatRole::User, user),
            ],
            response_schema: Some(schema),
            temperature: entry.config.temperature.or(Some(0.0)),
            max_tokens: entry.config.max_tokens,
            ..ChatRequest::default()
        };
        usage.calls += 1;
        let answer = providers::chat::complete(entry.model.as_ref(), &request, |_| {}).await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                self.metrics.llm_call(0, 0, 0.0);
                return Err(ApiError::BadGateway(format!(
                    "chat model {}: {e}",
                    entry.model.id()
                )));
            }
        };
        let (input, output) = (answer.usage.input_tokens, answer.usage.output_tokens);
        let cut_off = answer.finish == providers::chat::FinishReason::Length;
        let cost = (input as f64 * entry.config.input_price_per_million
            + output as f64 * entry.config.output_price_per_million)
            / 1e6;
        usage.input_tokens += input;
        usage.output_tokens += output;
        usage.cost_usd += cost;
        self.metrics.llm_call(input, output, cost);
        let text = answer.text.trim();
        // Some models wrap JSON in a Markdown fence even when asked not to.
        let text = text
            .strip_prefix("```json")
            .or_else(|| text.strip_prefix("```"))
            .and_then(|t| t.strip_suffix("```"))
            .unwrap_or(text)
            .trim();
        serde_json::from_str(text).map_err(|e| {
            let why = if cut_off {
                format!(
                    "the model's answer was cut off at its max_tokens ({e}); raise max_tokens \
                     of [models] entry `{}`",
                    entry.model.id()
                )
            } else {
                format!("the model's answer is not the JSON asked for ({e})")
            };
            ApiError::BadGateway(format!("{why}; it began {:?}", cut(text, 80)))
        })
    }

    /// The principal a job in `ns` acts as (as no agent unless a request
    /// names one: a merge of private memories acts as their author).
    pub(super) fn maintainer(ns: &str) -> Principal {
        Principal::service(MAINTAINER, ns, Role::Write)
    }
}
