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
    Action, AppendMessages, Appended, Bm25Params, BulkDelete, BulkDeleted, ContextWindow,
    CreateBody, CreateResponse, Created, CreatedBatch, Decision, ErrorResponse, ExportSummary,
    ExportTrailer, ExtractRequest, ExtractionPolicy, Feedback, FeedbackUsed, Fusion, History,
    Imported, Job, JobList, JobState, JobUsage, Kind, Memory, MemoryFilter, MemoryPage,
    MemoryPatch, MemoryPolicy, Message, Mmr, NamespaceList, NamespacePolicy, NamespaceSettings,
    NamespaceSummary, NearDuplicate, Neighbor, NewMemories, NewMemory, NewMessage, PolicySource,
    PortableMemory, Promote, PutSession, QueryTime, Recency, ReindexProgress, ReindexState,
    Revision, SearchHit, SearchMode, SearchRequest, SearchResponse, Session, SessionPage,
    SessionSummary, SettingsChange, Strategy, Supersede, Superseded, TimeRange, Visibility,
};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "AI Orchestra memory API", description = "Memories, search and sessions for AI agents. Errors: `{\"error\": {\"code\", \"message\", \"details\"}}`."),
    paths(
        create_memory, list_memories, get_memory, update_memory, delete_memory, memory_history, supersede_memory,
        search_memories, bulk_delete, list_namespaces, get_settings, set_settings, reset_settings, get_policy, set_policy, reset_policy, export, import, put_session, get_session, delete_session,
        append_messages, list_sessions, promote, extract_session, list_jobs, healthz, readyz, metrics
    ),
    components(schemas(
        Memory, NewMemory, NewMemories, Created, CreatedBatch, CreateBody, CreateResponse,
        MemoryPatch, MemoryFilter, Recency, SearchRequest, SearchHit, SearchResponse, MemoryPage,
        Revision, History, BulkDelete, BulkDeleted, PortableMemory, Imported, Message, NewMessage,
        Session, PutSession, AppendMessages, Appended, SessionSummary, SessionPage, Promote, Kind,
        Visibility, SearchMode, Fusion, Mmr, NamespaceSummary, NamespaceList, ErrorResponse,
        ExportTrailer, ExportSummary, MemoryPolicy, NamespacePolicy, PolicySource, NearDuplicate, Supersede, Superseded,
        ExtractionPolicy, Strategy, Job, JobState, JobList, JobUsage, Decision, Action, ExtractRequest,
        ContextWindow, Neighbor, QueryTime, TimeRange, NamespaceSettings, Feedback, FeedbackUsed, Bm25Params,
        SettingsChange, ReindexProgress, ReindexState
    )),
    modifiers(&BearerAuth, &Links, &InputRules),
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

/// OpenAPI links: which response values feed which later request (a created
/// memory's id into get, update, delete and history; a stored session's id
/// and namespace into its other operations). Clients and generators such as
/// schemathesis's stateful phase follow them to reach real records.
struct Links;

/// A link: its name, the operation it leads to, and that operation's
/// parameters as runtime expressions over this response.
type LinkSpec = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const CREATED_ID: &[(&str, &str)] = &[("id", "$response.body#/memory/id")];
/// The id, and the version a conditional change is based on (the `ETag`).
const CREATED_ID_VERSION: &[(&str, &str)] = &[
    ("id", "$response.body#/memory/id"),
    ("header.If-Match", "$response.header.ETag"),
];
const SESSION_ID: &[(&str, &str)] = &[("id", "$request.path.id")];
const SESSION_ID_NS: &[(&str, &str)] = &[
    ("id", "$request.path.id"),
    ("namespace", "$response.body#/namespace"),
];

