//! Wire types of the memory API: the data model and every request and response
//! body, shared by `memory-server` and `memory-client` so they cannot drift.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::ToSchema;

use uuid::Uuid;

mod projection;
pub use projection::{MemoryField, MemoryFields, Projected};

/// What sort of memory it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A fact or preference ("Alice is vegetarian").
    #[default]
    Semantic,
    /// Something that happened ("the deploy failed on Tuesday").
    Episodic,
    /// How to do something.
    Procedural,
    /// A conversation message.
    Message,
}

impl Kind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Semantic => "semantic",
            Kind::Episodic => "episodic",
            Kind::Procedural => "procedural",
            Kind::Message => "message",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "semantic" => Kind::Semantic,
            "episodic" => Kind::Episodic,
            "procedural" => Kind::Procedural,
            "message" => Kind::Message,
            _ => return None,
        })
    }
}

/// Who may see a memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Everyone with read access to the namespace.
    #[default]
    Shared,
    /// Only its author agent.
    Private,
}

/// A stored memory as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Memory {
    /// UUIDv7 (time-ordered).
    pub id: Uuid,
    /// Tenant namespace.
    pub namespace: String,
    /// Author agent.
    pub agent_id: Option<String>,
    /// The user it is about.
    pub user_id: Option<String>,
    /// The conversation it came from.
    pub session_id: Option<String>,
    /// Sort of memory.
    pub kind: Kind,
    /// The content.
    pub text: String,
    /// Labels.
    pub tags: Vec<String>,
    /// Free-form JSON object; top-level scalars can be filtered on.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Shared in the namespace or private to the author.
    pub visibility: Visibility,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub updated_at: OffsetDateTime,
    /// When it stops being returned.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub expires_at: Option<OffsetDateTime>,
    /// Changes on every write; send it back in `If-Match`.
    pub version: u64,
    /// SHA-256 of the text.
    pub content_hash: String,
    /// Model that embedded the text.
    pub embedding_model: String,
    /// When the fact starts to hold, where stated.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub valid_from: Option<OffsetDateTime>,
    /// When the fact stopped (or stops) holding: stated, or set when it was superseded.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub valid_until: Option<OffsetDateTime>,
    /// The memory that replaced this one; a superseded memory is kept, frozen,
    /// and left out of searches unless `include_superseded` or `as_of` asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<Uuid>,
}

/// A new memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"namespace": "team-a", "text": "Alice prefers green tea in the morning", "user_id": "alice", "tags": ["prefs"]}))]
pub struct NewMemory {
    /// Tenant namespace.
    pub namespace: String,
    /// The content (required, non-blank).
    pub text: String,
    /// Author (replaced by the key's agent when the key is bound to one).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The user it is about.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The conversation it came from.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Sort of memory (default `semantic`).
    #[serde(default)]
    pub kind: Kind,
    /// Labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form JSON object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Default `shared`.
    #[serde(default)]
    pub visibility: Visibility,
    /// When it stops being returned.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub expires_at: Option<OffsetDateTime>,
    /// Your own vector instead of embedding `text` (must match the namespace's dimension).
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
    /// Retries with the same key return the memory the first call created.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Store it even when the namespace's policy finds a near-duplicate
    /// (the answer still names the similar memory).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_near_duplicate: bool,
    /// Store it even when an identical memory exists (same text, user,
    /// author, visibility, session and metadata): for logs where a repeat is
    /// an event of its own. Without it the existing memory is returned with
    /// `duplicate: true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_duplicate: bool,
    /// When it was said or learned, for back-filled history (default: now;
    /// not in the future). Searches filter, weight and date it by this.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub created_at: Option<OffsetDateTime>,
    /// When the fact starts to hold, where known.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub valid_from: Option<OffsetDateTime>,
    /// When the fact stops holding, where known (it is still returned: this
    /// records validity, `expires_at` removes).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub valid_until: Option<OffsetDateTime>,
}

/// Replaces a memory by a new one, keeping the old (`POST
/// /v1/memories/{id}/supersede`): the successor takes the old memory's
/// namespace, user, session and visibility; the old one gets `valid_until`
/// and `superseded_by` and is left out of searches from then on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Alice moved to Lisbon", "reason": "she said so on 2026-11-30"}))]
pub struct Supersede {
    /// The successor's text.
    pub text: String,
    /// Why (kept in the old memory's history).
    #[serde(default)]
    pub reason: Option<String>,
    /// The successor's tags (default: the old memory's).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// The successor's metadata (default: the old memory's).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// The successor's kind (default: the old memory's).
    #[serde(default)]
    pub kind: Option<Kind>,
    /// When the new fact starts to hold; the old one's `valid_until` (default: now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub valid_from: Option<OffsetDateTime>,
    /// The old memory's version you read (409 if it changed since).
    #[serde(default)]
    pub version: Option<u64>,
}

/// The outcome of a supersede.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Superseded {
    /// The old memory, now superseded.
    pub previous: Memory,
    /// The memory that replaces it.
    pub successor: Memory,
}

/// A live memory in the same scope whose vector is within the namespace's
/// near-duplicate threshold of a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct NearDuplicate {
    /// The similar memory.
    pub id: Uuid,
    /// Cosine similarity of the two vectors.
    pub similarity: f32,
    /// Whether the new memory was stored (`allow_near_duplicate`, or to be merged).
    pub stored: bool,
    /// The job that merges the two with the namespace's `merge_model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_job: Option<Uuid>,
}

