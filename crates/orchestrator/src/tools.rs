//! The built-in tools an `llm` agent may be given: memory search, store and
//! context, bound to the run's namespace and user (a model's arguments can
//! never name another tenant or user), and `exit_loop` for loop agents.
//!
//! A tool's failure is a result the model sees (`{"error": ...}`), not a
//! failed run: models recover from a bad argument better than callers do.

use parking_lot::Mutex;
use providers::chat::ToolSpec;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::memory::{MemoryLink, RecallOptions, Scope, render};

/// Names of the built-in tools.
pub const BUILTIN_TOOLS: &[&str] = &[
    "memory_search",
    "memory_store",
    "memory_context",
    "exit_loop",
];

/// The state key `exit_loop` sets.
pub const EXIT_LOOP_KEY: &str = "exit_loop";

/// The declaration of built-in tool `name` for the model.
pub fn spec(name: &str) -> Option<ToolSpec> {
    let (description, parameters) = match name {
        "memory_search" => (
            "Search long-term memory about the current user. Returns memories with ids and scores.",
            json!({"type": "object", "properties": {
                "query": {"type": "string", "description": "What to look for"},
                "top_k": {"type": "integer", "minimum": 1, "maximum": 20}
            }, "required": ["query"], "additionalProperties": false}),
        ),
        "memory_store" => (
            "Remember a fact about the current user for later conversations.",
            json!({"type": "object", "properties": {
                "text": {"type": "string", "description": "The fact, as a full sentence"},
                "tags": {"type": "array", "items": {"type": "string"}}
            }, "required": ["text"], "additionalProperties": false}),
        ),
        "memory_context" => (
            "Get a block of the memories most relevant to a task, within a character budget.",
            json!({"type": "object", "properties": {
                "query": {"type": "string"},
                "max_chars": {"type": "integer", "minimum": 100, "maximum": 8000}
            }, "required": ["query"], "additionalProperties": false}),
        ),
        "exit_loop" => (
            "Stop the loop this agent runs in: the work is done.",
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
        ),
        _ => return None,
    };
    Some(ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
    })
}

/// What a tool call runs with.
pub struct ToolEnv<'a> {
    /// The memory server, when configured.
    pub memory: Option<&'a MemoryLink>,
    /// The run's namespace, user and the calling agent.
    pub scope: Scope<'a>,
    /// The thread (the memory session), if any.
    pub thread: Option<Uuid>,
    /// The run.
    pub run_id: Uuid,
    /// The call's id (with the run id, the idempotency key of a store).
    pub call_id: &'a str,
    /// The run's state (what `exit_loop` sets).
    pub state: &'a Mutex<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    #[serde(default)]
    top_k: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreArgs {
    text: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextArgs {
    query: String,
    #[serde(default)]
    max_chars: Option<usize>,
}

fn args<T: serde::de::DeserializeOwned>(name: &str, raw: &str) -> Result<T, String> {
    let raw = if raw.trim().is_empty() { "{}" } else { raw };
    serde_json::from_str(raw).map_err(|e| format!("bad arguments for {name}: {e}"))
}

/// How the memory tools search: `top_k` results, the namespace's defaults otherwise.
fn tool_policy(top_k: usize) -> RecallOptions {
    RecallOptions {
        top_k,
        ..RecallOptions::default()
    }
}

/// Runs built-in tool `name` with the model's `raw` arguments.
pub async fn call(name: &str, raw: &str, env: &ToolEnv<'_>) -> Result<Value, String> {
    let memory = || {
        env.memory
            .ok_or_else(|| "memory is not configured on this orchestrator".to_owned())
    };
    match name {
        "memory_search" => {
            let a: SearchArgs = args(name, raw)?;
            let found = memory()?
                .recall(
                    &env.scope,
                    &a.query,
                    &tool_policy(a.top_k.unwrap_or(5).min(20)),
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({"memories": found.iter().map(|m| json!({
                "id": m.id, "score": m.score, "text": m.text,
            })).collect::<Vec<_>>()}))
        }
        "memory_store" => {
            let a: StoreArgs = args(name, raw)?;
            if a.text.trim().is_empty() {
                return Err("text must not be empty".into());
            }
            let key = format!("run:{}:{}", env.run_id, env.call_id);
            let id = memory()?
                .store(
                    &env.scope,
                    &a.text,
                    a.tags,
                    env.thread.map(|t| t.to_string()),
                    key,
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({"stored": id}))
        }
        "memory_context" => {
            let a: ContextArgs = args(name, raw)?;
            let found = memory()?
                .recall(&env.scope, &a.query, &tool_policy(10))
                .await
                .map_err(|e| e.to_string())?;
            let (block, used) = render(&found, a.max_chars.unwrap_or(2000).clamp(100, 8000));
            Ok(json!({"context": block, "ids": used.iter().map(|m| m.id).collect::<Vec<_>>()}))
        }
        "exit_loop" => {
            let _: Map<String, Value> = args(name, raw)?;
            env.state
                .lock()
                .insert(EXIT_LOOP_KEY.into(), Value::Bool(true));
            Ok(json!({"ok": true}))
        }
        other => Err(format!("no tool named {other}")),
    }
}
