//! The durable job queue: background work (extracting long-term memories
//! from a session) as records of a record collection in the shared store.
//!
//! Consistency model:
//! - a job's id is derived from what it does (namespace, session, first
//!   message), so queuing the same work twice, from any instance, is one job;
//! - a worker claims a queued job by a compare-and-set on its version that
//!   makes it `running` under a lease; two workers never both win;
//! - the holder renews the lease; a job whose lease passed is claimable again
//!   (its instance died), so every job runs at least once;
//! - every write of a held job requires the version the holder last wrote:
//!   a holder that lost its lease learns it at its next write and stops;
//! - effects are made idempotent by the job (decisions saved before they are
//!   applied, each applied at most once), so a re-run changes nothing twice;
//! - failures retry with exponential backoff; after the last attempt the job
//!   stays `failed` with its error: the dead-letter list.
//!
//! The index answers "which jobs are queued / running / in namespace n"
//! from payload attributes; budgets per namespace and hour are records here too.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::durable::{DurableCollection, now_millis};
use vector_index::store::{AnyStore, Expect, Record};
use vector_index::{Field, Filter, IndexError, Payload};

use crate::epoch_ms::millis;
use crate::error::{ApiError, ApiResult};
use crate::ids::derived_id;
use crate::model::{Job, JobState, JobUsage, Kind};

/// The jobs' collection name in the store.
pub const JOBS_NAME: &str = "memory-jobs";

/// The payload attribute of a job in `state`.
fn state_attr(state: JobState) -> String {
    format!("job:{}", state.as_str())
}

/// The attribute of a budget record.
const BUDGET: &str = "budget";

/// One candidate's decision, as the model made it and the job saved it
/// before applying anything (so a re-run applies the same decisions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    /// `add`, `update`, `supersede` or `ignore`.
    pub action: crate::model::Action,
    /// The text to store (the candidate's, or the model's rewrite for `update`).
    pub text: String,
    /// The kind of memory.
    pub kind: Kind,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The people it concerns.
    #[serde(default)]
    pub people: Vec<String>,
    /// When it starts to hold, where stated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_from: Option<OffsetDateTime>,
    /// When it stops holding, where stated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
    /// The existing memory an `update` or `supersede` is about.
    #[serde(default)]
    pub target: Option<Uuid>,
    /// The messages (absolute indexes) it came from.
    #[serde(default)]
    pub messages: Vec<u64>,
    /// The model's reason, or why its proposal was turned into `ignore`.
    pub reason: String,
}

/// A job as stored: what callers see, and what only workers need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job as `GET /v1/jobs` shows it.
    pub job: Job,
    /// Instance holding the lease.
    #[serde(default)]
    pub owner: Option<String>,
    /// The lease ends at this instant (ms since the epoch) unless renewed.
    #[serde(default)]
    pub lease_until: i64,
    /// The decisions to apply, saved before the first is applied.
    #[serde(default)]
    pub plan: Option<Vec<Planned>>,
    /// The session's message numbering the job's indexes refer to.
    #[serde(default)]
    pub epoch: i64,
}

impl JobRecord {
    /// From when (ms) a worker may claim it: a queued job from its
    /// `not_before`, a running one once its lease has passed; `None` once
    /// it is done or failed.
    pub fn claimable_at(&self) -> Option<i64> {
        match self.job.state {
            JobState::Queued => Some(millis(self.job.not_before)),
            JobState::Running => Some(self.lease_until.saturating_add(1)),
            JobState::Done | JobState::Failed => None,
        }
    }
}

/// A job this worker holds: the record and the version it last wrote.
#[derive(Debug, Clone)]
pub struct Held {
    /// The record as last written.
    pub record: JobRecord,
    /// Its version in the store.
    pub version: u64,
}

/// What a queue's counts are, by state (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting.
    pub queued: u64,
    /// Held by a worker.
    pub running: u64,
    /// Finished.
    pub done: u64,
    /// Dead letters.
    pub failed: u64,
}

