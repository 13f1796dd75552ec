//! Operational endpoints: liveness, readiness, metrics, the API description
//! and its interactive page, and the JSON 404.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 once the index has loaded and caught up with the store
/// and while the store answers, else 503 (memories are read from the store, so
/// an instance that cannot reach it can serve nothing but liveness).
/// With auth on, the details (memory count, store, embedder) need a valid key:
/// probes see only `ready`, the reason when not, and the replication lag.
pub async fn readyz(
    State(app): State<AppState>,
    who: Result<Principal, kit::Error>,
) -> impl IntoResponse {
    let c = app.service.collection();
    let r = c.replication();
    let others = [
        app.service.models().registry(),
        app.service.policies().records(),
        app.service.search_settings().records(),
        app.service.jobs().records(),
    ];
    let loaded = c.is_ready() && others.iter().all(|o| o.is_ready());
    let reachable = c.store_reachable() && others.iter().all(|o| o.store_reachable());
    let ready = loaded && reachable;
    let mut body = json!({
        "ready": ready,
        "replication_lag_ms": r.lag_ms,
    });
    if !reachable {
        body["reason"] = json!("the store is unreachable; requests fail until it is back");
    } else if !loaded {
        body["reason"] = json!("loading the index and catching up with the store");
    }
    if let Ok(who) = who {
        let embedder = app.service.embedder();
        // Only what this key may see: another tenant's count is theirs.
        let visible: u64 = app
            .service
            .namespaces(&who, None)
            .namespaces
            .iter()
            .map(|n| n.memories)
            .sum();
        body["memories"] = json!(visible);
        body["embedding_model"] = json!(embedder.model_id());
        body["embedder"] = json!({
            "model": embedder.model_id(),
            "semantic": embedder.semantic(),
            "captures": embedder.captures(),
            "chosen": app.embedder_choice.as_ref(),
        });
        body["store"] = json!(app.store.as_ref());
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let body = app
        .service
        .metrics()
        .render(app.service.collection(), app.service.jobs().counts());
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
        crate::http::openapi::json(),
    )
}

/// `GET /docs`: an interactive page over `/openapi.json`, served from the
/// binary (no CDN, so it works offline and inside a VPC).
pub async fn docs() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page loads nothing from elsewhere and talks only to this server.
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self'",
            ),
        ],
        include_str!("api_page.html"),
    )
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed(
        "this path does not take that method; see /openapi.json for the ones it takes".into(),
    )
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see /openapi.json".into())
}