/// The outcome of creating one memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Created {
    /// The memory (the existing one for a duplicate or a replay).
    pub memory: Memory,
    /// True when identical text already existed in the same scope and was returned instead.
    pub duplicate: bool,
    /// True when the idempotency key had been used and its memory was returned.
    pub replayed: bool,
    /// Set when a similar memory exists in the same scope (the namespace's
    /// policy has a near-duplicate threshold): unless the create allowed
    /// near-duplicates, nothing was stored and `memory` is the similar one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near_duplicate: Option<NearDuplicate>,
}

/// How a namespace's memory maintains itself (`GET`/`PUT
/// /v1/namespaces/{namespace}/policy`; the server's `[policy]` section is the
/// default of every namespace without one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MemoryPolicy {
    /// Cosine similarity in (0, 1] at or above which a new memory counts as
    /// a near-duplicate of a live one in its scope (same namespace, user and
    /// visibility); absent: only identical text is a duplicate.
    #[serde(default)]
    pub near_duplicate_threshold: Option<f32>,
    /// Long-term memories extracted from sessions by a chat model (off when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction: Option<ExtractionPolicy>,
    /// With `near_duplicate_threshold`: a near-duplicate is stored and merged
    /// into the similar memory by this chat model (a `[models]` name) in a
    /// background job, instead of refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_model: Option<String>,
    /// Session summaries: old messages folded into `context` by a chat model
    /// instead of trimmed (off when absent: the window trims).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryPolicy>,
    /// The model budget of the namespace's jobs (no limit when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// When a session's oldest messages are folded into its summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SummaryPolicy {
    /// The chat model, by its name in the server's `[models]`.
    pub model: String,
    /// Fold once the session holds more than this many messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<u32>,
    /// Or once its messages hold more than this many tokens (estimated as
    /// characters / 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Messages kept unfolded after a fold (default: half of `max_messages`, else 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_messages: Option<u32>,
}

impl SummaryPolicy {
    /// Messages a fold leaves in the session.
    pub fn keep(&self) -> u32 {
        self.keep_messages
            .or(self.max_messages.map(|m| m / 2))
            .unwrap_or(10)
            .max(1)
    }
}

/// What an extraction looks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Nothing is extracted.
    #[default]
    Off,
    /// Discrete facts about the people and the world.
    Facts,
    /// One summary memory of what the messages said.
    Summary,
    /// What the people like, dislike, want and avoid.
    Preferences,
    /// The policy's own `prompt`.
    Custom,
}

/// When and how a namespace's sessions are mined for long-term memories.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ExtractionPolicy {
    /// What to extract.
    #[serde(default)]
    pub strategy: Strategy,
    /// The instructions for `custom` (what to look for); the output format is
    /// always the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The chat model, by its name in the server's `[models]`.
    #[serde(default)]
    pub model: String,
    /// Queue an extraction once a session has this many messages not yet
    /// extracted (absent: only on demand and on promote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_messages: Option<u32>,
    /// Queue an extraction once a session with messages not yet extracted
    /// has had no append for this many seconds (1 to 86,400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_seconds: Option<u64>,
    /// Queue an extraction when messages are promoted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_promote: bool,
}

/// The longest `idle_seconds`.
pub const MAX_IDLE_SECONDS: u64 = 86_400;

/// A namespace's model budget, shared by its extraction and summary jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Most model calls per clock hour (jobs wait beyond it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_hour: Option<u32>,
    /// Most model tokens (input and output) per clock hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_hour: Option<u64>,
}