/// Model use in one namespace during one hour.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Spent {
    calls: u64,
    tokens: u64,
}

/// The queue over its record collection.
pub struct JobQueue {
    records: Arc<DurableCollection<AnyStore>>,
    /// Wakes this instance's idle workers when a job is queued here (others
    /// find it at their next poll).
    queued: tokio::sync::Notify,
}

const HOUR_MS: i64 = 3_600_000;
/// How long a done job stays listed.
const DONE_KEPT_MS: i64 = 7 * 24 * HOUR_MS;

impl JobQueue {
    /// A queue kept in `records`.
    pub fn new(records: Arc<DurableCollection<AnyStore>>) -> Self {
        Self {
            records,
            queued: tokio::sync::Notify::new(),
        }
    }

    /// Resolves when a job is queued on this instance.
    pub async fn queued(&self) {
        self.queued.notified().await;
    }

    /// The collection (for readiness).
    pub fn records(&self) -> &Arc<DurableCollection<AnyStore>> {
        &self.records
    }

    /// The id of the `kind` job over `session` (its messages numbered in
    /// `epoch`) from message `from` in `ns`.
    pub fn job_id(kind: &str, ns: &str, session: &str, epoch: i64, from: u64) -> Uuid {
        derived_id(&[ns, kind, session, &epoch.to_string(), &from.to_string()])
    }

    fn payload(job: &Job) -> Payload {
        // Done jobs are kept a week, then swept; dead letters stay until retried.
        let expires_at = (job.state == JobState::Done)
            .then(|| millis(job.updated_at).saturating_add(DONE_KEPT_MS));
        Payload {
            expires_at,
            namespace: job.namespace.clone(),
            session_id: job.session_id.clone(),
            kind: Some(job.kind.clone()),
            created_at: millis(job.created_at),
            updated_at: millis(job.updated_at),
            attributes: vec![state_attr(job.state)],
            ..Payload::default()
        }
    }

    fn decode(r: &Record) -> ApiResult<JobRecord> {
        serde_json::from_slice(&r.document)
            .map_err(|e| ApiError::Internal(format!("job {} is unreadable: {e}", r.id)))
    }

    /// The job `id` and its version, if stored.
    pub async fn get(&self, id: Uuid) -> ApiResult<Option<(JobRecord, u64)>> {
        match self.records.get(id).await? {
            Some(r) if !r.payload.attributes.iter().any(|a| a == BUDGET) => {
                Ok(Some((Self::decode(&r)?, r.version)))
            }
            _ => Ok(None),
        }
    }

    /// Writes `record` if the stored one is at `expect`; the new version.
    pub async fn put(&self, record: &JobRecord, expect: Expect) -> Result<u64, IndexError> {
        let document =
            serde_json::to_vec(record).map_err(|e| IndexError::Storage(e.to_string()))?;
        self.records
            .upsert_document(
                record.job.id,
                &[],
                Self::payload(&record.job),
                &document,
                expect,
            )
            .await
    }

