//! The HTTP API: the router and the state its handlers share ([`AppState`]),
//! the handlers ([`routes`]), run event streams over SSE ([`stream`]),
//! request extractors ([`extract`]) and the API description ([`openapi`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post};
use kit::auth::KeyRing;

use crate::agents::Agents;
use crate::config::Config;
use crate::memory::MemoryLink;
use crate::metrics::Metrics;
use crate::runs::Runs;

pub mod extract;
pub mod openapi;
pub mod routes;
pub mod stream;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Runs, threads and their records.
    pub runs: Arc<Runs>,
    /// The agents.
    pub agents: Arc<Agents>,
    /// The API keys.
    pub keys: Arc<KeyRing>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The memory server (for `/readyz`).
    pub memory: Option<Arc<MemoryLink>>,
    /// The configuration.
    pub config: Arc<Config>,
}

impl FromRef<AppState> for Arc<KeyRing> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.keys)
    }
}

/// The router over `state`; `faults` (test-only) fails a share of requests.
pub fn router(state: AppState, faults: Option<Arc<kit::fault::Faults>>) -> Router {
    let max_body = state.config.runs.max_body_bytes;
    let routes = Router::new()
        .route("/v1/agents", get(routes::list_agents))
        .route("/v1/agents/{name}", get(routes::get_agent))
        .route(
            "/v1/threads",
            post(routes::create_thread).get(routes::list_threads),
        )
        .route(
            "/v1/threads/{id}",
            get(routes::get_thread).delete(routes::delete_thread),
        )
        .route("/v1/threads/{id}/messages", get(routes::thread_messages))
        .route("/v1/threads/{id}/runs", post(routes::create_run))
        .route(
            "/v1/threads/{id}/runs/stream",
            post(routes::create_run_stream),
        )
        .route("/v1/threads/{id}/runs/{run_id}", get(routes::get_run))
        .route(
            "/v1/threads/{id}/runs/{run_id}/stream",
            get(routes::join_stream),
        )
        .route(
            "/v1/threads/{id}/runs/{run_id}/events",
            get(routes::run_events),
        )
        .route(
            "/v1/threads/{id}/runs/{run_id}/cancel",
            post(routes::cancel_run),
        )
        .route(
            "/v1/threads/{id}/runs/{run_id}/resume",
            post(routes::resume_run),
        )
        .route("/v1/runs", post(routes::stateless_run))
        .route("/v1/runs/stream", post(routes::stateless_run_stream))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(routes::openapi));
    // Inside the metrics layer, so injected failures are counted like real ones.
    let routes = match faults {
        Some(f) => routes.route_layer(axum::middleware::from_fn_with_state(f, kit::fault::inject)),
        None => routes,
    };
    routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.http(),
            kit::metrics::track,
        ))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(kit::telemetry::request_span))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send + 'static>| {
                use axum::response::IntoResponse;
                crate::error::ApiError::Internal("handler panicked".into()).into_response()
            },
        ))
        .with_state(state)
}
