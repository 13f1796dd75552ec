//! Executing agents: the `llm` tool loop, `router`, `sequential`,
//! `parallel` and `loop`, over one run's context ([`RunCtx`]).
//!
//! The engine knows nothing of HTTP, threads or leases ([`crate::runs`] does):
//! it takes a conversation, runs an agent over it, emits events and counts
//! tokens and cost. Cancellation is dropping the future: the model call and
//! tool call in flight are dropped with it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use orchestrator_api::{AgentKind, MemoryUsed, ModelUsage, RunUsage, event};
use parking_lot::Mutex;
use providers::ProviderError;
use providers::chat::{Assembler, ChatEvent, ChatMessage, ChatRequest, ChatRole, ToolCall};
use providers::embed::{Embedder, Purpose};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::agents::{Agent, Agents, MemoryPolicy};
use crate::events::Emitter;
use crate::mcp_tools;
use crate::memory::{MemoryLink, Recalled, Scope, render};
use crate::metrics::Metrics;
pub use crate::store::Checkpoint;
use crate::tools::{self, EXIT_LOOP_KEY, ToolEnv};

/// How often text deltas are stored at most (the rest are joined).
const DELTA_EVERY: Duration = Duration::from_millis(30);
/// Longest wait for one built-in tool call.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a run stopped without an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Stable code (see `orchestrator_api::RunError`).
    pub code: &'static str,
    /// What happened.
    pub message: String,
}

impl Failure {
    /// A failure with `code`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<crate::error::ApiError> for Failure {
    fn from(e: crate::error::ApiError) -> Self {
        Self::new("store_unavailable", e.to_string())
    }
}

/// Why an agent stopped without an answer: it failed, or it waits for a
/// person to approve a tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// It failed.
    Failed(Failure),
    /// A tool call needs approval; the run can resume from here.
    Interrupted(Box<Checkpoint>),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Self {
        Self::Failed(f)
    }
}

impl From<crate::error::ApiError> for Stop {
    fn from(e: crate::error::ApiError) -> Self {
        Self::Failed(e.into())
    }
}

/// What a person decided about the pending tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Run it as the model asked.
    Approve,
    /// Do not run it; the model is told why.
    Reject(String),
    /// Run it with these arguments instead.
    Edit(Value),
}

/// What the engine needs, shared by every run.
pub struct Engine {
    /// The agents and models.
    pub agents: Arc<Agents>,
    /// The memory server, when configured.
    pub memory: Option<Arc<MemoryLink>>,
    /// Embeddings for routers without a model.
    pub embedder: Arc<dyn Embedder>,
    /// Prometheus counters.
    pub metrics: Arc<Metrics>,
}

/// One run's context.
pub struct RunCtx {
    /// The run.
    pub id: Uuid,
    /// Its namespace.
    pub namespace: String,
    /// The user memories are about.
    pub user_id: Option<String>,
    /// Its thread.
    pub thread: Option<Uuid>,
    /// Its events.
    pub emitter: Emitter,
    /// Tokens, cost and memories so far.
    pub ledger: Mutex<Ledger>,
    /// State agents share (`output_key`, `exit_loop`).
    pub state: Mutex<Map<String, Value>>,
    /// The first recall, started while the run was being stored.
    pub prefetched: Mutex<Option<Prefetch>>,
}

/// A recall started ahead of the agent's first turn (see
/// [`Engine::prefetch`]); dropping it stops it.
pub struct Prefetch(tokio::task::JoinHandle<Prefetched>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a [`Prefetch`] found.
pub struct Prefetched {
    agent: String,
    query: String,
    found: Result<Vec<Recalled>, String>,
    took: Duration,
}

/// Tokens, cost and memories of a run so far.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Tokens and cost.
    pub usage: RunUsage,
    /// Memories retrieved.
    pub memories: Vec<MemoryUsed>,
}

fn add(u: &mut ModelUsage, input: u64, output: u64, cost: f64) {
    u.calls += 1;
    u.input_tokens += input;
    u.output_tokens += output;
    u.cost_usd += cost;
}