impl Links {
    const FROM_CREATED_MEMORY: &[LinkSpec] = &[
        ("GetMemory", "get_memory", CREATED_ID),
        ("UpdateMemory", "update_memory", CREATED_ID_VERSION),
        ("DeleteMemory", "delete_memory", CREATED_ID_VERSION),
        ("MemoryHistory", "memory_history", CREATED_ID),
        ("SupersedeMemory", "supersede_memory", CREATED_ID_VERSION),
    ];
    const FROM_STORED_SESSION: &[LinkSpec] = &[
        ("GetSession", "get_session", SESSION_ID_NS),
        ("DeleteSession", "delete_session", SESSION_ID_NS),
        ("AppendMessages", "append_messages", SESSION_ID),
        ("PromoteSession", "promote", SESSION_ID),
        ("ExtractSession", "extract_session", SESSION_ID),
    ];

    /// Adds `links` to the `status` response of `method` on `path`.
    fn add(
        openapi: &mut utoipa::openapi::OpenApi,
        path: &str,
        method: fn(&mut utoipa::openapi::PathItem) -> Option<&mut utoipa::openapi::path::Operation>,
        status: &str,
        links: &[LinkSpec],
    ) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::link::LinkBuilder;
        let Some(RefOr::T(response)) = openapi
            .paths
            .paths
            .get_mut(path)
            .and_then(method)
            .and_then(|op| op.responses.responses.get_mut(status))
        else {
            return;
        };
        for (name, operation_id, parameters) in links {
            let link = parameters.iter().fold(
                LinkBuilder::new().operation_id(*operation_id),
                |link, (parameter, expression)| link.parameter(*parameter, *expression),
            );
            response
                .links
                .insert((*name).to_owned(), RefOr::T(link.build()));
        }
    }
}

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        Links::add(
            openapi,
            "/v1/memories",
            |item| item.post.as_mut(),
            "201",
            Links::FROM_CREATED_MEMORY,
        );
        Links::add(
            openapi,
            "/v1/sessions/{id}",
            |item| item.put.as_mut(),
            "200",
            Links::FROM_STORED_SESSION,
        );
    }
}

/// The server's input checks (`validate.rs`) at the default limits, stated
/// once here for every request schema and parameter they apply to, so that
/// clients and fuzzers see them: namespaces, id-like labels and texts.
struct InputRules;

/// What `validate::namespace` accepts.
const NAMESPACE: (&str, Option<usize>) = ("^[A-Za-z0-9._:-]{1,128}$", None);
/// What `validate::label` accepts: something besides whitespace, no control characters.
const LABEL: (&str, Option<usize>) = (
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
    Some(128),
);
/// What `validate::text` accepts: something besides whitespace.
const TEXT: (&str, Option<usize>) = ("\\S", Some(32_000));
/// A comma-separated list of labels (`tags_any=a,b`): no control characters.
const LABEL_LIST: (&str, Option<usize>) = ("^[^\\x00-\\x1f\\x7f-\\x9f]*$", None);
/// What `extract::if_match` accepts: a version, quoted or not, optionally weak.
const VERSION: (&str, Option<usize>) = ("^(W/)?(\"[0-9]{1,19}\"|[0-9]{1,19})$", None);

/// The request bodies whose fields [`InputRules`] constrains.
const REQUEST_SCHEMAS: &[&str] = &[
    "NewMemory",
    "MemoryPatch",
    "MemoryFilter",
    "SearchRequest",
    "BulkDelete",
    "PutSession",
    "AppendMessages",
    "NewMessage",
    "Promote",
];

impl InputRules {
    /// The rule for a body field called `name`, if any (for an array field,
    /// the rule of its items).
    fn field_rule(name: &str) -> Option<(&'static str, Option<usize>)> {
        match name {
            "namespace" => Some(NAMESPACE),
            "agent_id" | "user_id" | "session_id" | "as_agent" | "idempotency_key" | "role"
            | "tags" | "tags_any" | "tags_all" => Some(LABEL),
            "text" | "query" | "content" => Some(TEXT),
            _ => None,
        }
    }

