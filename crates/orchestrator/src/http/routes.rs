//! The handlers. Each checks the caller's key against the namespace of what
//! it touches: a thread or run of a namespace the key does not cover is a
//! 404 (its existence is not revealed), a read-only key cannot start or
//! cancel runs (403).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kit::auth::{Principal, Role};
use orchestrator_api::{
    AgentList, EventList, InputMessage, MessageList, NewThread, ResumeDecision, ResumeRequest,
    Role as MsgRole, Run, RunOutcome, RunRequest, StreamMode, Thread, ThreadPage,
};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::store::Expect;

use super::AppState;
use super::extract::{ApiJson, ApiQuery, uuid};
use crate::error::ApiError;
use crate::runs::NewRun;

/// Most threads per page.
const MAX_PAGE: usize = 100;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 while the store answers; the memory server's state is
/// reported (runs go on without memory when it is down, and say so).
pub async fn readyz(State(app): State<AppState>) -> Response {
    let store = app.runs.records().reachable();
    let memory = match &app.memory {
        Some(m) => json!(m.ready().await),
        None => json!("not configured"),
    };
    let body = json!({"ready": store, "store_reachable": store, "memory_ready": memory});
    let status = if store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
}

/// `GET /openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    Json(super::openapi::document().clone())
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("endpoint (see /openapi.json)".into())
}

/// A known path with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("this path does not take that method; see /openapi.json".into())
}

/// `GET /v1/agents`.
pub async fn list_agents(State(app): State<AppState>, _who: Principal) -> Json<AgentList> {
    Json(AgentList {
        agents: app.agents.describe(),
    })
}

/// `GET /v1/agents/{name}`.
pub async fn get_agent(
    State(app): State<AppState>,
    _who: Principal,
    Path(name): Path<String>,
) -> Result<Json<orchestrator_api::Agent>, ApiError> {
    app.agents
        .describe_one(&name)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("agent `{name}`")))
}

/// The namespace a request acts in: the one asked for, else the key's only one.
fn namespace_for(who: &Principal, asked: Option<String>) -> Result<String, ApiError> {
    match asked {
        Some(ns) if ns.trim().is_empty() || ns.len() > 128 => Err(ApiError::field(
            "namespace",
            "namespace must be 1 to 128 characters",
        )),
        Some(ns) => Ok(ns),
        None => match who.namespaces() {
            [only] if only != "*" => Ok(only.clone()),
            _ => Err(ApiError::field(
                "namespace",
                "namespace is required: this key covers more than one",
            )),
        },
    }
}

fn check_label(field: &str, value: &Option<String>) -> Result<(), ApiError> {
    match value {
        Some(v) if v.trim().is_empty() || v.len() > 128 => Err(ApiError::field(
            field,
            format!("{field} must be 1 to 128 characters"),
        )),
        _ => Ok(()),
    }
}

/// `POST /v1/threads`.
pub async fn create_thread(
    State(app): State<AppState>,
    who: Principal,
    ApiJson(new): ApiJson<NewThread>,
) -> Result<(StatusCode, Json<Thread>), ApiError> {
    let namespace = namespace_for(&who, new.namespace)?;
    who.require(&namespace, Role::Write)?;
    check_label("user_id", &new.user_id)?;
    let now = OffsetDateTime::now_utc();
    let thread = Thread {
        id: Uuid::now_v7(),
        namespace,
        user_id: new.user_id,
        metadata: new.metadata,
        active_run: None,
        created_at: now,
        updated_at: now,
    };
    app.runs
        .records()
        .put_thread(&thread, Expect::Absent)
        .await?;
    Ok((StatusCode::CREATED, Json(thread)))
}

/// The thread `raw`, if the caller may `role` it.
async fn visible_thread(
    app: &AppState,
    who: &Principal,
    raw: &str,
    role: Role,
) -> Result<Thread, ApiError> {
    Ok(visible_thread_at(app, who, raw, role).await?.0)
}

