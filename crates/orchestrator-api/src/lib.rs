//! Wire types of the orchestration API.
//!
//! An application picks an [`Agent`] (declared in `config/agents.toml`),
//! opens a [`Thread`] (a conversation, owned by a namespace and optionally a
//! user) and starts [`Run`]s on it with a [`RunRequest`]. A run's progress
//! is a sequence of [`RunEvent`]s, numbered from 1 (the SSE `id`), kept in the
//! store so any instance can replay them. A run ends `completed`, `failed` or
//! `cancelled`, with its [`RunUsage`] (tokens and cost per model) and the
//! memories it used ([`MemoryUsed`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// What sort of agent it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// A model with instructions and tools, in a loop until it answers.
    Llm,
    /// Chooses one sub-agent for the input.
    Router,
    /// Runs its sub-agents one after another, each seeing the last one's answer.
    Sequential,
    /// Runs its sub-agents at once, then a join agent over their answers.
    Parallel,
    /// Runs its sub-agents in turn until told to stop or out of iterations.
    Loop,
}

/// An agent, as `GET /v1/agents` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    /// Its name (what a run request names).
    pub name: String,
    /// Its kind.
    pub kind: AgentKind,
    /// What it is for.
    pub description: String,
    /// The model it calls (`llm`, and `router` when it has one).
    pub model: Option<String>,
    /// Tools it may call (`llm`).
    pub tools: Vec<String>,
    /// Agents it delegates to (routes, steps, branches), in order.
    pub sub_agents: Vec<String>,
}

/// `GET /v1/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    /// Every agent, by name.
    pub agents: Vec<Agent>,
}

/// `POST /v1/threads`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "alice", "metadata": {"channel": "web"}}))]
pub struct NewThread {
    /// The namespace (tenant) it belongs to; may be left out when the key covers exactly one.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The person it is with: memories are recalled and stored about this user.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Free-form JSON object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Thread {
    /// Its id.
    pub id: Uuid,
    /// Namespace.
    pub namespace: String,
    /// User.
    pub user_id: Option<String>,
    /// Free-form JSON object.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// The run in progress, if any.
    pub active_run: Option<Uuid>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// A page of threads, most recently updated first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ThreadPage {
    /// Threads.
    pub threads: Vec<Thread>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions.
    System,
    /// The person or application.
    User,
    /// An agent.
    Assistant,
}

/// A message of a run's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputMessage {
    /// Who says it.
    pub role: Role,
    /// The text.
    pub content: String,
}

/// A message of a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    /// Its id.
    pub id: Uuid,
    /// Who said it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// The agent that wrote it (assistant messages).
    pub agent: Option<String>,
    /// The run it belongs to.
    pub run_id: Uuid,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// `GET /v1/threads/{id}/messages`: oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageList {
    /// Messages.
    pub messages: Vec<Message>,
}

/// How a streamed run reports the answer's text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamMode {
    /// Every event, text deltas included.
    #[default]
    Events,
    /// Every event but `message.delta` (whole messages only).
    Messages,
}

/// `POST /v1/threads/{id}/runs` and `POST /v1/runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"agent": "assistant", "input": "What tea do I like?"}))]
pub struct RunRequest {
    /// The agent to run.
    pub agent: String,
    /// The user's message.
    #[serde(default)]
    pub input: Option<String>,
    /// Or several messages (instead of `input`).
    #[serde(default)]
    pub messages: Option<Vec<InputMessage>>,
    /// Free-form JSON object kept with the run.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// How long a blocking request waits before answering with the run to
    /// poll (default and most: `runs.max_wait_ms`); streaming requests ignore it.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// What a streamed run sends.
    #[serde(default)]
    pub stream_mode: Option<StreamMode>,
    /// On a busy thread, wait behind the run in progress instead of a 409.
    #[serde(default)]
    pub queue: bool,
    /// Stateless runs (`POST /v1/runs`): the namespace, when the key covers several.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Stateless runs: the user memories are about.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting behind another run of its thread.
    Queued,
    /// Executing.
    Running,
    /// Paused: a tool call waits for a person's decision (`POST .../resume`).
    Interrupted,
    /// Finished with an answer.
    Completed,
    /// Stopped by an error (see `error`).
    Failed,
    /// Cancelled by a caller.
    Cancelled,
}

impl RunStatus {
    /// Whether the run is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Whether the run waits on nothing but a caller: over, or interrupted.
    pub fn is_settled(self) -> bool {
        self.is_terminal() || self == Self::Interrupted
    }
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunError {
    /// Stable code: `model_unavailable`, `model_error`, `tool_error`,
    /// `max_steps`, `timeout`, `memory_unavailable`, `instance_lost`, `internal`.
    pub code: String,
    /// What happened.
    pub message: String,
}

/// Tokens and cost of one model within a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelUsage {
    /// Model calls.
    pub calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// US dollars, from the model's configured prices.
    pub cost_usd: f64,
}