    /// The rule for a parameter of an operation on `path`, if any.
    fn parameter_rule(
        path: &str,
        p: &utoipa::openapi::path::Parameter,
    ) -> Option<(&'static str, Option<usize>)> {
        use utoipa::openapi::path::ParameterIn;
        match p.name.as_str() {
            // Session ids are labels; memory ids are UUIDs (typed already).
            "id" if path.starts_with("/v1/sessions/") && p.parameter_in == ParameterIn::Path => {
                Some(LABEL)
            }
            "tags_any" | "tags_all" => Some(LABEL_LIST),
            "If-Match" => Some(VERSION),
            name => Self::field_rule(name),
        }
    }

    /// Sets `rule` on a string schema, or on the items of an array.
    fn apply(
        schema: &mut utoipa::openapi::RefOr<utoipa::openapi::Schema>,
        rule: (&str, Option<usize>),
    ) {
        use utoipa::openapi::schema::ArrayItems;
        use utoipa::openapi::{RefOr, Schema};
        match schema {
            RefOr::T(Schema::Object(o)) => {
                o.pattern = Some(rule.0.to_owned());
                o.max_length = rule.1;
            }
            RefOr::T(Schema::Array(a)) => {
                if let ArrayItems::RefOrSchema(items) = &mut a.items {
                    Self::apply(items, rule);
                }
            }
            _ => {}
        }
    }
}

impl Modify for InputRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        if let Some(components) = openapi.components.as_mut() {
            for name in REQUEST_SCHEMAS {
                let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*name)
                else {
                    continue;
                };
                for (field, schema) in object.properties.iter_mut() {
                    if let Some(rule) = Self::field_rule(field) {
                        Self::apply(schema, rule);
                    }
                }
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                for p in op.parameters.iter_mut().flatten() {
                    if let Some(rule) = Self::parameter_rule(path, p)
                        && let Some(schema) = p.schema.as_mut()
                    {
                        Self::apply(schema, rule);
                    }
                }
            }
        }
    }
}

/// The document as a JSON value, for checking request bodies against it
/// ([`crate::shape`]).
pub fn document() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(json()).unwrap_or_default())
}

/// The document as JSON, built on first use (it never changes while the
/// server runs).
pub fn json() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let Ok(mut doc) = serde_json::to_value(ApiDoc::openapi()) else {
            return "{}".into();
        };
        camel_case_links(&mut doc);
        serde_json::to_string(&doc).unwrap_or_else(|_| "{}".into())
    })
}

/// utoipa 5.5 writes a Link's `operationId` and `requestBody` in snake_case;
/// the OpenAPI spec (and every client reading links) wants camelCase.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(from) {
                link.insert(to.to_owned(), value);
            }
        }
    }
}

#[utoipa::path(post, path = "/v1/memories", tag = "memories", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first memory")),
    responses(
        (status = 201, description = "Created", body = Created,
            headers(("Location" = String, description = "The new memory's URL"), ("ETag" = String, description = "Its version"))),
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
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000), ("cursor" = Option<String>, Query),
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

#[utoipa::path(post, path = "/v1/memories/{id}/supersede", tag = "memories", request_body = Supersede,
    params(("id" = Uuid, Path), ("as_agent" = Option<String>, Query),
        ("If-Match" = Option<String>, Header, description = "The version the replacement is based on")),
    responses((status = 200, body = Superseded), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
        (status = 412, body = ErrorResponse), (status = 502, body = ErrorResponse),
        (status = 503, body = ErrorResponse)))]
fn supersede_memory() {}

