//! Streamable HTTP at `/mcp`: API-key auth in front of rmcp's service.
//!
//! Both protocol eras are served by the one endpoint: 2026-07-28 requests are
//! stateless; 2025-11-25 clients get an `Mcp-Session-Id` whose state lives in
//! the shared store ([`super::protocol_sessions`]), so any instance can serve it. A
//! session answers only the key and agent that opened it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::store::SessionStore;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;

use super::MemoryMcp;
use super::protocol_sessions::{ProtocolSessions, SessionOwners};
use crate::auth::{KeyRing, Principal};
use crate::config::McpConfig;
use crate::error::ApiError;

/// Origins accepted when `mcp.allowed_origins` is empty: pages served from
/// this machine (e.g. a local MCP inspector), on any port.
const LOOPBACK_ORIGINS: [&str; 6] = [
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// SSE keep-alive pings on open streams (proxies drop idle connections).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Adds `/mcp` to `router`: authentication, then rmcp's streamable HTTP service.
pub fn add_route<St: Clone + Send + Sync + 'static>(
    router: Router<St>,
    mcp: MemoryMcp,
    keys: Arc<KeyRing>,
    settings: &McpConfig,
    max_body_bytes: usize,
    sessions: Arc<ProtocolSessions>,
    stop: CancellationToken,
) -> Router<St> {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_sse_keep_alive(Some(KEEP_ALIVE))
        .with_max_request_body_bytes(max_body_bytes)
        .with_cancellation_token(stop)
        // Validation is always on: a request whose Origin is not listed is
        // refused (clients that send no Origin are unaffected).
        .with_allowed_origins(if settings.allowed_origins.is_empty() {
            LOOPBACK_ORIGINS.iter().map(|o| o.to_string()).collect()
        } else {
            settings.allowed_origins.clone()
        })
        .enforce_origin_validation();
    if !settings.allowed_hosts.is_empty() {
        config = config.with_allowed_hosts(settings.allowed_hosts.clone());
    }
    let shapes = Shapes {
        max_body_bytes,
        tools: Arc::new(mcp.input_schemas()),
    };
    let owners: Arc<dyn SessionOwners> = Arc::clone(&sessions) as Arc<dyn SessionOwners>;
    config.session_store = Some(sessions as Arc<dyn SessionStore>);
    let rmcp = StreamableHttpService::new(
        move || Ok(mcp.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    router.route_service(
        "/mcp",
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(json_rpc_errors))
            .layer(axum::middleware::from_fn_with_state(
                Gate { keys, owners },
                authenticate,
            ))
            .layer(axum::middleware::from_fn_with_state(shapes, well_formed))
            .service(rmcp),
    )
}

/// A JSON-RPC error response (`id` null when the request's is unknown).
fn json_rpc_error(status: StatusCode, id: Value, code: i64, message: String) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    });
    (status, axum::Json(body)).into_response()
}

/// JSON-RPC's "parse error", "invalid request" and "invalid params" codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INVALID_PARAMS: i64 = -32602;

/// What a message's shape is checked against: the body limit, and each
/// tool's input schema.
#[derive(Clone)]
struct Shapes {
    max_body_bytes: usize,
    tools: Arc<HashMap<String, Value>>,
}

/// Checks a POST body's shape before rmcp reads it, so that malformed JSON
/// is a JSON-RPC parse error (400, not rmcp's 415 in plain text) and a
/// request whose `params` or tool `arguments` are not objects, or whose
/// arguments hold an array where the tool's schema has an object, is
/// "invalid params" in both protocol eras (rmcp would call the first an
/// unknown method, and read the last as an object).
async fn well_formed(State(shapes): State<Shapes>, req: Request, next: Next) -> Response {
    let limit = shapes.max_body_bytes;
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return json_rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                Value::Null,
                INVALID_REQUEST,
                format!("the request body is over limits.max_body_bytes ({limit} bytes)"),
            );
        }
    };
    let message: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return json_rpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                PARSE_ERROR,
                format!("Parse error: the body is not JSON ({e})"),
            );
        }
    };
    if let Some(problem) = shape_problem(&message, &shapes.tools) {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let status = if id.is_null() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        return json_rpc_error(status, id, problem.0, problem.1);
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// What is wrong with a JSON-RPC message's shape, as a code and a message.
fn shape_problem(message: &Value, tools: &HashMap<String, Value>) -> Option<(i64, String)> {
    let Some(object) = message.as_object() else {
        return Some((
            INVALID_REQUEST,
            "Invalid request: a JSON-RPC message is an object (batches are not accepted)".into(),
        ));
    };
    let params = object.get("params");
    if params.is_some_and(|p| !p.is_object()) {
        return Some((
            INVALID_PARAMS,
            "Invalid params: `params` must be an object".into(),
        ));
    }
    let arguments = params.and_then(|p| p.get("arguments"));
    if object.get("method").and_then(Value::as_str) == Some("tools/call")
        && arguments.is_some_and(|a| !a.is_object() && !a.is_null())
    {
        return Some((
            INVALID_PARAMS,
            "Invalid params: a tool's `arguments` must be an object".into(),
        ));
    }
    let tool = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .and_then(|name| tools.get(name));
    if let (Some(schema), Some(arguments)) = (tool, arguments)
        && let Err(e) = crate::shape::check(schema, schema, arguments)
    {
        return Some((INVALID_PARAMS, format!("Invalid params: {e}")));
    }
    None
}

/// Turns rmcp's plain-text HTTP errors (406, 413, 415, ...) into JSON-RPC
/// error bodies with the same status, so every error at `/mcp` is JSON.
async fn json_rpc_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned()
    } else {
        text
    };
    json_rpc_error(status, Value::Null, INVALID_REQUEST, message)
}

/// What stands in front of rmcp: the key ring, and who opened which session.
#[derive(Clone)]
struct Gate {
    keys: Arc<KeyRing>,
    owners: Arc<dyn SessionOwners>,
}

/// The header that carries an older-era protocol session.
const SESSION_HEADER: &str = "mcp-session-id";

/// Whom a session belongs to: the key and the agent it is bound to.
fn owner_of(who: &Principal) -> String {
    format!(
        "{}\u{1f}{}",
        who.key_name.as_deref().unwrap_or(""),
        who.agent_id.as_deref().unwrap_or("")
    )
}

/// Puts the caller's [`Principal`] in the request, or answers 401/403 itself;
/// a session id is honoured only for the key and agent that opened it (any
/// other caller gets 404, as for an unknown session), and a new session is
/// bound to its opener before the client learns its id.
async fn authenticate(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let who = match Principal::from_request_parts(&mut parts, &gate.keys).await {
        Ok(who) => who,
        Err(e) => return e.into_response(),
    };
    let owner = owner_of(&who);
    let session = parts
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session {
        match gate.owners.owner(id).await {
            Ok(Some(o)) if o == owner => {}
            Ok(_) => {
                return ApiError::NotFound("no such MCP session for this API key".into())
                    .into_response();
            }
            Err(e) => return ApiError::Unavailable(format!("MCP sessions: {e}")).into_response(),
        }
    }
    parts.extensions.insert(who);
    let response = next.run(Request::from_parts(parts, body)).await;
    if session.is_none()
        && let Some(id) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        && let Err(e) = gate.owners.bind(id, &owner).await
    {
        // Unbound, the session would answer nobody: say so now.
        return ApiError::Unavailable(format!("MCP session not recorded: {e}")).into_response();
    }
    response
}