impl MemoryPolicy {
    /// The first setting out of range, as `(field, what to fix)`.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if let Some(p) = self.budget_problem() {
            return Some(p);
        }
        if let Some(t) = self.near_duplicate_threshold
            && !(t.is_finite() && t > 0.0 && t <= 1.0)
        {
            return Some((
                "near_duplicate_threshold",
                format!(
                    "near_duplicate_threshold is a cosine similarity in (0, 1] (e.g. 0.95), \
                     got {t}; leave it out to catch identical text only"
                ),
            ));
        }
        if let Some(s) = &self.summary {
            if s.model.trim().is_empty() {
                return Some((
                    "summary.model",
                    "summaries need a model: name one of the server's [models]".into(),
                ));
            }
            if s.max_messages.is_none() && s.max_tokens.is_none() {
                return Some((
                    "summary.max_messages",
                    "give max_messages or max_tokens: when a session is folded".into(),
                ));
            }
            if s.max_messages == Some(0) || s.max_tokens == Some(0) || s.keep_messages == Some(0) {
                return Some((
                    "summary.max_messages",
                    "max_messages, max_tokens and keep_messages must be at least 1".into(),
                ));
            }
            if let Some(m) = s.max_messages
                && s.keep() >= m
            {
                return Some((
                    "summary.keep_messages",
                    format!("keep_messages must be below max_messages ({m})"),
                ));
            }
        }
        let e = self.extraction.as_ref()?;
        if e.strategy == Strategy::Off {
            return None;
        }
        if e.model.trim().is_empty() {
            return Some((
                "extraction.model",
                "extraction needs a model: name one of the server's [models]".into(),
            ));
        }
        match (&e.prompt, e.strategy) {
            (None, Strategy::Custom) => Some((
                "extraction.prompt",
                "strategy `custom` needs a prompt saying what to extract".into(),
            )),
            (Some(p), _) if p.trim().is_empty() || p.chars().count() > MAX_PROMPT_CHARS => Some((
                "extraction.prompt",
                format!("the prompt must be 1 to {MAX_PROMPT_CHARS} characters"),
            )),
            (Some(_), s) if s != Strategy::Custom => Some((
                "extraction.prompt",
                "a prompt is only for strategy `custom`".into(),
            )),
            _ if e.after_messages == Some(0) => Some((
                "extraction.after_messages",
                "after_messages must be at least 1 (leave it out for on-demand only)".into(),
            )),
            _ if e
                .idle_seconds
                .is_some_and(|t| t == 0 || t > MAX_IDLE_SECONDS) =>
            {
                Some((
                    "extraction.idle_seconds",
                    format!("idle_seconds must be between 1 and {MAX_IDLE_SECONDS}"),
                ))
            }
            _ => None,
        }
    }

    /// The first budget setting out of range.
    fn budget_problem(&self) -> Option<(&'static str, String)> {
        let b = self.budget.as_ref()?;
        (b.calls_per_hour == Some(0) || b.tokens_per_hour == Some(0)).then(|| {
            (
                "budget.calls_per_hour",
                "a budget of 0 would stop every job; leave the budget out, or turn extraction \
                 and summaries off"
                    .into(),
            )
        })
    }

    /// The extraction in force, if any (a strategy other than `off`).
    pub fn extracting(&self) -> Option<&ExtractionPolicy> {
        self.extraction
            .as_ref()
            .filter(|e| e.strategy != Strategy::Off)
    }
}

/// Longest custom extraction prompt, in characters.
pub const MAX_PROMPT_CHARS: usize = 4_000;

/// A background job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker (or for its retry time, or the namespace's budget).
    Queued,
    /// A worker holds it under a lease.
    Running,
    /// Finished; its decisions are applied.
    Done,
    /// Gave up after its attempts (the dead-letter list); `error` says why.
    Failed,
}

impl JobState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
}

/// What an extraction decided about one candidate memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Stored as a new memory.
    Add,
    /// An existing memory was rewritten (its old state is in its history).
    Update,
    /// An existing memory was kept, marked superseded by a new one.
    Supersede,
    /// Not stored (already known, not worth keeping, or an invalid proposal).
    Ignore,
}

/// One decision of an extraction job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Decision {
    /// What was done.
    pub action: Action,
    /// The candidate's text (for `update`, the new text).
    pub text: String,
    /// The memory written (added, updated, or the successor of a supersede).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_id: Option<Uuid>,
    /// The existing memory updated or superseded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<Uuid>,
    /// The model's reason (or why its proposal was rejected).
    pub reason: String,
}

/// Model use of a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct JobUsage {
    /// Model calls made (every attempt counts).
    pub calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// US dollars at the model's configured prices.
    pub cost_usd: f64,
}

/// A background job (`GET /v1/jobs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Job {
    /// Its id (stable for a session and its first message: queuing twice is one job).
    pub id: Uuid,
    /// The namespace.
    pub namespace: String,
    /// `extract`, `summarize` or `merge`.
    pub kind: String,
    /// The session read (extraction and summary jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The memories merged (a merge job: the kept one, then the new one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory_ids: Vec<Uuid>,
    /// What queued it: `messages`, `promote`, `demand` or `near_duplicate`.
    pub trigger: String,
    /// Its state.
    pub state: JobState,
    /// First message (absolute index in the session) it covers.
    pub from_message: u64,
    /// One past the last message it covered (set when the model was asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_message: Option<u64>,
    /// Messages trimmed from the session's window before the job read them.
    #[serde(default)]
    pub missed_messages: u64,
    /// A summary job: the messages it folded into the session's `context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folded_messages: Option<u64>,
    /// Runs started (a crash or an error counts one).
    pub attempts: u32,
    /// The last error, or why it waits (its budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Not run before this instant (backoff, budget).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub not_before: OffsetDateTime,
    /// The decisions, once made.
    #[serde(default)]
    pub decisions: Vec<Decision>,
    /// Model use.
    pub usage: JobUsage,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub created_at: OffsetDateTime,
    /// When its last run started (a worker claimed it).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub started_at: Option<OffsetDateTime>,
    /// Its last change.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub updated_at: OffsetDateTime,
}

/// Jobs of a namespace, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct JobList {
    /// The jobs.
    pub jobs: Vec<Job>,
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ListJobs {
    /// The namespace.
    pub namespace: String,
    /// Only jobs in this state.
    #[serde(default)]
    pub state: Option<JobState>,
    /// Only jobs of this session.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Most jobs returned (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `POST /v1/sessions/{id}/extract`: queue an extraction of the session's
/// messages not yet extracted (or retry its dead-lettered one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"namespace": "team-a"}))]
pub struct ExtractRequest {
    /// The session's namespace.
    pub namespace: String,
}

/// Where a namespace's policy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    /// The server's `[policy]` configuration (nothing stored for the namespace).
    Config,
    /// Set through the API for this namespace.
    Stored,
}

