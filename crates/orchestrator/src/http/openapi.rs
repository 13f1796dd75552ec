//! The OpenAPI document served at `/openapi.json`, generated from the wire
//! types (`orchestrator-api`) and the declarations below (the handlers are
//! in [`super::routes`]; a test checks every route is declared).

#![allow(dead_code)] // declaration-only functions

use std::sync::OnceLock;

use orchestrator_api::{
    Agent, AgentKind, AgentList, EventList, InputMessage, MemoryUsed, Message, MessageList,
    ModelUsage, NewThread, ResumeDecision, ResumeRequest, Role, Run, RunError, RunEvent,
    RunOutcome, RunRequest, RunStatus, RunUsage, StreamMode, Thread, ThreadPage,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "AI Orchestra orchestration API", description = "Agents, threads and runs with streamed events. Errors: `{\"error\": {\"code\", \"message\", \"details\"}}`."),
    paths(
        list_agents, get_agent, create_thread, list_threads, get_thread, delete_thread,
        thread_messages, create_run, create_run_stream, get_run, join_stream, run_events,
        cancel_run, resume_run, stateless_run, stateless_run_stream, healthz, readyz, metrics
    ),
    components(schemas(
        Agent, AgentKind, AgentList, EventList, InputMessage, MemoryUsed, Message, MessageList,
        ModelUsage, NewThread, Role, Run, RunError, RunEvent, RunOutcome, RunRequest, RunStatus,
        RunUsage, StreamMode, Thread, ThreadPage, ResumeRequest, ResumeDecision
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(ApiDoc::openapi()).unwrap_or_default())
}

#[utoipa::path(get, path = "/v1/agents", responses((status = 200, body = AgentList)))]
fn list_agents() {}
#[utoipa::path(get, path = "/v1/agents/{name}", params(("name" = String, Path)), responses((status = 200, body = Agent), (status = 404)))]
fn get_agent() {}
#[utoipa::path(post, path = "/v1/threads", request_body = NewThread, responses((status = 201, body = Thread), (status = 400), (status = 403)))]
fn create_thread() {}
#[utoipa::path(get, path = "/v1/threads", params(("namespace" = Option<String>, Query), ("user_id" = Option<String>, Query), ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)), responses((status = 200, body = ThreadPage)))]
fn list_threads() {}
#[utoipa::path(get, path = "/v1/threads/{id}", params(("id" = String, Path)), responses((status = 200, body = Thread), (status = 404)))]
fn get_thread() {}
#[utoipa::path(delete, path = "/v1/threads/{id}", params(("id" = String, Path)), responses((status = 204), (status = 404), (status = 409, description = "a run is in progress")))]
fn delete_thread() {}
#[utoipa::path(get, path = "/v1/threads/{id}/messages", params(("id" = String, Path)), responses((status = 200, body = MessageList)))]
fn thread_messages() {}
#[utoipa::path(post, path = "/v1/threads/{id}/runs", params(("id" = String, Path)), request_body = RunRequest, responses((status = 200, body = RunOutcome, description = "the run ended"), (status = 202, body = RunOutcome, description = "still running at the deadline: poll the run"), (status = 404, description = "no such thread or agent"), (status = 409, description = "thread busy (code thread_busy)"), (status = 413)))]
fn create_run() {}
#[utoipa::path(post, path = "/v1/threads/{id}/runs/stream", params(("id" = String, Path)), request_body = RunRequest, responses((status = 200, content_type = "text/event-stream", description = "run events: `id` is the sequence number, `event` the kind, `data` the RunEvent JSON")))]
fn create_run_stream() {}
#[utoipa::path(get, path = "/v1/threads/{id}/runs/{run_id}", params(("id" = String, Path), ("run_id" = String, Path)), responses((status = 200, body = Run), (status = 404)))]
fn get_run() {}
#[utoipa::path(get, path = "/v1/threads/{id}/runs/{run_id}/stream", params(("id" = String, Path), ("run_id" = String, Path), ("Last-Event-ID" = Option<u64>, Header), ("after" = Option<u64>, Query), ("stream_mode" = Option<StreamMode>, Query)), responses((status = 200, content_type = "text/event-stream")))]
fn join_stream() {}
#[utoipa::path(get, path = "/v1/threads/{id}/runs/{run_id}/events", params(("id" = String, Path), ("run_id" = String, Path)), responses((status = 200, body = EventList)))]
fn run_events() {}
#[utoipa::path(post, path = "/v1/threads/{id}/runs/{run_id}/cancel", params(("id" = String, Path), ("run_id" = String, Path)), responses((status = 202, body = Run), (status = 409, description = "already ended")))]
fn cancel_run() {}
#[utoipa::path(post, path = "/v1/threads/{id}/runs/{run_id}/resume", params(("id" = String, Path), ("run_id" = String, Path)), request_body = ResumeRequest, responses((status = 200, body = RunOutcome), (status = 202, body = RunOutcome), (status = 409, description = "the run is not interrupted")))]
fn resume_run() {}
#[utoipa::path(post, path = "/v1/runs", request_body = RunRequest, responses((status = 200, body = RunOutcome), (status = 202, body = RunOutcome)))]
fn stateless_run() {}
#[utoipa::path(post, path = "/v1/runs/stream", request_body = RunRequest, responses((status = 200, content_type = "text/event-stream")))]
fn stateless_run_stream() {}
#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200)))]
fn healthz() {}
#[utoipa::path(get, path = "/readyz", security(()), responses((status = 200), (status = 503)))]
fn readyz() {}
#[utoipa::path(get, path = "/metrics", security(()), responses((status = 200, content_type = "application/openmetrics-text")))]
fn metrics() {}