#[utoipa::path(post, path = "/v1/memories/search", tag = "memories", request_body = SearchRequest,
    params(("fields" = Option<String>, Query, description = "Comma-separated memory fields to return in each hit's `memory` (e.g. `text,metadata`); `id` is always returned, and the hit's scores and ranks are unchanged. Without it, whole memories.")),
    responses((status = 200, body = SearchResponse, description = "Results; with `fields`, each `memory` holds only `id` and the fields named"), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 502, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn search_memories() {}

#[utoipa::path(post, path = "/v1/memories/delete", tag = "memories", request_body = BulkDelete,
    responses((status = 200, body = BulkDeleted), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
fn bulk_delete() {}

#[utoipa::path(get, path = "/v1/export", tag = "portability",
    params(("namespace" = String, Query), ("include_vectors" = Option<bool>, Query), ("as_agent" = Option<String>, Query)),
    responses((status = 200, description = "NDJSON, one PortableMemory per line, then one ExportTrailer line; without the trailer the export was cut short", content_type = "application/x-ndjson", body = PortableMemory),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 503, body = ErrorResponse)))]
fn export() {}

#[utoipa::path(post, path = "/v1/import", tag = "portability",
    request_body(content = PortableMemory, content_type = "application/x-ndjson", description = "One PortableMemory per line; an export's ExportTrailer line may end it (its count is checked)"),
    responses((status = 200, body = Imported), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 409, body = ErrorResponse), (status = 413, body = ErrorResponse)))]
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
    params(("namespace" = String, Query), ("user_id" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, body = SessionPage), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
fn list_sessions() {}

#[utoipa::path(post, path = "/v1/sessions/{id}/promote", tag = "sessions", request_body = Promote,
    params(("id" = String, Path)),
    responses((status = 200, body = CreatedBatch), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
fn promote() {}

#[utoipa::path(post, path = "/v1/sessions/{id}/extract", tag = "jobs", request_body = ExtractRequest,
    params(("id" = String, Path)),
    responses((status = 202, body = Job, description = "The queued job (or the one already queued for these messages)"),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse, description = "Extraction is off, or nothing is new")))]
fn extract_session() {}

#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    params(("namespace" = String, Query), ("state" = Option<JobState>, Query),
        ("session_id" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, body = JobList), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
fn list_jobs() {}

#[utoipa::path(get, path = "/v1/namespaces", tag = "memories",
    params(("as_agent" = Option<String>, Query, description = "The agent whose private memories count (a bound key overrides it)")),
    responses((status = 200, description = "Namespaces the key can read that hold memories it can see", body = NamespaceList),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
fn list_namespaces() {}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/settings", tag = "memories",
    params(("namespace" = String, Path)),
    responses((status = 200, description = "The namespace's search settings in force (template, fusion, analysis) and where they come from", body = NamespaceSettings),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse)))]
fn get_settings() {}

#[utoipa::path(put, path = "/v1/namespaces/{namespace}/settings", tag = "memories", request_body = SettingsChange,
    params(("namespace" = String, Path)),
    responses((status = 200, description = "Set (needs an `admin` key for the namespace); a new template starts a background re-index whose progress is `reindex`, a new analysis re-analyzes the keyword index", body = NamespaceSettings),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse)))]
fn set_settings() {}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/settings", tag = "memories",
    params(("namespace" = String, Path)),
    responses((status = 200, description = "The namespace's own settings are dropped; the configured ones apply (`admin`)", body = NamespaceSettings),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse)))]
fn reset_settings() {}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/policy", tag = "memories",
    params(("namespace" = String, Path)),
    responses((status = 200, description = "The namespace's memory policy in force and where it comes from", body = NamespacePolicy),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse)))]
fn get_policy() {}

#[utoipa::path(put, path = "/v1/namespaces/{namespace}/policy", tag = "memories", request_body = MemoryPolicy,
    params(("namespace" = String, Path)),
    responses((status = 200, description = "Set (needs an `admin` key for the namespace)", body = NamespacePolicy),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse)))]
fn set_policy() {}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/policy", tag = "memories",
    params(("namespace" = String, Path)),
    responses((status = 200, description = "The namespace's own policy is dropped; the server's default applies (`admin`)", body = NamespacePolicy),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse)))]
fn reset_policy() {}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process is up")))]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "Loaded and caught up"), (status = 503, description = "Not yet")))]
fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
fn metrics() {}