/// A namespace's policy in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct NamespacePolicy {
    /// The namespace.
    pub namespace: String,
    /// The policy.
    pub policy: MemoryPolicy,
    /// Where it comes from.
    pub source: PolicySource,
}

/// A namespace's search settings in force (`GET /v1/namespaces/{ns}/settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct NamespaceSettings {
    /// The namespace.
    pub namespace: String,
    /// Default mode of a text search.
    pub mode: SearchMode,
    /// Default hybrid fusion.
    pub fusion: Fusion,
    /// Default weighted-fusion alpha.
    pub alpha: f32,
    /// Default RRF constant.
    pub rrf_k: u32,
    /// The contextual-text template as configured (a name such as `chat`, or written out).
    pub template: String,
    /// The template written out in placeholders.
    pub template_expanded: String,
    /// Keyword analysis: language, stemming, stop words.
    pub language: String,
    /// Whether words are stemmed.
    pub stemming: bool,
    /// Whether stop words are dropped.
    pub stop_words: bool,
    /// BM25 term-frequency saturation.
    pub bm25_k1: f32,
    /// BM25 length normalisation.
    pub bm25_b: f32,
    /// Where they come from: `api` (set with `PUT`, over the configuration),
    /// `default` (`[search]`), `namespace` (`[search.namespaces.<name>]`) or
    /// `pattern` (`[search.namespaces."<prefix>*"]`).
    pub source: String,
    /// The configuration key that matched, for `namespace` and `pattern`
    /// (and for `api`, when the configuration had one under what was set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// What was set for the namespace through the API, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<SettingsChange>,
    /// The namespace's latest re-index after a template change, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reindex: Option<ReindexProgress>,
    /// The templates that can be given by name, and what they stand for.
    pub named_templates: BTreeMap<String, String>,
}

/// `PUT /v1/namespaces/{ns}/settings` (`admin`): the namespace's own search
/// settings. A field left out keeps what the configuration gives the
/// namespace; a new `PUT` replaces the whole set. A new template re-indexes
/// the namespace's memories in the background; a new analysis re-analyzes
/// its keyword index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct SettingsChange {
    /// Default mode of a text search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<SearchMode>,
    /// Default hybrid fusion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusion: Option<Fusion>,
    /// Default weighted-fusion alpha, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f32>,
    /// Default RRF constant, at least 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rrf_k: Option<u32>,
    /// The contextual-text template: a name (`chat`, `turns`, `plain`) or placeholders with `{text}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Keyword-analysis language (`english`, `french`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Whether words are stemmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stemming: Option<bool>,
    /// Whether stop words are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_words: Option<bool>,
    /// BM25 term-frequency saturation, 0 to 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25_k1: Option<f32>,
    /// BM25 length normalisation, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25_b: Option<f32>,
}

/// Where a namespace's re-index stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReindexState {
    /// Rewriting memories.
    Running,
    /// Every memory has the new contextual text (and vector).
    Done,
    /// Stopped on an error (`error` says which); the next start re-indexes.
    Failed,
    /// A later settings change took over.
    Superseded,
}

/// The progress of re-indexing a namespace after its template changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ReindexProgress {
    /// Where it stands.
    pub state: ReindexState,
    /// The template it applies.
    pub template: String,
    /// Memories in the namespace when it started.
    pub total: u64,
    /// Memories looked at so far.
    pub done: u64,
    /// Memories rewritten (their text differed from the template's).
    pub rewritten: u64,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub started_at: OffsetDateTime,
    /// When it last reported.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub updated_at: OffsetDateTime,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A batch create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMemories {
    /// The memories, created in order.
    pub memories: Vec<NewMemory>,
}

/// The outcome of a batch create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct CreatedBatch {
    /// One entry per input, in order.
    pub memories: Vec<Created>,
}

/// Changes to a memory; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Alice now prefers oolong tea", "tags": ["prefs", "drinks"]}))]
pub struct MemoryPatch {
    /// New text (re-embedded).
    #[serde(default)]
    pub text: Option<String>,
    /// New tags (replace the old ones).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// New metadata (replaces the old object).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// New kind.
    #[serde(default)]
    pub kind: Option<Kind>,
    /// New visibility.
    #[serde(default)]
    pub visibility: Option<Visibility>,
    /// New expiry; `null` keeps it, use `clear_expiry` to remove it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub expires_at: Option<OffsetDateTime>,
    /// Removes the expiry.
    #[serde(default)]
    pub clear_expiry: bool,
    /// The version the change is based on (same as the `If-Match` header).
    #[serde(default)]
    pub version: Option<u64>,
}

impl MemoryPatch {
    /// Whether applying it would change nothing (no field given).
    pub fn changes_nothing(&self) -> bool {
        self.text.is_none()
            && self.tags.is_none()
            && self.metadata.is_none()
            && self.kind.is_none()
            && self.visibility.is_none()
            && self.expires_at.is_none()
            && !self.clear_expiry
    }
}

