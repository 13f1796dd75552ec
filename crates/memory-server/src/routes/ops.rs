//! Operational endpoints: liveness, readiness, and the JSON 404.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;
use vector_index::store::Store;

use crate::app::AppState;
use crate::error::ApiError;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 once the index has loaded and caught up with the store, else 503.
pub async fn readyz<S: Store>(State(app): State<AppState<S>>) -> impl IntoResponse {
    let c = app.service.collection();
    let r = c.replication();
    let ready = c.is_ready() && app.service.models().registry().is_ready();
    let body = json!({
        "ready": ready,
        "memories": c.index().len(),
        "replication_lag_ms": r.lag_ms,
        "embedding_model": app.service.model_id(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics<S: Store>(State(app): State<AppState<S>>) -> impl IntoResponse {
    let body = app.service.metrics().render(app.service.collection());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

/// `GET /openapi.json`: the API description.
pub async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::openapi::json(),
    )
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see /openapi.json".into())
}
