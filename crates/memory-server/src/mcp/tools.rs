//! The MCP tools, resource template and prompt over the memory service.
//!
//! Every tool is a thin adapter: parse its arguments, find who is calling, call
//! the same [`MemoryService`] operation the REST route calls, and return its
//! result as structured content (plus the same JSON as text). A failure is a
//! tool result with `isError: true` whose text says what to fix.

use std::sync::Arc;

use axum::http::request::Parts;
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    Extensions, Implementation, ListResourceTemplatesResult, PaginatedRequestParams, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents,
    ResourceTemplate, Role as PromptRole, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData, Json, RoleServer, ServerHandler, prompt, prompt_handler, prompt_router, tool,
    tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::model::{
    AppendMessages, Appended, ContextBlock, ContextRequest, CreatedBatch, ExtractRequest, Job,
    Memory, MemoryFilter, MemoryPage, MemoryPatch, NamespacePolicy, NamespaceSettings, NewMemory,
    NewMessage, SearchRequest, SearchResponse, Session,
};
use crate::service::MemoryService;

/// The resource template's URI scheme.
const SCHEME: &str = "memory://";

/// The MCP server: one per MCP session (cheap to clone), all sharing one service.
pub struct MemoryMcp {
    service: Arc<MemoryService>,
    /// Who stdio callers are; HTTP callers are authenticated on every request.
    local: Option<Principal>,
    tool_router: ToolRouter<Self>,
    prompt_router: PromptRouter<Self>,
}

impl MemoryMcp {
    /// Each tool's input schema by tool name (for checking arguments' shape
    /// before rmcp reads them: [`crate::shape`]).
    pub fn input_schemas(&self) -> std::collections::HashMap<String, serde_json::Value> {
        self.tool_router
            .list_all()
            .into_iter()
            .map(|t| {
                let schema = serde_json::Value::Object((*t.input_schema).clone());
                (t.name.into_owned(), schema)
            })
            .collect()
    }
}

impl Clone for MemoryMcp {
    fn clone(&self) -> Self {
        Self {
            service: Arc::clone(&self.service),
            local: self.local.clone(),
            tool_router: self.tool_router.clone(),
            prompt_router: self.prompt_router.clone(),
        }
    }
}

/// `memory_store` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreArgs {
    /// One or more memories to store, in order. Identical text in the same
    /// scope is not stored twice: the existing memory comes back flagged
    /// `duplicate`. Under a near-duplicate policy, a memory very similar to
    /// one already stored comes back as that one with `near_duplicate` set,
    /// unless `allow_near_duplicate` is true.
    pub memories: Vec<NewMemory>,
}

/// Arguments naming one memory.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryRef {
    /// The memory's id (a UUID).
    pub id: String,
    /// The agent the caller acts as (to see its private memories; a bound key overrides it).
    #[serde(default)]
    pub as_agent: Option<String>,
}

/// `memory_update` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// The memory's id (a UUID).
    pub id: String,
    /// What to change; absent fields stay. A new `text` is re-embedded. Give
    /// `version` to update only if nobody changed the memory since you read it.
    pub changes: MemoryPatch,
    /// The agent the caller acts as (a bound key overrides it).
    #[serde(default)]
    pub as_agent: Option<String>,
}

/// `memory_delete` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteArgs {
    /// The memory's id (a UUID).
    pub id: String,
    /// Delete only if the memory is still at this version.
    #[serde(default)]
    pub version: Option<u64>,
    /// The agent the caller acts as (a bound key overrides it).
    #[serde(default)]
    pub as_agent: Option<String>,
}

/// What `memory_delete` did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Deleted {
    /// The deleted memory's id.
    pub id: Uuid,
    /// Always true (a failed delete is an error).
    pub deleted: bool,
}

/// `memory_list` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Namespace to list.
    pub namespace: String,
    /// Conditions on the memories (all must hold).
    #[serde(default)]
    pub filter: MemoryFilter,
    /// Page size (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// The agent the caller acts as (a bound key overrides it).
    #[serde(default)]
    pub as_agent: Option<String>,
}

/// `session_get` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRef {
    /// Namespace of the session.
    pub namespace: String,
    /// The session's id.
    pub session_id: String,
}