/// Filters shared by list, search and bulk delete; all given conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MemoryFilter {
    /// Author agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// User.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Session.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Kind.
    #[serde(default)]
    pub kind: Option<Kind>,
    /// At least one of these tags.
    #[serde(default)]
    pub tags_any: Vec<String>,
    /// Every one of these tags.
    #[serde(default)]
    pub tags_all: Vec<String>,
    /// Created at or after.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub created_after: Option<OffsetDateTime>,
    /// Created before.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub created_before: Option<OffsetDateTime>,
    /// Updated at or after.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub updated_after: Option<OffsetDateTime>,
    /// Updated before.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub updated_before: Option<OffsetDateTime>,
    /// Top-level metadata keys equal to these scalar values.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// Which retrievers a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Nearest neighbours of the query's embedding.
    Vector,
    /// BM25 over the memories' (contextual) text.
    Keyword,
    /// Both, each gathering its own candidates, fused into one ranking.
    #[default]
    Hybrid,
}

/// How a hybrid search merges the two rankings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: `sum 1 / (rrf_k + rank)`, scaled to `[0, 1]`.
    Rrf,
    /// `alpha * similarity + (1 - alpha) * keyword / best keyword score`.
    #[default]
    Weighted,
    /// Distribution-based score fusion: each side's scores are scaled to
    /// `[0, 1]` between its candidates' mean minus and plus three standard
    /// deviations, then weighted by `alpha`: a memory counts by where it
    /// stands within each side's spread, whatever the side's scale.
    Dbsf,
}

/// Neighbouring turns of each hit's conversation, returned with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ContextWindow {
    /// Turns said just before the hit (at most 10).
    #[serde(default)]
    pub before: u32,
    /// Turns said just after the hit (at most 10).
    #[serde(default)]
    pub after: u32,
}

/// What a search does with a time named in its query ("in May 2023",
/// "last week"), read as an interval of `created_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum QueryTime {
    /// Ignore it.
    Off,
    /// Favour memories created in the interval (they rise; others stay).
    #[default]
    Boost,
    /// Only memories created in the interval.
    Filter,
}

/// The interval a search read from its query, and what it did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct TimeRange {
    /// Start, inclusive.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub from: OffsetDateTime,
    /// End, exclusive.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub to: OffsetDateTime,
    /// The words it was read from (lowercased), e.g. `may 2023`.
    pub phrase: String,
    /// `boost` or `filter`.
    pub applied: QueryTime,
}

/// BM25's parameters for one search's keyword side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Bm25Params {
    /// Term-frequency saturation, 0 to 3 (the namespace's, by default 1.2).
    pub k1: f32,
    /// Length normalisation, 0 to 1 (the namespace's, by default 0.75).
    pub b: f32,
}

/// Pseudo-relevance feedback: the first pass's best results widen the query
/// for a second pass.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    /// How many of the first pass's results to learn from (1 to 10, default 3).
    #[serde(default = "default_feedback_docs")]
    pub docs: u32,
    /// Words they share that are added to the keyword query (0 to 20, default 5).
    #[serde(default = "default_feedback_terms")]
    pub terms: u32,
    /// How far the query vector moves towards theirs, in `[0, 1]` (default 0.3).
    #[serde(default = "default_feedback_weight")]
    pub weight: f32,
}

fn default_feedback_docs() -> u32 {
    3
}
fn default_feedback_terms() -> u32 {
    5
}
fn default_feedback_weight() -> f32 {
    0.3
}

/// What pseudo-relevance feedback used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct FeedbackUsed {
    /// The first pass's results it learned from.
    pub from: Vec<Uuid>,
    /// The words added to the keyword query.
    pub terms: Vec<String>,
}

/// Marks a result that is not a hit but a turn next to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Neighbor {
    /// The hit whose conversation it belongs to.
    pub of: Uuid,
    /// Its place relative to that hit: -1 the turn before, 1 the turn after.
    pub offset: i32,
}

/// Maximal marginal relevance: trades relevance for diversity among results.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Mmr {
    /// Weight of relevance against novelty, in `[0, 1]` (1 = plain ranking; default 0.5).
    #[serde(default = "default_mmr_lambda")]
    pub lambda: f32,
}

fn default_mmr_lambda() -> f32 {
    0.5
}

/// Recency weighting: `score = (1 - weight) * relevance + weight * 0.5^(age / half_life)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Recency {
    /// Age at which the recency factor halves, in hours.
    pub half_life_hours: f64,
    /// Share of the score given to recency, in `[0, 1]` (default 0.3).
    #[serde(default = "default_recency_weight")]
    pub weight: f64,
}

fn default_recency_weight() -> f64 {
    0.3
}