fn provider_failure(e: ProviderError) -> Failure {
    match e {
        ProviderError::Unavailable(m) => Failure::new("model_unavailable", m),
        ProviderError::Provider(m) => Failure::new("model_error", m),
    }
}

/// The text of the last user message in `conversation`.
fn last_user(conversation: &[ChatMessage]) -> &str {
    conversation
        .iter()
        .rev()
        .find(|m| m.role == ChatRole::User)
        .map_or("", |m| m.content.as_str())
}

/// The memories `policy` recalls for `query`, and how long the search took.
async fn search(
    memory: &MemoryLink,
    scope: &Scope<'_>,
    query: &str,
    policy: &MemoryPolicy,
) -> (Result<Vec<Recalled>, String>, Duration) {
    let started = Instant::now();
    let found = memory
        .recall(scope, query, &policy.recall_options())
        .await
        .map_err(|e| e.to_string());
    (found, started.elapsed())
}

/// `output` of `agent`, as the next agent's input.
fn handed_on(agent: &str, output: &str) -> ChatMessage {
    ChatMessage::new(ChatRole::User, format!("Output of {agent}:\n{output}"))
}

fn truthy(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null | Value::Bool(false)))
        && v.and_then(Value::as_str) != Some("")
}

impl Engine {
    /// Runs agent `name` over `conversation`; returns its answer.
    pub fn run_agent<'a>(
        &'a self,
        ctx: &'a RunCtx,
        name: &'a str,
        conversation: Vec<ChatMessage>,
    ) -> BoxFuture<'a, Result<String, Stop>> {
        Box::pin(async move {
            let agent = self
                .agents
                .agent(name)
                .ok_or_else(|| Failure::new("internal", format!("agent {name} vanished")))?;
            ctx.emitter
                .emit(
                    event::AGENT_STARTED,
                    json!({"agent": name, "kind": agent.config.kind}),
                )
                .await?;
            let output = match agent.config.kind {
                AgentKind::Llm => self.llm(ctx, agent, conversation).await?,
                AgentKind::Router => self.route(ctx, agent, conversation).await?,
                AgentKind::Sequential => self.sequence(ctx, agent, conversation, 1).await?,
                AgentKind::Loop => {
                    ctx.state.lock().remove(EXIT_LOOP_KEY);
                    let n = agent.config.max_iterations;
                    self.sequence(ctx, agent, conversation, n).await?
                }
                AgentKind::Parallel => self.fan_out(ctx, agent, conversation).await?,
            };
            ctx.emitter
                .emit(
                    event::AGENT_FINISHED,
                    json!({"agent": name, "output": output}),
                )
                .await?;
            Ok(output)
        })
    }

    /// `sequential` (one pass) and `loop` (up to `passes`, until told to stop).
    async fn sequence(
        &self,
        ctx: &RunCtx,
        agent: &Agent,
        mut conversation: Vec<ChatMessage>,
        passes: u32,
    ) -> Result<String, Stop> {
        let mut output = String::new();
        for _ in 0..passes {
            for step in &agent.config.steps {
                let step = step.get_ref();
                output = self.run_agent(ctx, step, conversation.clone()).await?;
                conversation.push(handed_on(step, &output));
                if agent.config.kind == AgentKind::Loop && self.loop_done(ctx, agent) {
                    return Ok(output);
                }
            }
        }
        Ok(output)
    }

    fn loop_done(&self, ctx: &RunCtx, agent: &Agent) -> bool {
        let state = ctx.state.lock();
        truthy(state.get(EXIT_LOOP_KEY))
            || agent
                .config
                .until_key
                .as_ref()
                .is_some_and(|k| truthy(state.get(k)))
    }

    /// `parallel`: every branch on the same input at once, then the join agent.
    async fn fan_out(
        &self,
        ctx: &RunCtx,
        agent: &Agent,
        conversation: Vec<ChatMessage>,
    ) -> Result<String, Stop> {
        let branches = agent.config.steps.iter().map(|s| s.get_ref().as_str());
        let outputs = futures_util::future::join_all(
            branches
                .clone()
                .map(|b| self.run_agent(ctx, b, conversation.clone())),
        )
        .await;
        let mut answers = String::new();
        for (branch, output) in branches.zip(outputs) {
            answers.push_str(&format!("## {branch}\n{}\n\n", output?));
        }
        let answers = answers.trim_end().to_owned();
        match &agent.config.join {
            Some(join) => {
                let mut conversation = conversation;
                conversation.push(ChatMessage::new(
                    ChatRole::User,
                    format!("Answers of the branches:\n{answers}"),
                ));
                self.run_agent(ctx, join.get_ref(), conversation).await
            }
            None => Ok(answers),
        }
    }

    /// `router`: the model picks a route under a JSON schema; without a model
    /// (or when its answer is unusable), the route whose description is most
    /// similar to the input.
    async fn route(
        &self,
        ctx: &RunCtx,
        agent: &Agent,
        conversation: Vec<ChatMessage>,
    ) -> Result<String, Stop> {
        let routes: Vec<&str> = agent
            .config
            .routes
            .iter()
            .map(|r| r.get_ref().as_str())
            .collect();
        let describe = |r: &str| {
            self.agents
                .agent(r)
                .map(|a| a.config.description.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| r.to_owned())
        };
        let input = last_user(&conversation).to_owned();
        let mut chosen = None;
        let mut method = "similarity";
        if let Some(model_name) = agent.model() {
            let catalogue: String = routes
                .iter()
                .map(|r| format!("- {r}: {}\n", describe(r)))
                .collect();
            let instruction = format!(
                "{}\nChoose the one agent best suited to the user's message. Agents:\n{catalogue}\
                 Answer with JSON: {{\"route\": \"<agent name>\"}}.",
                agent.config.instruction
            );
            let request = ChatRequest {
                messages: vec![
                    ChatMessage::new(ChatRole::System, instruction),
                    ChatMessage::new(ChatRole::User, input.clone()),
                ],
                response_schema: Some(json!({
                    "type": "object",
                    "properties": {"route": {"type": "string", "enum": routes}},
                    "required": ["route"],
                    "additionalProperties": false,
                })),
                ..ChatRequest::default()
            };
            let answer = self
                .call_model(ctx, agent, model_name, &request, false)
                .await?;
            let picked = serde_json::from_str::<Value>(answer.text.trim())
                .ok()
                .and_then(|v| v.get("route").and_then(Value::as_str).map(str::to_owned))
                .filter(|r| routes.contains(&r.as_str()));
            match picked {
                Some(r) => {
                    chosen = Some(r);
                    method = "model";
                }
                None => tracing::warn!(
                    agent = %agent.name,
                    answer = %answer.text.chars().take(200).collect::<String>(),
                    "router model gave no valid route; choosing by similarity"
                ),
            }
        }
        let chosen = match chosen {
            Some(c) => c,
            None => self.closest(&input, &routes, describe).await?,
        };
        ctx.emitter
            .emit(
                event::ROUTE_CHOSEN,
                json!({"agent": agent.name, "route": chosen, "method": method}),
            )
            .await?;
        self.run_agent(ctx, &chosen, conversation).await
    }

    /// The route whose description is most similar to `input`.
    async fn closest(
        &self,
        input: &str,
        routes: &[&str],
        describe: impl Fn(&str) -> String,
    ) -> Result<String, Failure> {
        let query = self
            .embedder
            .embed(&[input.to_owned()], Purpose::Query)
            .await
            .map_err(|e| Failure::new("model_unavailable", format!("router embedding: {e}")))?;
        let docs: Vec<String> = routes.iter().map(|r| describe(r)).collect();
        let vectors = self
            .embedder
            .embed(&docs, Purpose::Document)
            .await
            .map_err(|e| Failure::new("model_unavailable", format!("router embedding: {e}")))?;
        let q = query.first().cloned().unwrap_or_default();
        let score = |v: &[f32]| q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>();
        // Ties go to the first route listed: the configuration's order is the preference.
        let mut best = 0;
        for (i, v) in vectors.iter().enumerate() {
            if score(v) > score(&vectors[best]) {
                best = i;
            }
        }
        Ok(routes
            .get(best)
            .map(|r| (*r).to_owned())
            .unwrap_or_default())
    }

    /// One model call: streamed deltas become events (when `stream_text`),
    /// usage and cost are counted.
    async fn call_model(
        &self,
        ctx: &RunCtx,
        agent: &Agent,
        model_name: &str,
        request: &ChatRequest,
        stream_text: bool,
    ) -> Result<providers::chat::ChatResponse, Failure> {
        let model = self
            .agents
            .model(model_name)
            .ok_or_else(|| Failure::new("internal", format!("model {model_name} vanished")))?;
        let mut request = request.clone();
        request.temperature = request.temperature.or(model.config.temperature);
        request.max_tokens = request.max_tokens.or(model.config.max_tokens);
        // What happened so far is stored while the model works (not before:
        // the write need not delay the call; held events keep their order).
        let flushing = ctx.emitter.flush();
        let started = Instant::now();
        let mut stream = model.chat.stream(&request);
        let mut answer = Assembler::default();
        let (flushed, first) = tokio::join!(flushing, stream.next());
        flushed?;
        // The first poll's answer, not polled again (a finished stream may not be).
        let mut first = Some(first);
        let mut pending = String::new();
        let mut last_flush = Instant::now() - DELTA_EVERY;
        let outcome: Result<(), ProviderError> = async {
            loop {
                let next = match first.take() {
                    Some(polled) => polled,
                    None => stream.next().await,
                };
                let Some(e) = next else { break };
                let e = e?;
                if let (true, ChatEvent::TextDelta(t)) = (stream_text, &e) {
                    pending.push_str(t);
                    if last_flush.elapsed() >= DELTA_EVERY {
                        let delta = std::mem::take(&mut pending);
                        if let Err(err) = ctx
                            .emitter
                            .emit(
                                event::MESSAGE_DELTA,
                                json!({"agent": agent.name, "delta": delta}),
                            )
                            .await
                        {
                            tracing::warn!(error = %err, "a text delta was not stored");
                        }
                        last_flush = Instant::now();
                    }
                }
                answer.push(e);
            }
            Ok(())
        }
        .await;
        drop(stream);
        let elapsed = started.elapsed();
        let model_id = model.chat.id().to_owned();
        self.metrics.model_call(&model_id, elapsed, outcome.is_ok());
        outcome.map_err(provider_failure)?;
        let response = answer.finish().map_err(provider_failure)?;
        if !pending.is_empty() {
            // The stream has ended: the rest of the text goes with the next
            // write (the run's outcome, or the flush before a tool call).
            ctx.emitter
                .hold(
                    event::MESSAGE_DELTA,
                    json!({"agent": agent.name, "delta": pending}),
                )
                .await;
        }
        let (input, output) = (response.usage.input_tokens, response.usage.output_tokens);
        let cost = (input as f64 * model.config.input_price_per_million
            + output as f64 * model.config.output_price_per_million)
            / 1_000_000.0;
        {
            let mut ledger = ctx.ledger.lock();
            let u = &mut ledger.usage;
            u.input_tokens += input;
            u.output_tokens += output;
            u.cost_usd += cost;
            add(
                u.by_model.entry(model_id.clone()).or_default(),
                input,
                output,
                cost,
            );
            add(
                u.by_agent.entry(agent.name.clone()).or_default(),
                input,
                output,
                cost,
            );
        }
        self.metrics.tokens(&model_id, input, output, cost);
        ctx.emitter
            .emit(
                event::USAGE,
                json!({
                    "agent": agent.name, "model": model_id, "input_tokens": input,
                    "output_tokens": output, "cost_usd": cost,
                    "latency_ms": kit::telemetry::millis_rounded(elapsed),
                }),
            )
            .await?;
        Ok(response)
    }

    /// `llm`: recall, then model calls and tool calls until an answer.
    async fn llm(
        &self,
        ctx: &RunCtx,
        agent: &Agent,
        conversation: Vec<ChatMessage>,
    ) -> Result<String, Stop> {
        let work = self.llm_loop(ctx, agent, conversation);
        match agent.config.timeout_ms {
            Some(ms) => tokio::time::timeout(Duration::from_millis(ms), work)
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::new(
                        "timeout",
                        format!("agent {} took longer than {ms} ms", agent.name),
                    )
                    .into())
                }),
            None => work.await,
        }
    }

    async fn llm_loop(
        &self,
        ctx: &RunCtx,
        agent: &Agent,
        conversation: Vec<ChatMessage>,
    ) -> Result<String, Stop> {
        let mut messages = Vec::new();
        if !agent.config.instruction.is_empty() {
            messages.push(ChatMessage::new(
                ChatRole::System,
                agent.config.instruction.clone(),
            ));
        }
        if let Some(block) = self.recall(ctx, agent, &conversation).await? {
            messages.push(ChatMessage::new(ChatRole::System, block));
        }
        messages.extend(conversation);
        let start = Checkpoint {
            agent: agent.name.clone(),
            messages,
            steps: 0,
            pending: Vec::new(),
        };
        self.llm_steps(ctx, agent, start, None).await
    }

    /// Goes on with `llm` agent `checkpoint.agent` after a person decided
    /// about its pending tool call.
    pub async fn resume(
        &self,
        ctx: &RunCtx,
        checkpoint: Checkpoint,
        decision: Decision,
    ) -> Result<String, Stop> {
        let agent = self.agents.agent(&checkpoint.agent).ok_or_else(|| {
            Failure::new("internal", format!("agent {} vanished", checkpoint.agent))
        })?;
        ctx.emitter
            .emit(
                event::AGENT_STARTED,
                json!({"agent": agent.name, "kind": agent.config.kind, "resumed": true}),
            )
            .await?;
        let output = self
            .llm_steps(ctx, agent, checkpoint, Some(decision))
            .await?;
        ctx.emitter
            .emit(
                event::AGENT_FINISHED,
                json!({"agent": agent.name, "output": output}),
            )
            .await?;
        Ok(output)
    }

    /// The declarations of the agent's tools: built-in and remote.
    async fn tool_specs(&self, agent: &Agent) -> Result<Vec<providers::chat::ToolSpec>, Failure> {
        let names = agent.tools();
        let mut specs: Vec<_> = names.iter().filter_map(|t| tools::spec(t)).collect();
        let remote: Vec<String> = names.into_iter().filter(|t| t.contains('.')).collect();
        if !remote.is_empty() {
            let found = self
                .agents
                .mcp
                .specs(&remote)
                .await
                .map_err(|e| Failure::new("tool_unavailable", e))?;
            specs.extend(found);
        }
        Ok(specs)
    }

    /// Model calls and tool calls from `at` until an answer, a failure or a
    /// tool call that needs a person's approval (`decision` is the one
    /// awaited by the first pending call, when resuming).
    async fn llm_steps(
        &self,
        ctx: &RunCtx,
        agent: &Agent,
        at: Checkpoint,
        mut decision: Option<Decision>,
    ) -> Result<String, Stop> {
        let model_name = agent
            .model()
            .ok_or_else(|| Failure::new("internal", "llm agent without a model"))?;
        let tools = self.tool_specs(agent).await?;
        let Checkpoint {
            mut messages,
            mut steps,
            mut pending,
            ..
        } = at;
        loop {
            // The step's tool calls, each approved first when the agent says so.
            while !pending.is_empty() {
                let call = pending[0].clone();
                let needs_approval = agent.config.approval.iter().any(|t| {
                    *t.get_ref() == call.name
                        || t.get_ref().replacen('.', mcp_tools::MODEL_SEPARATOR, 1) == call.name
                });
                let decided = decision.take();
                if needs_approval && decided.is_none() {
                    return Err(Stop::Interrupted(Box::new(Checkpoint {
                        agent: agent.name.clone(),
                        messages,
                        steps,
                        pending,
                    })));
                }
                let result = self.tool(ctx, agent, &call, decided).await?;
                messages.push(ChatMessage::tool_result(&call, result));
                pending.remove(0);
            }
            if steps >= agent.config.max_steps {
                return Err(Failure::new(
                    "max_steps",
                    format!(
                        "agent {} made {} model calls without answering (max_steps)",
                        agent.name, agent.config.max_steps
                    ),
                )
                .into());
            }
            steps += 1;
            let request = ChatRequest {
                messages: messages.clone(),
                tools: tools.clone(),
                ..ChatRequest::default()
            };
            let answer = self
                .call_model(ctx, agent, model_name, &request, true)
                .await?;
            if answer.tool_calls.is_empty() {
                ctx.emitter
                    .emit(
                        event::MESSAGE_COMPLETED,
                        json!({"agent": agent.name, "content": answer.text}),
                    )
                    .await?;
                if let Some(key) = &agent.config.output_key {
                    ctx.state
                        .lock()
                        .insert(key.clone(), Value::String(answer.text.clone()));
                }
                return Ok(answer.text);
            }
            let mut said = ChatMessage::new(ChatRole::Assistant, answer.text.clone());
            said.tool_calls = answer.tool_calls.clone();
            messages.push(said);
            pending = answer.tool_calls;
        }
    }

    /// Runs one tool call; its result (or error) is what the model sees next.
    async fn tool(
        &self,
        ctx: &RunCtx,
        agent: &Agent,
        call: &ToolCall,
        decision: Option<Decision>,
    ) -> Result<String, Failure> {
        let call = &match &decision {
            Some(Decision::Edit(arguments)) => ToolCall {
                arguments: arguments.to_string(),
                ..call.clone()
            },
            _ => call.clone(),
        };
        let mut data = json!({"agent": agent.name, "id": call.id, "tool": call.name, "arguments": call.arguments});
        if let Some(d) = &decision {
            data["approval"] = json!(match d {
                Decision::Approve => "approved",
                Decision::Reject(_) => "rejected",
                Decision::Edit(_) => "edited",
            });
        }
        ctx.emitter.emit(event::TOOL_CALL, data).await?;
        ctx.emitter.flush().await?;
        // Only the agent's own tools run, whatever the model asks for.
        let remote = mcp_tools::split(&call.name)
            .filter(|_| call.name.contains(mcp_tools::MODEL_SEPARATOR))
            .filter(|(server, tool)| agent.tools().contains(&format!("{server}.{tool}")));
        let allowed = remote.is_some() || agent.tools().contains(&call.name);
        let user = ctx.user_id.as_deref();
        let env = ToolEnv {
            memory: self.memory.as_deref(),
            scope: Scope {
                namespace: &ctx.namespace,
                user_id: user,
                agent: &agent.name,
            },
            thread: ctx.thread,
            run_id: ctx.id,
            call_id: &call.id,
            state: &ctx.state,
        };
        let started = Instant::now();
        let result = if let Some(Decision::Reject(reason)) = &decision {
            Err(format!("a person rejected this call: {reason}"))
        } else if let Some((server, tool)) = remote {
            // The server's own timeouts apply (mcp_servers.<name>.timeout_ms).
            self.agents
                .mcp
                .call(server, tool, &call.arguments, &ctx.namespace, user)
                .await
        } else if allowed {
            tokio::time::timeout(TOOL_TIMEOUT, tools::call(&call.name, &call.arguments, &env))
                .await
                .unwrap_or_else(|_| Err(format!("{} timed out", call.name)))
        } else {
            Err(format!("{} is not one of this agent's tools", call.name))
        };
        self.metrics
            .tool_call(&call.name, started.elapsed(), result.is_ok());
        let (ok, body) = match result {
            Ok(v) => (true, v),
            Err(e) => (false, json!({"error": e})),
        };
        ctx.emitter
            .emit(
                event::TOOL_RESULT,
                json!({"agent": agent.name, "id": call.id, "tool": call.name, "ok": ok, "result": body}),
            )
            .await?;
        Ok(body.to_string())
    }

    /// The recall `agent`'s first turn will make, made now: a run's first
    /// store write and its memory search need not wait for each other. Only
    /// for an `llm` agent with recall on whose `input` ends the conversation
    /// with a user message (the query); `None` otherwise. A read, so a run
    /// that then fails to start has cost only the search.
    pub fn prefetch(
        &self,
        agent: &str,
        namespace: &str,
        user_id: Option<&str>,
        input: &[ChatMessage],
    ) -> Option<Prefetch> {
        let agent = self.agents.agent(agent)?;
        let policy = agent.config.memory.clone();
        let memory = Arc::clone(self.memory.as_ref().filter(|_| policy.recall)?);
        if agent.config.kind != AgentKind::Llm {
            return None;
        }
        let query = last_user(input).to_owned();
        if query.trim().is_empty() {
            return None;
        }
        let (name, namespace) = (agent.name.clone(), namespace.to_owned());
        let user_id = user_id.map(str::to_owned);
        Some(Prefetch(tokio::spawn(async move {
            let scope = Scope {
                namespace: &namespace,
                user_id: user_id.as_deref(),
                agent: &name,
            };
            let (found, took) = search(&memory, &scope, &query, &policy).await;
            Prefetched {
                agent: name,
                query,
                found,
                took,
            }
        })))
    }

    /// Recalls memories for the latest user message, when the agent's policy
    /// asks and memory is configured (or takes the prefetched recall of the
    /// same agent and query); emits `memory.retrieved`.
    async fn recall(
        &self,
        ctx: &RunCtx,
        agent: &Agent,
        conversation: &[ChatMessage],
    ) -> Result<Option<String>, Failure> {
        let policy = &agent.config.memory;
        let Some(memory) = self.memory.as_deref().filter(|_| policy.recall) else {
            return Ok(None);
        };
        let query = last_user(conversation);
        if query.trim().is_empty() {
            return Ok(None);
        }
        let scope = Scope {
            namespace: &ctx.namespace,
            user_id: ctx.user_id.as_deref(),
            agent: &agent.name,
        };
        let prefetch = ctx.prefetched.lock().take();
        let prefetched = match prefetch {
            Some(mut p) => (&mut p.0).await.ok(),
            None => None,
        }
        .filter(|p| p.agent == agent.name && p.query == query);
        let (found, took) = match prefetched {
            Some(p) => (p.found, p.took),
            None => search(memory, &scope, query, policy).await,
        };
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                // An answer without memories beats no answer; the event says so.
                tracing::warn!(error = %e, run = %ctx.id, "recall failed; continuing without memories");
                ctx.emitter
                    .emit(
                        event::MEMORY_RETRIEVED,
                        json!({"agent": agent.name, "query": query, "memories": [], "error": e}),
                    )
                    .await?;
                return Ok(None);
            }
        };
        let (block, used) = render(&found, policy.max_chars);
        ctx.emitter
            .emit(
                event::MEMORY_RETRIEVED,
                json!({
                    "agent": agent.name,
                    "query": query,
                    "memories": used.iter().map(|m| json!({"id": m.id, "score": m.score})).collect::<Vec<_>>(),
                    "took_ms": kit::telemetry::millis_rounded(took),
                }),
            )
            .await?;
        if used.is_empty() {
            return Ok(None);
        }
        ctx.ledger
            .lock()
            .memories
            .extend(used.iter().map(|m| MemoryUsed {
                id: m.id,
                score: m.score,
                agent: agent.name.clone(),
            }));
        Ok(Some(block))
    }
}