/// [`visible_thread`] with the version it was read at.
async fn visible_thread_at(
    app: &AppState,
    who: &Principal,
    raw: &str,
    role: Role,
) -> Result<(Thread, u64), ApiError> {
    let id = uuid("thread", raw)?;
    let (thread, version) = app
        .runs
        .records()
        .thread(id)
        .await?
        .filter(|(t, _)| who.covers(&t.namespace))
        .ok_or_else(|| ApiError::NotFound(format!("thread {id}")))?;
    who.require(&thread.namespace, role)?;
    Ok((thread, version))
}

/// `GET /v1/threads/{id}`.
pub async fn get_thread(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Thread>, ApiError> {
    Ok(Json(visible_thread(&app, &who, &id, Role::Read).await?))
}

/// `DELETE /v1/threads/{id}`: the thread, its messages, runs and events.
pub async fn delete_thread(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let thread = visible_thread(&app, &who, &id, Role::Write).await?;
    app.runs.delete_thread(&thread).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/threads` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadQuery {
    namespace: Option<String>,
    user_id: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /v1/threads`: most recently updated first, `limit` per page.
pub async fn list_threads(
    State(app): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<ThreadQuery>,
) -> Result<Json<ThreadPage>, ApiError> {
    let namespaces: Option<Vec<String>> = match q.namespace {
        Some(ns) => {
            who.require(&ns, Role::Read)?;
            Some(vec![ns])
        }
        None if who.namespaces().iter().any(|n| n == "*") => None,
        None => Some(who.namespaces().to_vec()),
    };
    let limit = q.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    let after = match &q.cursor {
        Some(c) => Some(parse_cursor(c)?),
        None => None,
    };
    let mut threads = app
        .runs
        .records()
        .threads(namespaces.as_deref(), q.user_id.as_deref())
        .await?;
    let key = |t: &Thread| (std::cmp::Reverse(t.updated_at), std::cmp::Reverse(t.id));
    threads.sort_by_key(key);
    if let Some((at, id)) = after {
        threads.retain(|t| key(t) > (std::cmp::Reverse(at), std::cmp::Reverse(id)));
    }
    let more = threads.len() > limit;
    threads.truncate(limit);
    let next_cursor = more
        .then(|| {
            threads
                .last()
                .map(|t| format!("{}_{}", t.updated_at.unix_timestamp_nanos(), t.id))
        })
        .flatten();
    Ok(Json(ThreadPage {
        threads,
        next_cursor,
    }))
}

fn parse_cursor(c: &str) -> Result<(OffsetDateTime, Uuid), ApiError> {
    let bad = || ApiError::field("cursor", "cursor is not one this server gave out");
    let (nanos, id) = c.split_once('_').ok_or_else(bad)?;
    let nanos: i128 = nanos.parse().map_err(|_| bad())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| bad())?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// `GET /v1/threads/{id}/messages`: oldest first.
pub async fn thread_messages(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<MessageList>, ApiError> {
    let thread = visible_thread(&app, &who, &id, Role::Read).await?;
    Ok(Json(MessageList {
        messages: app.runs.records().messages(thread.id).await?,
    }))
}

/// The run request's input messages, checked.
fn input_of(app: &AppState, r: &RunRequest) -> Result<Vec<InputMessage>, ApiError> {
    if app.agents.agent(&r.agent).is_none() {
        return Err(ApiError::NotFound(format!(
            "agent `{}` (GET /v1/agents lists them)",
            r.agent
        )));
    }
    let input = match (&r.input, &r.messages) {
        (Some(text), None) => vec![InputMessage {
            role: MsgRole::User,
            content: text.clone(),
        }],
        (None, Some(messages)) if !messages.is_empty() => messages.clone(),
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "input",
                "send `input` or `messages`, not both",
            ));
        }
        _ => {
            return Err(ApiError::field(
                "input",
                "send `input` (text) or `messages`",
            ));
        }
    };
    let max = app.config.runs.max_input_chars;
    for (i, m) in input.iter().enumerate() {
        if m.content.trim().is_empty() {
            return Err(ApiError::field(
                &format!("messages[{i}].content"),
                "a message must not be empty",
            ));
        }
        if m.content.chars().count() > max {
            return Err(ApiError::TooLarge(format!(
                "message {i} is over runs.max_input_chars ({max} characters)"
            )));
        }
    }
    if input.iter().all(|m| m.role != MsgRole::User) {
        return Err(ApiError::field(
            "messages",
            "the input needs a user message",
        ));
    }
    if let Some(ms) = r.deadline_ms
        && ms == 0
    {
        return Err(ApiError::field(
            "deadline_ms",
            "deadline_ms must be positive",
        ));
    }
    Ok(input)
}