/// A search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"namespace": "team-a", "query": "what does Alice drink?", "top_k": 5}))]
pub struct SearchRequest {
    /// Namespace to search.
    pub namespace: String,
    /// Text to search for (any text; it is data, never syntax).
    #[serde(default)]
    pub query: Option<String>,
    /// Or a vector of the namespace's dimension.
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
    /// Conditions on the memories.
    #[serde(default)]
    pub filter: MemoryFilter,
    /// How many results (default 10).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub top_k: Option<usize>,
    /// Drop results scoring below this.
    #[serde(default)]
    pub min_score: Option<f32>,
    /// Optional recency weighting.
    #[serde(default)]
    pub recency: Option<Recency>,
    /// The agent the caller acts as (for its private memories; a bound key overrides it).
    #[serde(default)]
    pub as_agent: Option<String>,
    /// `vector`, `keyword` or `hybrid`; the namespace's default (normally
    /// `hybrid`) when `query` is given, `vector` for a `vector` alone.
    #[serde(default)]
    pub mode: Option<SearchMode>,
    /// Hybrid: `rrf` or `weighted`; the namespace's default when absent.
    #[serde(default)]
    pub fusion: Option<Fusion>,
    /// Hybrid with `weighted` fusion: the vector side's share, in `[0, 1]`.
    #[serde(default)]
    pub alpha: Option<f32>,
    /// Hybrid with `rrf` fusion: the rank constant (default 60).
    #[serde(default)]
    pub rrf_k: Option<u32>,
    /// Optional diversification of the results.
    #[serde(default)]
    pub mmr: Option<Mmr>,
    /// Also return each hit's neighbouring turns: memories of the same
    /// session (and user), ordered by `metadata.turn` where given, else by
    /// `created_at`. Each follows its hit, marked with `neighbor`; a memory
    /// appears once, and neighbours do not count against `top_k`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<ContextWindow>,
    /// At most this many hits from one session (conversation), so a search
    /// over many conversations is not filled by one; memories without a
    /// session are not limited. To search one conversation, use
    /// `filter.session_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_per_session: Option<u32>,
    /// A time named in `query` ("on 8 May 2023", "in 2023", "last week",
    /// "three days ago"): `boost` (default) favours memories created then,
    /// `filter` keeps only those, `off` ignores it. The response's
    /// `time_range` says what was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_time: Option<QueryTime>,
    /// Search twice: the first pass's best results widen the query (new
    /// shared words on the keyword side, the query vector moved towards
    /// theirs), and the second pass's results are returned. The response's
    /// `feedback` names what was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
    /// Entity-aware scoring, 0 to 1 (0: off): names `query` mentions
    /// ("Caroline", "Kyoto") lift the memories whose indexed text mentions
    /// them, by this share of the score. The response's `entities` lists
    /// the names read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_weight: Option<f32>,
    /// BM25 parameters for this search's keyword side (default: the namespace's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bm25: Option<Bm25Params>,
    /// The "now" that relative times in `query` count back from (default:
    /// the server's clock), e.g. the date of the conversation being asked about.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub reference_time: Option<OffsetDateTime>,
    /// Also return superseded memories (marked by `superseded_by`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_superseded: bool,
    /// What was believed at this instant: memories created by then and not
    /// yet superseded then (in their current text; history has older ones).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub as_of: Option<OffsetDateTime>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SearchHit {
    /// The memory.
    pub memory: Memory,
    /// The final score (what results are ordered by): the relevance
    /// (similarity, keyword score over the best one, or fused score),
    /// weighted by recency when asked.
    pub score: f32,
    /// Cosine similarity to the query, when the vector side found it.
    pub similarity: Option<f32>,
    /// BM25 score, when the keyword side found it.
    pub keyword_score: Option<f32>,
    /// Hybrid: the fused score in `[0, 1]`, before recency.
    pub fused_score: Option<f32>,
    /// Rank (from 1) among the vector side's candidates.
    pub vector_rank: Option<u32>,
    /// Rank (from 1) among the keyword side's candidates.
    pub keyword_rank: Option<u32>,
    /// Recency factor in `[0, 1]` when recency weighting was asked for.
    pub recency: Option<f32>,
    /// Set on a neighbouring turn returned for `context_window`: which hit
    /// it is next to (its score is that hit's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbor: Option<Neighbor>,
}

/// Search results and how they were found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SearchResponse {
    /// Best first.
    pub results: Vec<SearchHit>,
    /// The mode that ran: `vector`, `keyword` or `hybrid`.
    pub mode: SearchMode,
    /// The vector side's plan: `exact` (scan of the filtered set) or
    /// `graph` / `filtered_graph`; `bm25` for a keyword search.
    pub plan: String,
    /// Memories the filter allowed.
    pub candidates: u64,
    /// Server time spent, in milliseconds.
    pub took_ms: f64,
    /// The time the query named, when one was read and used (`query_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// The names entity-aware scoring read in the query, when it was on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
    /// What pseudo-relevance feedback used, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackUsed>,
}

/// A namespace the caller can read, and how many of its memories it sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct NamespaceSummary {
    /// The namespace.
    pub namespace: String,
    /// Memories the caller can see there (shared ones and its own private ones).
    pub memories: u64,
}

/// The namespaces the caller's key can read that hold memories it can see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct NamespaceList {
    /// By name.
    pub namespaces: Vec<NamespaceSummary>,
}

/// `GET /v1/memories`: filters and paging, as query parameters (the REST
/// route and the client share it; MCP's `memory_list` takes the same
/// conditions as a nested [`MemoryFilter`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListMemories {
    /// Namespace (required).
    #[serde(default)]
    pub namespace: String,
    /// Author agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// Comma-separated tags, any of which must be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_any: Option<String>,
    /// Comma-separated tags, all of which must be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_all: Option<String>,
    /// Page size (default [`DEFAULT_LIST_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// The previous page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The agent the caller acts as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_agent: Option<String>,
}