    /// Queues `job` unless a job with its id exists; returns the stored one.
    /// With `retry`, a dead-lettered job is queued again (attempts reset).
    pub async fn enqueue(&self, job: Job, epoch: i64, retry: bool) -> ApiResult<Job> {
        for _ in 0..4 {
            match self.get(job.id).await? {
                None => {
                    let record = JobRecord {
                        job: job.clone(),
                        owner: None,
                        lease_until: 0,
                        plan: None,
                        epoch,
                    };
                    match self.put(&record, Expect::Absent).await {
                        Ok(_) => {
                            self.queued.notify_waiters();
                            return Ok(job);
                        }
                        Err(IndexError::VersionConflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Some((mut stored, version)) if retry && stored.job.state == JobState::Failed => {
                    let now = OffsetDateTime::now_utc();
                    stored.job.state = JobState::Queued;
                    stored.job.attempts = 0;
                    stored.job.not_before = now;
                    stored.job.updated_at = now;
                    stored.job.trigger.clone_from(&job.trigger);
                    match self.put(&stored, Expect::Version(version)).await {
                        Ok(_) => {
                            self.queued.notify_waiters();
                            return Ok(stored.job);
                        }
                        Err(IndexError::VersionConflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Some((stored, _)) => return Ok(stored.job),
            }
        }
        Err(ApiError::Conflict(format!(
            "job {} is being queued concurrently; retry",
            job.id
        )))
    }

    /// Jobs of `ns` (optionally in one state and of one session), newest first.
    pub async fn list(
        &self,
        ns: &str,
        state: Option<JobState>,
        session: Option<&str>,
        limit: usize,
    ) -> ApiResult<Vec<Job>> {
        let mut filter = Filter::all().eq(Field::Namespace, ns);
        filter = match state {
            Some(s) => filter.eq(Field::Attribute, state_attr(s)),
            None => filter.not(Filter::all().eq(Field::Attribute, BUDGET)),
        };
        if let Some(s) = session {
            filter = filter.eq(Field::Session, s);
        }
        let ids = self.records.ids_matching(&filter);
        let mut jobs: Vec<Job> = self
            .records
            .get_many(&ids)
            .await?
            .into_iter()
            .flatten()
            .filter(|r| r.payload.namespace == ns)
            .filter_map(|r| Self::decode(&r).ok())
            .map(|r| r.job)
            .collect();
        jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        jobs.truncate(limit);
        Ok(jobs)
    }

    /// Jobs a worker may try to claim at `now`: queued ones, and running
    /// ones (a lease may have passed); oldest first.
    pub fn candidates(&self) -> Vec<Uuid> {
        let mut ids = self.records.ids_matching(&Filter::all().any_of(
            Field::Attribute,
            [state_attr(JobState::Queued), state_attr(JobState::Running)],
        ));
        // By id: a stable order (ids are digests, so not the queue's order).
        ids.sort_unstable();
        ids
    }

    /// Claims `record`, read at `version`, for `owner` for `lease_ms`, if it
    /// is claimable now ([`JobRecord::claimable_at`]). `None`: not claimable,
    /// or another worker won.
    pub async fn claim(
        &self,
        (mut record, version): (JobRecord, u64),
        owner: &str,
        lease_ms: i64,
    ) -> ApiResult<Option<Held>> {
        let now = now_millis();
        if record.claimable_at().is_none_or(|at| at > now) {
            return Ok(None);
        }
        if record.job.state == JobState::Running {
            record.job.error = Some(format!(
                "{} stopped renewing its lease; run again",
                record.owner.as_deref().unwrap_or("an instance")
            ));
        }
        record.job.state = JobState::Running;
        record.job.attempts += 1;
        record.job.updated_at = OffsetDateTime::now_utc();
        record.job.started_at = Some(record.job.updated_at);
        record.owner = Some(owner.to_owned());
        record.lease_until = now.saturating_add(lease_ms);
        match self.put(&record, Expect::Version(version)).await {
            Ok(version) => Ok(Some(Held { record, version })),
            Err(IndexError::VersionConflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the held job's record as it is now; fails with a conflict when
    /// another worker took it over.
    pub async fn save(&self, held: &mut Held) -> Result<(), IndexError> {
        held.record.job.updated_at = OffsetDateTime::now_utc();
        held.version = self
            .put(&held.record, Expect::Version(held.version))
            .await?;
        Ok(())
    }

    /// How many jobs are in each state.
    pub fn counts(&self) -> Counts {
        let n = |s| {
            self.records
                .count_matching(&Filter::all().eq(Field::Attribute, state_attr(s)))
        };
        Counts {
            queued: n(JobState::Queued),
            running: n(JobState::Running),
            done: n(JobState::Done),
            failed: n(JobState::Failed),
        }
    }

    fn budget_id(ns: &str, hour: i64) -> Uuid {
        derived_id(&[ns, "budget", &hour.to_string()])
    }

    /// What `ns` spent this hour, and when the hour ends (ms).
    async fn spent(&self, ns: &str) -> ApiResult<(Spent, Option<u64>, i64)> {
        let hour = now_millis().div_euclid(HOUR_MS);
        let id = Self::budget_id(ns, hour);
        let (spent, version) = match self.records.get(id).await? {
            Some(r) => (
                serde_json::from_slice(&r.document).unwrap_or_default(),
                Some(r.version),
            ),
            None => (Spent::default(), None),
        };
        Ok((spent, version, (hour + 1) * HOUR_MS))
    }

    /// `None` when `ns` may make model calls now; else when its budget
    /// frees up (ms) and which limit it reached.
    pub async fn over_budget(
        &self,
        ns: &str,
        calls: Option<u32>,
        tokens: Option<u64>,
    ) -> ApiResult<Option<(i64, String)>> {
        if calls.is_none() && tokens.is_none() {
            return Ok(None);
        }
        let (spent, _, next_hour) = self.spent(ns).await?;
        if let Some(c) = calls
            && spent.calls >= u64::from(c)
        {
            return Ok(Some((
                next_hour,
                format!("the namespace's budget of {c} model calls per hour is spent"),
            )));
        }
        if let Some(t) = tokens
            && spent.tokens >= t
        {
            return Ok(Some((
                next_hour,
                format!("the namespace's budget of {t} model tokens per hour is spent"),
            )));
        }
        Ok(None)
    }

    /// Adds `usage` to `ns`'s spending this hour.
    pub async fn spend(&self, ns: &str, usage: &JobUsage) -> ApiResult<()> {
        for _ in 0..8 {
            let (mut spent, version, next_hour) = self.spent(ns).await?;
            spent.calls += usage.calls;
            spent.tokens += usage.input_tokens + usage.output_tokens;
            let hour = next_hour / HOUR_MS - 1;
            let document =
                serde_json::to_vec(&spent).map_err(|e| ApiError::Internal(e.to_string()))?;
            let payload = Payload {
                namespace: ns.to_owned(),
                attributes: vec![BUDGET.to_owned()],
                // Kept an hour past its own, then swept.
                expires_at: Some(next_hour + HOUR_MS),
                ..Payload::default()
            };
            let expect = version.map_or(Expect::Absent, Expect::Version);
            match self
                .records
                .upsert_document(Self::budget_id(ns, hour), &[], payload, &document, expect)
                .await
            {
                Ok(_) => return Ok(()),
                Err(IndexError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Conflict(format!(
            "the budget of `{ns}` is being updated concurrently"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_per_kind_namespace_session_and_start() {
        let id = |ns, s, e, f| JobQueue::job_id("extract", ns, s, e, f);
        assert_eq!(id("a", "s", 5, 0), id("a", "s", 5, 0));
        assert_ne!(id("a", "s", 5, 0), id("a", "s", 5, 1));
        assert_ne!(id("a", "s", 5, 0), id("a", "s", 6, 0));
        assert_ne!(id("a", "s", 5, 0), id("b", "s", 5, 0));
        assert_ne!(id("a", "s1", 5, 0), id("a", "s", 5, 10));
        assert_ne!(
            id("a", "s", 5, 0),
            JobQueue::job_id("summarize", "a", "s", 5, 0)
        );
    }
}

/// Why a job run stopped before it finished.
#[derive(Debug)]
pub enum Stop {
    /// Another worker holds the job now (this one's lease passed): drop it.
    LeaseLost,
    /// The run failed; retried with backoff, then dead-lettered with this.
    Failed(String),
    /// The job cannot run yet (it waits for another): queued again for a
    /// later poll, the attempt not counted, with this said in its `error`.
    Wait(String),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::Failed(e.to_string())
    }
}

impl From<IndexError> for Stop {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::VersionConflict { .. } => Stop::LeaseLost,
            e => Stop::Failed(e.to_string()),
        }
    }
}
