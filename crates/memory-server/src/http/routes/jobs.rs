//! `/v1/jobs` and `/v1/sessions/{id}/extract`: background jobs, listed and queued.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::http::AppState;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, required_namespace};
use crate::model::{ExtractRequest, JobState, ListJobs};

/// Query parameters of `GET /v1/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Namespace (required).
    pub namespace: Option<String>,
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this session.
    pub session_id: Option<String>,
    /// Most jobs returned (default 50).
    pub limit: Option<usize>,
}

/// `GET /v1/jobs?namespace=...`.
pub async fn list(
    State(app): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> ApiResult<Response> {
    let q = ListJobs {
        namespace: required_namespace(q.namespace)?,
        state: q.state,
        session_id: q.session_id,
        limit: q.limit,
    };
    Ok(Json(app.service.list_jobs(&who, q).await?).into_response())
}

/// `POST /v1/sessions/{id}/extract`: 202 with the queued job.
pub async fn extract(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiJson(req): ApiJson<ExtractRequest>,
) -> ApiResult<Response> {
    let job = app.service.extract(&who, &id, req).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}