impl ListMemories {
    /// The conditions as a [`MemoryFilter`] (comma-separated tags split, blanks dropped).
    pub fn filter(&self) -> MemoryFilter {
        let split = |s: &Option<String>| -> Vec<String> {
            s.as_deref()
                .map(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        MemoryFilter {
            agent_id: self.agent_id.clone(),
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            kind: self.kind,
            tags_any: split(&self.tags_any),
            tags_all: split(&self.tags_all),
            ..MemoryFilter::default()
        }
    }
}

/// Memories per page of a listing when the request gives no `limit`
/// (REST, MCP and the client alike).
pub const DEFAULT_LIST_LIMIT: usize = 50;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct MemoryPage {
    /// Newest first.
    pub memories: Vec<Memory>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A prior (or the current) state of a memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Revision {
    /// The version this state had.
    pub version: u64,
    /// Its text.
    pub text: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its metadata.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Its kind.
    pub kind: Kind,
    /// Who could see this state. History shows a caller only the states it
    /// could see then; a state stored before this was recorded counts as private.
    #[serde(default = "Visibility::unrecorded")]
    pub visibility: Visibility,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub updated_at: OffsetDateTime,
    /// Why it was written, where recorded (a supersede, an extraction job's decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Visibility {
    /// The visibility assumed where none was recorded: private, so an old
    /// draft never reaches a reader it was not written for.
    pub fn unrecorded() -> Self {
        Self::Private
    }
}

/// A memory's history, newest first (the first entry is the current state;
/// states the caller could not see when they were current are left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct History {
    /// The memory.
    pub id: Uuid,
    /// States, newest first.
    pub revisions: Vec<Revision>,
}

/// A bulk delete by filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"namespace": "team-a", "filter": {"tags_any": ["obsolete"]}, "dry_run": true}))]
pub struct BulkDelete {
    /// Namespace.
    pub namespace: String,
    /// Which memories (at least one condition is required).
    #[serde(default)]
    pub filter: MemoryFilter,
    /// Count only; delete nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The agent the caller acts as.
    #[serde(default)]
    pub as_agent: Option<String>,
}

/// What a bulk delete did (or would do).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct BulkDeleted {
    /// Memories matched.
    pub matched: u64,
    /// Memories deleted (0 on a dry run).
    pub deleted: u64,
    /// Whether it was a dry run.
    pub dry_run: bool,
}

/// One line of an export, and of an import (NDJSON).
///
/// An export line is a whole memory. On import, `id`, `created_at` and
/// `updated_at` are kept when given (so an export imports back as it was), an
/// existing memory with the same id is replaced, and the text is embedded again
/// unless `vector` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PortableMemory {
    /// Kept on import; a new one is assigned when absent.
    #[serde(default)]
    pub id: Option<Uuid>,
    /// Namespace.
    pub namespace: String,
    /// Author agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// User.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Session.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Kind.
    #[serde(default)]
    pub kind: Kind,
    /// The content.
    pub text: String,
    /// Labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form JSON object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Visibility.
    #[serde(default)]
    pub visibility: Visibility,
    /// Creation time (now when absent).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub created_at: Option<OffsetDateTime>,
    /// Last change (the creation time when absent).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub updated_at: Option<OffsetDateTime>,
    /// Expiry.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub expires_at: Option<OffsetDateTime>,
    /// Version at export time (informational; import assigns new versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Content hash at export time (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// Model at export time (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// The vector, when exported with `include_vectors=true` or supplied on import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// When the fact starts to hold.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub valid_from: Option<OffsetDateTime>,
    /// When it stops holding.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub valid_until: Option<OffsetDateTime>,
    /// The memory that replaced it (kept superseded on import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<Uuid>,
}

impl From<Memory> for PortableMemory {
    fn from(m: Memory) -> Self {
        Self {
            id: Some(m.id),
            namespace: m.namespace,
            agent_id: m.agent_id,
            user_id: m.user_id,
            session_id: m.session_id,
            kind: m.kind,
            text: m.text,
            tags: m.tags,
            metadata: m.metadata,
            visibility: m.visibility,
            created_at: Some(m.created_at),
            updated_at: Some(m.updated_at),
            expires_at: m.expires_at,
            version: Some(m.version),
            content_hash: Some(m.content_hash),
            embedding_model: Some(m.embedding_model),
            vector: None,
            valid_from: m.valid_from,
            valid_until: m.valid_until,
            superseded_by: m.superseded_by,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Imported {
    /// Memories written (new or replaced).
    pub imported: u64,
}

/// The last line of a complete export: an export without it was cut short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"export_complete": {"memories": 2, "skipped_unreadable": 0}}))]
pub struct ExportTrailer {
    /// What the export held.
    pub export_complete: ExportSummary,
}

/// What a complete export held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ExportSummary {
    /// Memory lines before this one.
    pub memories: u64,
    /// Stored records left out because they could not be decoded (logged
    /// and counted by the server as `memory_unreadable_records`).
    pub skipped_unreadable: u64,
}

/// One message of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Message {
    /// `user`, `assistant`, `system`, `tool`, or your own label.
    pub role: String,
    /// The text.
    pub content: String,
    /// The agent that wrote it, if any.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// When it was appended.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub created_at: OffsetDateTime,
}

/// A message to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// `user`, `assistant`, `system`, `tool`, or your own label.
    pub role: String,
    /// The text.
    pub content: String,
    /// The agent that wrote it (a bound key overrides it).
    #[serde(default)]
    pub agent_id: Option<String>,
}

