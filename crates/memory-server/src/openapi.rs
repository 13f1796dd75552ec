//! The OpenAPI document served at `/openapi.json`, generated from the wire
//! types (`memory-api`, `ToSchema`) and the route declarations below.
//!
//! The functions here only carry `#[utoipa::path]` declarations; the handlers
//! live in [`crate::routes`]. A test checks that every route the router serves
//! is declared here.

#![allow(dead_code)] // declaration-only functions

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::model::{
    AppendMessages, Appended, BulkDelete, BulkDeleted, CreateBody, CreateResponse, Created,
    CreatedBatch, ErrorResponse, Fusion, History, Imported, Kind, Memory, MemoryFilter, MemoryPage,
    MemoryPatch, Message, Mmr, NewMemories, NewMemory, NewMessage, PortableMemory, Promote,
    PutSession, Recency, Revision, SearchHit, SearchMode, SearchRequest, SearchResponse, Session,
    SessionPage, SessionSummary, Visibility,
};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "AI Orchestra memory API", description = "Memories, search and sessions for AI agents. Errors: `{\"error\": {\"code\", \"message\", \"details\"}}`."),
    paths(
        create_memory, list_memories, get_memory, update_memory, delete_memory, memory_history,
        search_memories, bulk_delete, export, import, put_session, get_session, delete_session,
        append_messages, list_sessions, promote, healthz, readyz, metrics
    ),
    components(schemas(
        Memory, NewMemory, NewMemories, Created, CreatedBatch, CreateBody, CreateResponse,
        MemoryPatch, MemoryFilter, Recency, SearchRequest, SearchHit, SearchResponse, MemoryPage,
        Revision, History, BulkDelete, BulkDeleted, PortableMemory, Imported, Message, NewMessage,
        Session, PutSession, AppendMessages, Appended, SessionSummary, SessionPage, Promote, Kind,
        Visibility, SearchMode, Fusion, Mmr, ErrorResponse
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

/// The document as JSON.
pub fn json() -> String {
    ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into())
}

#[utoipa::path(post, path = "/v1/memories", tag = "memories", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first memory")),
    responses(
        (status = 201, description = "Created", body = Created),
        (status = 200, description = "An existing memory (duplicate or replay), or a batch", body = CreateResponse),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 413, body = ErrorResponse),
        (status = 502, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn create_memory() {}

#[utoipa::path(get, path = "/v1/memories", tag = "memories",
    params(
        ("namespace" = String, Query), ("agent_id" = Option<String>, Query),
        ("user_id" = Option<String>, Query), ("session_id" = Option<String>, Query),
        ("kind" = Option<Kind>, Query), ("tags_any" = Option<String>, Query, description = "Comma-separated"),
        ("tags_all" = Option<String>, Query, description = "Comma-separated"),
        ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query),
        ("as_agent" = Option<String>, Query)),
    responses((status = 200, body = MemoryPage), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
fn list_memories() {}

#[utoipa::path(get, path = "/v1/memories/{id}", tag = "memories",
    params(("id" = Uuid, Path), ("as_agent" = Option<String>, Query)),
    responses((status = 200, body = Memory), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
fn get_memory() {}

#[utoipa::path(patch, path = "/v1/memories/{id}", tag = "memories", request_body = MemoryPatch,
    params(("id" = Uuid, Path), ("as_agent" = Option<String>, Query),
        ("If-Match" = Option<String>, Header, description = "The version the change is based on")),
    responses((status = 200, body = Memory), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
        (status = 412, body = ErrorResponse), (status = 502, body = ErrorResponse),
        (status = 503, body = ErrorResponse)))]
fn update_memory() {}

#[utoipa::path(delete, path = "/v1/memories/{id}", tag = "memories",
    params(("id" = Uuid, Path), ("as_agent" = Option<String>, Query), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 412, body = ErrorResponse)))]
fn delete_memory() {}

#[utoipa::path(get, path = "/v1/memories/{id}/history", tag = "memories",
    params(("id" = Uuid, Path), ("as_agent" = Option<String>, Query)),
    responses((status = 200, body = History), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
fn memory_history() {}

#[utoipa::path(post, path = "/v1/memories/search", tag = "memories", request_body = SearchRequest,
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 502, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn search_memories() {}

#[utoipa::path(post, path = "/v1/memories/delete", tag = "memories", request_body = BulkDelete,
    responses((status = 200, body = BulkDeleted), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
fn bulk_delete() {}

#[utoipa::path(get, path = "/v1/export", tag = "portability",
    params(("namespace" = String, Query), ("include_vectors" = Option<bool>, Query), ("as_agent" = Option<String>, Query)),
    responses((status = 200, description = "NDJSON, one PortableMemory per line", content_type = "application/x-ndjson", body = PortableMemory),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
fn export() {}

#[utoipa::path(post, path = "/v1/import", tag = "portability",
    request_body(content = PortableMemory, content_type = "application/x-ndjson", description = "One PortableMemory per line"),
    responses((status = 200, body = Imported), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 413, body = ErrorResponse)))]
fn import() {}

#[utoipa::path(put, path = "/v1/sessions/{id}", tag = "sessions", request_body = PutSession,
    params(("id" = String, Path)),
    responses((status = 200, body = Session), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
fn put_session() {}

#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path), ("namespace" = String, Query)),
    responses((status = 200, body = Session), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
fn get_session() {}

#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path), ("namespace" = String, Query)),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
fn delete_session() {}

#[utoipa::path(post, path = "/v1/sessions/{id}/messages", tag = "sessions", request_body = AppendMessages,
    params(("id" = String, Path)),
    responses((status = 200, body = Appended), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 409, body = ErrorResponse)))]
fn append_messages() {}

#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    params(("namespace" = String, Query), ("user_id" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = SessionPage), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
fn list_sessions() {}

#[utoipa::path(post, path = "/v1/sessions/{id}/promote", tag = "sessions", request_body = Promote,
    params(("id" = String, Path)),
    responses((status = 200, body = CreatedBatch), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
fn promote() {}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process is up")))]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "Loaded and caught up"), (status = 503, description = "Not yet")))]
fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
fn metrics() {}