/// `memory_policy` and `memory_settings` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyArgs {
    /// The namespace.
    pub namespace: String,
}

/// `session_append` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendArgs {
    /// Namespace of the session.
    pub namespace: String,
    /// The session's id (created on first append).
    pub session_id: String,
    /// Messages to append, in order.
    pub messages: Vec<NewMessage>,
    /// The user the session belongs to (set when it is created).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Messages the session keeps (older ones are trimmed and counted).
    #[serde(default)]
    pub window: Option<usize>,
    /// Resets the session's time to live, in seconds.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// `recall` prompt arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RecallArgs {
    /// Namespace to recall from.
    pub namespace: String,
    /// The task to recall context for.
    pub task: String,
    /// Session whose recent messages to include.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// A tool's outcome: structured content, or the error text. (Tool signatures
/// spell the type out: the macro reads the output schema off `Json<T>`.)
type ToolResult<T> = Result<Json<T>, String>;

fn parse_id(raw: &str) -> Result<Uuid, String> {
    crate::validate::memory_id(raw).map_err(ApiError::tool_message)
}

impl MemoryMcp {
    /// Who made this call: the principal the HTTP layer authenticated, or the
    /// stdio principal.
    fn caller(&self, ext: &Extensions) -> Result<Principal, ApiError> {
        if let Some(parts) = ext.get::<Parts>() {
            return parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
                ApiError::Unauthenticated(
                    "missing API key: send `Authorization: Bearer <key>`".into(),
                )
            });
        }
        self.local.clone().ok_or_else(|| {
            ApiError::Unauthenticated("this transport has no caller identity configured".into())
        })
    }

    /// Runs `op` as the caller; failures become the tool's error text.
    async fn run<T, F>(&self, ext: &Extensions, op: impl FnOnce(Principal) -> F) -> ToolResult<T>
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        let who = self.caller(ext).map_err(ApiError::tool_message)?;
        op(who).await.map(Json).map_err(ApiError::tool_message)
    }
}

#[tool_router]
impl MemoryMcp {
    /// A server over `service`; `local` is who stdio callers act as.
    pub fn new(service: Arc<MemoryService>, local: Option<Principal>) -> Self {
        Self {
            service,
            local,
            tool_router: Self::tool_router(),
            prompt_router: Self::prompt_router(),
        }
    }

