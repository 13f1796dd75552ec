//! The REST API over HTTP: the router and the state every handler shares
//! ([`AppState`]), the handlers ([`routes`]), request extractors
//! ([`extract`]), the API description ([`openapi`]) and what every response
//! gets on its way out ([`respond`]). `/mcp` is mounted from [`crate::mcp`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::auth::KeyRing;
use crate::config::{McpConfig, StoreLocation};
use crate::mcp::MemoryMcp;
use crate::mcp::protocol_sessions::ProtocolSessions;
use crate::service::MemoryService;
use kit::fault::{self, Faults};

pub mod extract;
pub mod openapi;
pub mod respond;
pub mod routes;

/// Shared state of every handler.
pub struct AppState {
    /// The memory operations.
    pub service: Arc<MemoryService>,
    /// The API keys.
    pub keys: Arc<KeyRing>,
    /// Where the store is (for `/readyz`).
    pub store: Arc<StoreLocation>,
    /// Why this embedder runs, e.g. `auto: the stored namespaces were
    /// written with builtin-hash-v1-384` (for `/readyz`).
    pub embedder_choice: Arc<str>,
}

impl Clone for AppState {
    fn clone(&self) -> Self {
        Self {
            service: Arc::clone(&self.service),
            keys: Arc::clone(&self.keys),
            store: Arc::clone(&self.store),
            embedder_choice: Arc::clone(&self.embedder_choice),
        }
    }
}

impl FromRef<AppState> for Arc<KeyRing> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.keys)
    }
}

/// The router over `state`; `mcp` adds the `/mcp` endpoint when given;
/// `faults` (test-only) fails a share of requests.
pub fn router(
    state: AppState,
    max_body_bytes: usize,
    mcp: Option<McpEndpoint>,
    faults: Option<Arc<Faults>>,
) -> Router {
    let routes = Router::new()
        .route(
            "/v1/memories",
            post(routes::memories::create).get(routes::memories::list),
        )
        .route("/v1/memories/search", post(routes::memories::search))
        .route("/v1/memories/delete", post(routes::memories::bulk_delete))
        .route(
            "/v1/memories/{id}",
            get(routes::memories::get)
                .patch(routes::memories::update)
                .delete(routes::memories::delete),
        )
        .route("/v1/memories/{id}/history", get(routes::memories::history))
        .route(
            "/v1/memories/{id}/supersede",
            post(routes::memories::supersede),
        )
        .route("/v1/namespaces", get(routes::namespaces::list))
        .route(
            "/v1/namespaces/{namespace}/policy",
            get(routes::namespaces::policy)
                .put(routes::namespaces::set_policy)
                .delete(routes::namespaces::reset_policy),
        )
        .route(
            "/v1/namespaces/{namespace}/settings",
            get(routes::namespaces::settings)
                .put(routes::namespaces::set_settings)
                .delete(routes::namespaces::reset_settings),
        )
        .route("/v1/sessions", get(routes::sessions::list))
        .route(
            "/v1/sessions/{id}",
            get(routes::sessions::get)
                .put(routes::sessions::put)
                .delete(routes::sessions::delete),
        )
        .route("/v1/sessions/{id}/messages", post(routes::sessions::append))
        .route("/v1/sessions/{id}/promote", post(routes::sessions::promote))
        .route("/v1/sessions/{id}/extract", post(routes::jobs::extract))
        .route("/v1/jobs", get(routes::jobs::list))
        .route("/v1/export", get(routes::portable::export))
        .route("/v1/import", post(routes::portable::import))
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .route("/openapi.json", get(routes::ops::openapi))
        .route("/docs", get(routes::ops::docs));
    let routes = match mcp {
        Some(m) => crate::mcp::http::add_route(
            routes,
            MemoryMcp::new(Arc::clone(&state.service), None),
            Arc::clone(&state.keys),
            &m.settings,
            max_body_bytes,
            m.sessions,
            m.stop,
        ),
        None => routes,
    };
    // Inside the metrics layer, so injected failures are counted like real ones.
    let routes = match faults {
        Some(f) => routes.route_layer(axum::middleware::from_fn_with_state(f, fault::inject)),
        None => routes,
    };
    routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.service.metrics().http(),
            kit::metrics::track,
        ))
        .fallback(routes::ops::not_found)
        .method_not_allowed_fallback(routes::ops::method_not_allowed)
        .layer(axum::middleware::map_response(
            crate::http::respond::end_json_with_newline,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(kit::telemetry::request_span))
        // A bug must not take the connection down with it: a panic becomes a logged 500.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state)
}

/// What the `/mcp` endpoint needs besides the service.
pub struct McpEndpoint {
    /// Host and Origin allowlists.
    pub settings: McpConfig,
    /// Where older-era MCP sessions are kept.
    pub sessions: Arc<ProtocolSessions>,
    /// Cancelled at shutdown, closing open MCP streams.
    pub stop: CancellationToken,
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    crate::error::ApiError::Internal("handler panicked".into()).into_response()
}