/// Starts a run on `thread_raw` for the caller.
async fn start_on_thread(
    app: &AppState,
    who: &Principal,
    thread_raw: &str,
    request: &RunRequest,
) -> Result<Run, ApiError> {
    let (thread, version) = visible_thread_at(app, who, thread_raw, Role::Write).await?;
    if request
        .namespace
        .as_ref()
        .is_some_and(|n| *n != thread.namespace)
        || request.user_id.is_some()
    {
        return Err(ApiError::field(
            "namespace",
            "a thread's runs take its namespace and user; leave them out",
        ));
    }
    let input = input_of(app, request)?;
    app.runs
        .start(NewRun {
            namespace: thread.namespace.clone(),
            user_id: thread.user_id.clone(),
            thread: Some((thread, version)),
            agent: request.agent.clone(),
            input,
            metadata: request.metadata.clone(),
            queue: request.queue,
        })
        .await
}

/// Starts a run without a thread.
async fn start_stateless(
    app: &AppState,
    who: &Principal,
    request: &RunRequest,
) -> Result<Run, ApiError> {
    let namespace = namespace_for(who, request.namespace.clone())?;
    who.require(&namespace, Role::Write)?;
    check_label("user_id", &request.user_id)?;
    if request.queue {
        return Err(ApiError::field(
            "queue",
            "a run without a thread has nothing to queue behind",
        ));
    }
    let input = input_of(app, request)?;
    app.runs
        .start(NewRun {
            namespace,
            user_id: request.user_id.clone(),
            thread: None,
            agent: request.agent.clone(),
            input,
            metadata: request.metadata.clone(),
            queue: false,
        })
        .await
}

/// Waits for `run` up to `deadline_ms`; 200 with the outcome when it ended
/// (or paused for approval), 202 with the run to poll when not.
async fn outcome(app: &AppState, run: Run, deadline_ms: Option<u64>) -> Result<Response, ApiError> {
    let max = app.config.runs.max_wait_ms;
    let wait = deadline_ms.unwrap_or(max).min(max);
    let run = app.runs.wait(run.id, Duration::from_millis(wait)).await?;
    let messages = match run.thread_id {
        Some(_) if run.status.is_terminal() => app
            .runs
            .records()
            .run_messages(run.id)
            .await?
            .into_iter()
            .filter(|m| m.role == MsgRole::Assistant)
            .collect(),
        _ => Vec::new(),
    };
    let status = if run.status.is_settled() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(RunOutcome { run, messages })).into_response())
}

