//! `/v1/sessions`: working memory (put, get, delete, append, list, promote).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::http::AppState;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, required_namespace};
use crate::model::{AppendMessages, CreatedBatch, Promote, PutSession};

/// The namespace of a session endpoint without a body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionScope {
    /// Namespace (required).
    pub namespace: Option<String>,
}

/// `PUT /v1/sessions/{id}`.
pub async fn put(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiJson(req): ApiJson<PutSession>,
) -> ApiResult<Response> {
    Ok(Json(app.service.put_session(&who, &id, req).await?).into_response())
}

/// `GET /v1/sessions/{id}?namespace=...`.
pub async fn get(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiQuery(q): ApiQuery<SessionScope>,
) -> ApiResult<Response> {
    let ns = required_namespace(q.namespace)?;
    Ok(Json(app.service.get_session(&who, &ns, &id).await?).into_response())
}

/// `DELETE /v1/sessions/{id}?namespace=...`.
pub async fn delete(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiQuery(q): ApiQuery<SessionScope>,
) -> ApiResult<StatusCode> {
    let ns = required_namespace(q.namespace)?;
    app.service.delete_session(&who, &ns, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sessions/{id}/messages`.
pub async fn append(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiJson(req): ApiJson<AppendMessages>,
) -> ApiResult<Response> {
    Ok(Json(app.service.append_messages(&who, &id, req).await?).into_response())
}

/// `POST /v1/sessions/{id}/promote`.
pub async fn promote(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiJson(req): ApiJson<Promote>,
) -> ApiResult<Response> {
    let memories = app.service.promote(&who, &id, req).await?;
    Ok(Json(CreatedBatch { memories }).into_response())
}

/// Query parameters of `GET /v1/sessions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSessions {
    /// Namespace (required).
    pub namespace: Option<String>,
    /// Only this user's sessions.
    pub user_id: Option<String>,
    /// Most sessions returned (default 50).
    pub limit: Option<usize>,
}

/// `GET /v1/sessions?namespace=...`.
pub async fn list(
    State(app): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<ListSessions>,
) -> ApiResult<Response> {
    let ns = required_namespace(q.namespace)?;
    let page = app
        .service
        .list_sessions(&who, &ns, q.user_id.as_deref(), q.limit.unwrap_or(50))
        .await?;
    Ok(Json(page).into_response())
}
