//! `/v1/namespaces`: the namespaces a key can read, with what it sees there,
//! each namespace's memory policy, and its search settings.

use axum::Json;
use axum::extract::State;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::http::AppState;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::routes::memories::AsAgent;
use crate::model::{
    MemoryPolicy, NamespaceList, NamespacePolicy, NamespaceSettings, SettingsChange,
};

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

/// `GET /v1/namespaces/{namespace}/settings`: the search settings in force.
pub async fn settings(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(ns): ApiPath,
) -> ApiResult<Json<NamespaceSettings>> {
    Ok(Json(app.service.settings(&who, &ns).await?))
}

/// `PUT /v1/namespaces/{namespace}/settings` (`admin`): the namespace's own settings.
pub async fn set_settings(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(ns): ApiPath,
    ApiJson(change): ApiJson<SettingsChange>,
) -> ApiResult<Json<NamespaceSettings>> {
    Ok(Json(app.service.set_settings(&who, &ns, change).await?))
}

/// `DELETE /v1/namespaces/{namespace}/settings` (`admin`): back to the configured settings.
pub async fn reset_settings(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(ns): ApiPath,
) -> ApiResult<Json<NamespaceSettings>> {
    Ok(Json(app.service.reset_settings(&who, &ns).await?))
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