/// `POST /v1/threads/{id}/runs`: runs and waits (see [`outcome`]).
pub async fn create_run(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Response, ApiError> {
    let run = start_on_thread(&app, &who, &id, &request).await?;
    outcome(&app, run, request.deadline_ms).await
}

/// `POST /v1/threads/{id}/runs/stream`: runs and streams its events.
pub async fn create_run_stream(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Response, ApiError> {
    let run = start_on_thread(&app, &who, &id, &request).await?;
    let mode = request.stream_mode.unwrap_or_default();
    Ok(super::stream::follow(app.runs.clone(), run.id, 0, mode).into_response())
}

/// `POST /v1/runs`: a run without a thread, waited for.
pub async fn stateless_run(
    State(app): State<AppState>,
    who: Principal,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Response, ApiError> {
    let run = start_stateless(&app, &who, &request).await?;
    outcome(&app, run, request.deadline_ms).await
}

/// `POST /v1/runs/stream`: a run without a thread, streamed.
pub async fn stateless_run_stream(
    State(app): State<AppState>,
    who: Principal,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Response, ApiError> {
    let run = start_stateless(&app, &who, &request).await?;
    let mode = request.stream_mode.unwrap_or_default();
    Ok(super::stream::follow(app.runs.clone(), run.id, 0, mode).into_response())
}

/// The run `run_raw` of thread `thread_raw`, if the caller may `role` it.
async fn visible_run(
    app: &AppState,
    who: &Principal,
    thread_raw: &str,
    run_raw: &str,
    role: Role,
) -> Result<Run, ApiError> {
    let thread = visible_thread(app, who, thread_raw, role).await?;
    let id = uuid("run", run_raw)?;
    app.runs
        .records()
        .run(id)
        .await?
        .map(|(r, _)| r.run)
        .filter(|r| r.thread_id == Some(thread.id))
        .ok_or_else(|| ApiError::NotFound(format!("run {id} in thread {}", thread.id)))
}

/// `GET /v1/threads/{id}/runs/{run_id}`.
pub async fn get_run(
    State(app): State<AppState>,
    who: Principal,
    Path((thread, run)): Path<(String, String)>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(
        visible_run(&app, &who, &thread, &run, Role::Read).await?,
    ))
}

/// `GET .../runs/{run_id}/events`: the events stored so far.
pub async fn run_events(
    State(app): State<AppState>,
    who: Principal,
    Path((thread, run)): Path<(String, String)>,
) -> Result<Json<EventList>, ApiError> {
    let run = visible_run(&app, &who, &thread, &run, Role::Read).await?;
    Ok(Json(EventList {
        events: app.runs.records().events(run.id).await?,
    }))
}

/// `GET .../stream` parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinQuery {
    /// Events after this one (instead of the `Last-Event-ID` header).
    after: Option<u64>,
    /// `events` (default) or `messages`.
    stream_mode: Option<StreamMode>,
}

/// `GET .../runs/{run_id}/stream`: (re)joins a run's events after
/// `Last-Event-ID`, from any instance.
pub async fn join_stream(
    State(app): State<AppState>,
    who: Principal,
    Path((thread, run)): Path<(String, String)>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<JoinQuery>,
) -> Result<Response, ApiError> {
    let run = visible_run(&app, &who, &thread, &run, Role::Read).await?;
    let after = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::field("Last-Event-ID", "Last-Event-ID must be an event number")
            })?,
        None => q.after.unwrap_or(0),
    };
    let mode = q.stream_mode.unwrap_or_default();
    Ok(super::stream::follow(app.runs.clone(), run.id, after, mode).into_response())
}

/// `POST .../runs/{run_id}/cancel`: 202 with the run (it ends `cancelled`
/// shortly: at once on the instance running it, at its next heartbeat from
/// elsewhere); 409 when it has already ended.
pub async fn cancel_run(
    State(app): State<AppState>,
    who: Principal,
    Path((thread, run)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let run = visible_run(&app, &who, &thread, &run, Role::Write).await?;
    let run = app.runs.cancel(run.id).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// `POST .../runs/{run_id}/resume`: a person's decision about an interrupted
/// run's pending tool call; then waits as a run request does.
pub async fn resume_run(
    State(app): State<AppState>,
    who: Principal,
    Path((thread, run)): Path<(String, String)>,
    ApiJson(request): ApiJson<ResumeRequest>,
) -> Result<Response, ApiError> {
    let run = visible_run(&app, &who, &thread, &run, Role::Write).await?;
    let decision = match (request.decision, request.arguments) {
        (ResumeDecision::Approve, None) => crate::engine::Decision::Approve,
        (ResumeDecision::Reject, None) => crate::engine::Decision::Reject(
            request.reason.unwrap_or_else(|| "no reason given".into()),
        ),
        (ResumeDecision::Edit, Some(arguments)) if arguments.is_object() => {
            crate::engine::Decision::Edit(arguments)
        }
        (ResumeDecision::Edit, _) => {
            return Err(ApiError::field(
                "arguments",
                "edit needs `arguments`, a JSON object",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::field(
                "arguments",
                "only an edit takes `arguments`",
            ));
        }
    };
    let run = app.runs.resume(run.id, decision).await?;
    outcome(&app, run, request.deadline_ms).await
}