/// A session (working memory): recent messages, a context summary and free data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Session {
    /// The session's id (unique within the namespace).
    pub session_id: String,
    /// Namespace.
    pub namespace: String,
    /// The user it belongs to.
    pub user_id: Option<String>,
    /// The window of most recent messages, oldest first.
    pub messages: Vec<Message>,
    /// Summary text kept by the caller.
    pub context: Option<String>,
    /// Free-form JSON.
    pub data: Value,
    /// Messages trimmed off the front by the window so far.
    pub trimmed: u64,
    /// Of those, the messages folded into `context` by summaries.
    #[serde(default)]
    pub summarized: u64,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub updated_at: OffsetDateTime,
    /// When the session expires (its TTL).
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<String>"))]
    pub expires_at: Option<OffsetDateTime>,
    /// Changes on every write.
    pub version: u64,
}

/// `PUT /v1/sessions/{id}`: replaces the session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"namespace": "team-a", "user_id": "alice", "messages": [{"role": "user", "content": "Book a table for two"}], "context": "Alice is planning dinner"}))]
pub struct PutSession {
    /// Namespace.
    pub namespace: String,
    /// User.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Messages (the window keeps the most recent).
    #[serde(default)]
    pub messages: Vec<NewMessage>,
    /// Summary text.
    #[serde(default)]
    pub context: Option<String>,
    /// Free-form JSON.
    #[serde(default)]
    pub data: Value,
    /// Seconds until the session expires (none when absent).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// `POST /v1/sessions/{id}/messages`: appends atomically, creating the session if needed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"namespace": "team-a", "messages": [{"role": "assistant", "content": "Booked for 19:30"}]}))]
pub struct AppendMessages {
    /// Namespace.
    pub namespace: String,
    /// User (set when the session is created).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The messages, in order.
    pub messages: Vec<NewMessage>,
    /// Window for this session (default `sessions.window`).
    #[serde(default)]
    pub window: Option<usize>,
    /// Resets the TTL to this many seconds.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Appended {
    /// The session after the append.
    pub session: Session,
    /// Messages this append trimmed off the front.
    pub trimmed_now: u64,
}

/// A session without its messages, for listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SessionSummary {
    /// The session's id.
    pub session_id: String,
    /// Namespace.
    pub namespace: String,
    /// User.
    pub user_id: Option<String>,
    /// Messages in the window.
    pub messages: usize,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub updated_at: OffsetDateTime,
}

/// A page of sessions, most recently updated first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SessionPage {
    /// Sessions.
    pub sessions: Vec<SessionSummary>,
}

/// `POST /v1/sessions/{id}/promote`: turns messages into long-term memories.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"namespace": "team-a", "tags": ["from-chat"]}))]
pub struct Promote {
    /// Namespace.
    pub namespace: String,
    /// Window indexes of the messages (all when absent).
    #[serde(default)]
    pub indexes: Option<Vec<usize>>,
    /// Kind of the new memories (default `message`).
    #[serde(default)]
    pub kind: Option<Kind>,
    /// Tags of the new memories.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A request for a ready-to-use context block (`memory_context`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ContextRequest {
    /// Namespace to recall from.
    pub namespace: String,
    /// The task or question the context is for (any text).
    pub query: String,
    /// Session whose recent messages lead the block.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Only memories about this user.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Character budget of the block (default 4000).
    #[serde(default)]
    pub max_chars: Option<usize>,
    /// Long-term memories to consider (default 10).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Recent session messages to consider (default 10).
    #[serde(default)]
    pub recent_messages: Option<usize>,
    /// The agent the caller acts as (for its private memories; a bound key overrides it).
    #[serde(default)]
    pub as_agent: Option<String>,
}

/// A memory quoted in a context block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ContextMemory {
    /// The memory's id.
    pub id: Uuid,
    /// Its search score.
    pub score: f32,
    /// Its text.
    pub text: String,
}

/// A context block: recent messages, then the most relevant memories, within the budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ContextBlock {
    /// The text to put in front of a model.
    pub context: String,
    /// Session messages included, oldest first.
    pub messages: Vec<Message>,
    /// Memories included, best first.
    pub memories: Vec<ContextMemory>,
    /// True when something relevant was left out to stay within `max_chars`.
    pub truncated: bool,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong and what to fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ErrorDetail {
    /// Stable code: `invalid_argument`, `unauthenticated`, `permission_denied`,
    /// `not_found`, `method_not_allowed`, `conflict`, `model_mismatch`,
    /// `precondition_failed`, `payload_too_large`, `embedding_failed`,
    /// `unavailable`, `internal`.
    pub code: String,
    /// What to fix.
    pub message: String,
    /// Context, e.g. the field.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// `POST /v1/memories` takes one memory or a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum CreateBody {
    /// `{"memories": [...]}`.
    Batch(NewMemories),
    /// One memory.
    One(Box<NewMemory>),
}

/// `POST /v1/memories` answers one outcome or a batch of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum CreateResponse {
    /// For a batch.
    Batch(CreatedBatch),
    /// For one memory.
    One(Box<Created>),
}
