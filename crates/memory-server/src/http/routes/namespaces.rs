//! `/v1/namespaces`: the namespaces a key can read, with what it sees there,
//! and each namespace's memory policy.

use axum::Json;
use axum::extract::State;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::http::AppState;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::routes::memories::AsAgent;
use crate::model::{MemoryPolicy, NamespaceList, NamespacePolicy};

/// `GET /v1/namespaces`.
pub async fn list(
    State(app): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<AsAgent>,
) -> Json<NamespaceList> {
    Json(app.service.namespaces(&who, q.as_agent.as_deref()))
}

/// `GET /v1/namespaces/{namespace}/policy`.
pub async fn policy(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(ns): ApiPath,
) -> ApiResult<Json<NamespacePolicy>> {
    Ok(Json(app.service.policy(&who, &ns).await?))
}

/// `PUT /v1/namespaces/{namespace}/policy` (`admin`).
pub async fn set_policy(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(ns): ApiPath,
    ApiJson(policy): ApiJson<MemoryPolicy>,
) -> ApiResult<Json<NamespacePolicy>> {
    Ok(Json(app.service.set_policy(&who, &ns, policy).await?))
}

/// `DELETE /v1/namespaces/{namespace}/policy` (`admin`): back to the server's default.
pub async fn reset_policy(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(ns): ApiPath,
) -> ApiResult<Json<NamespacePolicy>> {
    Ok(Json(app.service.reset_policy(&who, &ns).await?))
}