    #[tool(
        description = "Store one or more long-term memories (facts, events, procedures) in a namespace. Identical text in the same scope is returned, flagged duplicate, not stored twice; where the namespace's policy sets a near-duplicate threshold, a very similar memory is returned with near_duplicate set instead of being stored (set allow_near_duplicate to store it anyway).",
        annotations(
            title = "Store memories",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_store(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<StoreArgs>,
    ) -> Result<Json<CreatedBatch>, String> {
        self.run(&ext, |who| async move {
            let memories = self.service.create(&who, args.memories).await?;
            Ok(CreatedBatch { memories })
        })
        .await
    }

    #[tool(
        description = "Search a namespace's memories for a text query (or a vector). mode: hybrid (default: meaning and exact words, fused), vector (meaning) or keyword (exact words: names, ids, dates). Optional filters (agent, user, session, kind, tags, time ranges, metadata), top_k, min_score, recency weighting and mmr for diverse results; each result explains its score. Superseded memories (replaced by a newer fact) are left out unless include_superseded is true; as_of (RFC 3339) shows what was believed at that instant. Query text is data, never syntax.",
        annotations(
            title = "Search memories",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_search(
        &self,
        ext: Extensions,
        Parameters(req): Parameters<SearchRequest>,
    ) -> Result<Json<SearchResponse>, String> {
        self.run(
            &ext,
            |who| async move { self.service.search(&who, req).await },
        )
        .await
    }

    #[tool(
        description = "Get one memory by id.",
        annotations(
            title = "Get a memory",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_get(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<MemoryRef>,
    ) -> Result<Json<Memory>, String> {
        let id = parse_id(&args.id)?;
        self.run(&ext, |who| async move {
            self.service.get(&who, id, args.as_agent.as_deref()).await
        })
        .await
    }

    #[tool(
        description = "Change a memory's text, tags, metadata, kind, visibility or expiry. A new text is re-embedded; give changes.version to refuse the update if the memory changed since you read it.",
        annotations(
            title = "Update a memory",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_update(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<UpdateArgs>,
    ) -> Result<Json<Memory>, String> {
        let id = parse_id(&args.id)?;
        self.run(&ext, |who| async move {
            self.service
                .update(&who, id, args.changes, None, args.as_agent.as_deref())
                .await
        })
        .await
    }

    #[tool(
        description = "Delete one memory by id (optionally only at a given version).",
        annotations(
            title = "Delete a memory",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_delete(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<DeleteArgs>,
    ) -> Result<Json<Deleted>, String> {
        let id = parse_id(&args.id)?;
        self.run(&ext, |who| async move {
            self.service
                .delete(&who, id, args.version, args.as_agent.as_deref())
                .await?;
            Ok(Deleted { id, deleted: true })
        })
        .await
    }

    #[tool(
        description = "List a namespace's memories, newest first, with optional filters; pass next_cursor back as cursor for the next page.",
        annotations(
            title = "List memories",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_list(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<Json<MemoryPage>, String> {
        self.run(&ext, |who| async move {
            self.service
                .list(
                    &who,
                    &args.namespace,
                    &args.filter,
                    args.as_agent.as_deref(),
                    args.limit.unwrap_or(crate::model::DEFAULT_LIST_LIMIT),
                    args.cursor.as_deref(),
                )
                .await
        })
        .await
    }

    #[tool(
        description = "Read a namespace's memory policy: the near-duplicate threshold and the extraction settings (strategy, model, when it runs, budget) in force, and whether they were set for the namespace or come from the server's configuration.",
        annotations(
            title = "Read the memory policy",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_policy(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<PolicyArgs>,
    ) -> Result<Json<NamespacePolicy>, String> {
        self.run(&ext, |who| async move {
            self.service.policy(&who, &args.namespace).await
        })
        .await
    }

    #[tool(
        description = "Read a namespace's search settings in force: default mode, fusion and alpha, the contextual-text template (by name and written out), keyword analysis and BM25, where they come from (set through the API, or the server's configuration), the latest re-index after a template change, and the templates that can be named.",
        annotations(
            title = "Read the search settings",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_settings(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<PolicyArgs>,
    ) -> Result<Json<NamespaceSettings>, String> {
        self.run(&ext, |who| async move {
            self.service.settings(&who, &args.namespace).await
        })
        .await
    }

    #[tool(
        description = "Queue the extraction of long-term memories from a session's messages not yet extracted (the namespace's policy must turn extraction on). A background job asks the policy's model for candidate memories and decides per candidate to add, update, supersede (keep the old one as history) or ignore; it never deletes. Returns the job; its decisions appear in it when done. Queuing twice is one job.",
        annotations(
            title = "Extract memories from a session",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_extract(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<SessionRef>,
    ) -> Result<Json<Job>, String> {
        self.run(&ext, |who| async move {
            let req = ExtractRequest {
                namespace: args.namespace,
            };
            self.service.extract(&who, &args.session_id, req).await
        })
        .await
    }

    #[tool(
        description = "Get a session's working memory: its recent messages (oldest first), summary and data.",
        annotations(
            title = "Get a session",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn session_get(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<SessionRef>,
    ) -> Result<Json<Session>, String> {
        self.run(&ext, |who| async move {
            self.service
                .get_session(&who, &args.namespace, &args.session_id)
                .await
        })
        .await
    }

    #[tool(
        description = "Append messages to a session atomically (creating it if needed); the session keeps a window of recent messages and counts those it trims.",
        annotations(
            title = "Append to a session",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn session_append(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<AppendArgs>,
    ) -> Result<Json<Appended>, String> {
        self.run(&ext, |who| async move {
            let req = AppendMessages {
                namespace: args.namespace,
                user_id: args.user_id,
                messages: args.messages,
                window: args.window,
                ttl_secs: args.ttl_secs,
            };
            self.service
                .append_messages(&who, &args.session_id, req)
                .await
        })
        .await
    }

    #[tool(
        description = "Build a ready-to-use context block for a task: the session's recent messages, then the long-term memories most relevant to the query, within a character budget (max_chars, default 4000).",
        annotations(
            title = "Recall context",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_context(
        &self,
        ext: Extensions,
        Parameters(req): Parameters<ContextRequest>,
    ) -> Result<Json<ContextBlock>, String> {
        self.run(
            &ext,
            |who| async move { self.service.context(&who, req).await },
        )
        .await
    }
}

// The macro adds an undocumented public helper per prompt.
#[allow(missing_docs)]
#[prompt_router]
impl MemoryMcp {
    /// Recalls what the memory knows about a task and asks the model to use it.
    #[prompt(
        name = "recall",
        description = "Recall the memories and recent session messages relevant to a task, ready to work on it."
    )]
    async fn recall(
        &self,
        ext: Extensions,
        Parameters(args): Parameters<RecallArgs>,
    ) -> Result<Vec<PromptMessage>, ErrorData> {
        let who = self.caller(&ext).map_err(mcp_error)?;
        let block = self
            .service
            .context(
                &who,
                ContextRequest {
                    namespace: args.namespace,
                    query: args.task.clone(),
                    session_id: args.session_id,
                    ..ContextRequest::default()
                },
            )
            .await
            .map_err(mcp_error)?;
        let known = if block.context.is_empty() {
            "Nothing relevant is stored yet.".to_owned()
        } else {
            block.context
        };
        Ok(vec![PromptMessage::new_text(
            PromptRole::User,
            format!(
                "Here is what you remember that is relevant:\n\n{known}\nTask: {}",
                args.task
            ),
        )])
    }
}

/// A protocol-level error (resources, prompts) for a service error.
fn mcp_error(e: ApiError) -> ErrorData {
    let make = match &e {
        ApiError::NotFound(_) => ErrorData::resource_not_found,
        ApiError::BadRequest { .. } | ApiError::TooLarge(_) => ErrorData::invalid_params,
        ApiError::Unauthenticated(_) | ApiError::Forbidden(_) => ErrorData::invalid_request,
        _ => ErrorData::internal_error,
    };
    make(e.tool_message(), None)
}

/// Splits `memory://{namespace}/{id}`.
fn parse_uri(uri: &str) -> Result<(&str, Uuid), ApiError> {
    let bad = || {
        ApiError::invalid(
            "uri",
            format!("`{uri}` is not a memory URI; use memory://{{namespace}}/{{id}}"),
        )
    };
    let rest = uri.strip_prefix(SCHEME).ok_or_else(bad)?;
    let (ns, id) = rest.rsplit_once('/').ok_or_else(bad)?;
    if ns.is_empty() {
        return Err(bad());
    }
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((ns, id))
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for MemoryMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            "ai-orchestra-memory",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Long-term memory for agents. Store facts with memory_store, find them with \
             memory_search, and call memory_context before a task for a ready-made context \
             block. Every call names its namespace explicitly.",
        )
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let template = ResourceTemplate::new(format!("{SCHEME}{{namespace}}/{{id}}"), "memory")
            .with_description("One stored memory as JSON")
            .with_mime_type("application/json");
        Ok(ListResourceTemplatesResult::with_all_items(vec![template]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let who = self.caller(&context.extensions).map_err(mcp_error)?;
        let (ns, id) = parse_uri(&request.uri).map_err(mcp_error)?;
        let memory = self.service.get(&who, id, None).await.map_err(mcp_error)?;
        // An id from another namespace is not found here, as over REST.
        if memory.namespace != ns {
            return Err(mcp_error(ApiError::NotFound(format!(
                "memory {id} not found in `{ns}`"
            ))));
        }
        let text = serde_json::to_string(&memory)
            .map_err(|e| mcp_error(ApiError::Internal(e.to_string())))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri).with_mime_type("application/json"),
        ])
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_uris_parse_and_bad_ones_say_why() {
        let id = Uuid::now_v7();
        let uri = format!("memory://team/a/{id}");
        let (ns, got) = parse_uri(&uri).expect("valid");
        assert_eq!((ns, got), ("team/a", id));
        for bad in [
            "memory://x",
            "memory:///nope",
            "file://a/b",
            &format!("memory:///{id}"),
        ] {
            let e = parse_uri(bad).expect_err(bad);
            assert!(
                e.tool_message().contains("memory://{namespace}/{id}"),
                "{bad}"
            );
        }
    }
}