/// Tokens and cost of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunUsage {
    /// Prompt tokens, all models.
    pub input_tokens: u64,
    /// Generated tokens, all models.
    pub output_tokens: u64,
    /// US dollars, all models.
    pub cost_usd: f64,
    /// Per model id.
    pub by_model: BTreeMap<String, ModelUsage>,
    /// Per agent name.
    pub by_agent: BTreeMap<String, ModelUsage>,
}

/// A memory a run put in front of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryUsed {
    /// The memory's id in memory-server.
    pub id: Uuid,
    /// Its search score.
    pub score: f32,
    /// The agent that retrieved it.
    pub agent: String,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// Its id.
    pub id: Uuid,
    /// Its thread (none for a stateless run).
    pub thread_id: Option<Uuid>,
    /// The agent it runs.
    pub agent: String,
    /// Namespace.
    pub namespace: String,
    /// Where it is.
    pub status: RunStatus,
    /// The final answer, once completed.
    pub output: Option<String>,
    /// Why it failed.
    pub error: Option<RunError>,
    /// Tokens and cost so far.
    pub usage: RunUsage,
    /// Memories retrieved for its model calls.
    pub memories_used: Vec<MemoryUsed>,
    /// Free-form JSON object from the request.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// The sequence number of its last event so far.
    pub last_event: u64,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
}

/// The kinds of run events (the SSE `event` field).
pub mod event {
    /// The run began executing.
    pub const RUN_STARTED: &str = "run.started";
    /// An agent began (data: `agent`, `kind`).
    pub const AGENT_STARTED: &str = "agent.started";
    /// An agent ended (data: `agent`, `output`).
    pub const AGENT_FINISHED: &str = "agent.finished";
    /// Memories were retrieved (data: `agent`, `query`, `memories: [{id, score}]`).
    pub const MEMORY_RETRIEVED: &str = "memory.retrieved";
    /// More of an answer's text (data: `agent`, `delta`).
    pub const MESSAGE_DELTA: &str = "message.delta";
    /// A whole answer (data: `agent`, `content`).
    pub const MESSAGE_COMPLETED: &str = "message.completed";
    /// A tool call (data: `agent`, `id`, `tool`, `arguments`).
    pub const TOOL_CALL: &str = "tool.call";
    /// A tool's result (data: `agent`, `id`, `tool`, `ok`, `result`).
    pub const TOOL_RESULT: &str = "tool.result";
    /// A tool call waits for approval; the run is paused (data: `agent`,
    /// `id`, `tool`, `arguments`).
    pub const INTERRUPT: &str = "interrupt";
    /// A router's choice (data: `agent`, `route`, `method`).
    pub const ROUTE_CHOSEN: &str = "route.chosen";
    /// Tokens and cost of one model call (data: `agent`, `model`, tokens, `cost_usd`).
    pub const USAGE: &str = "usage";
    /// The run completed (data: the run).
    pub const RUN_COMPLETED: &str = "run.completed";
    /// The run failed (data: the run).
    pub const RUN_FAILED: &str = "run.failed";
    /// The run was cancelled (data: the run).
    pub const RUN_CANCELLED: &str = "run.cancelled";

    /// Whether `kind` ends a run's events.
    pub fn is_terminal(kind: &str) -> bool {
        matches!(kind, RUN_COMPLETED | RUN_FAILED | RUN_CANCELLED)
    }

    /// Whether a stream of the run's events ends at `kind` (its end, or a
    /// pause; rejoin after resuming).
    pub fn ends_stream(kind: &str) -> bool {
        is_terminal(kind) || kind == INTERRUPT
    }
}

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunEvent {
    /// Position in the run's events, from 1 (the SSE `id`).
    pub seq: u64,
    /// The run.
    pub run_id: Uuid,
    /// What happened (see [`event`]).
    pub event: String,
    /// Details, by event.
    #[schema(value_type = Object)]
    pub data: Value,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// What a person decided about an interrupted run's pending tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResumeDecision {
    /// Run the call as the model asked.
    Approve,
    /// Do not run it; the model is told `reason`.
    Reject,
    /// Run it with `arguments` instead.
    Edit,
}

/// `POST /v1/threads/{id}/runs/{run_id}/resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"decision": "approve"}))]
pub struct ResumeRequest {
    /// The decision.
    pub decision: ResumeDecision,
    /// `edit`: the arguments to run the call with (a JSON object).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<Value>,
    /// `reject`: why (the model sees it).
    #[serde(default)]
    pub reason: Option<String>,
    /// How long to wait for the run to settle, as in a run request.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
}

/// The answer of a blocking run request: the run, and its events when it finished in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunOutcome {
    /// The run (poll `GET .../runs/{id}` while it is not terminal).
    pub run: Run,
    /// The thread's new messages (the run's answer), when it completed.
    pub messages: Vec<Message>,
}

/// `GET /v1/threads/{id}/runs/{run_id}/events`: a run's events so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// In order.
    pub events: Vec<RunEvent>,
}
