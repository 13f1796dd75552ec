//! `/v1/memories`: create, get, update, delete, list, search, bulk delete, history.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::http::AppState;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, check_shape, if_match, required_namespace};
use crate::model::{
    BulkDelete, CreatedBatch, ListMemories, Memory, MemoryFields, MemoryPatch, NewMemories,
    NewMemory, Projected, SearchRequest, Supersede,
};
use crate::validate::{self, memory_id};

fn with_etag(status: StatusCode, memory: &Memory, body: impl serde::Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!("\"{}\"", memory.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// `POST /v1/memories`: one memory, or `{"memories": [...]}`.
pub async fn create(
    State(app): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let is_batch = body.get("memories").is_some();
    check_shape(if is_batch { "NewMemories" } else { "NewMemory" }, &body)?;
    if is_batch {
        let batch: NewMemories = serde_json::from_value(body)
            .map_err(|e| ApiError::bad_request(format!("invalid batch: {e}")))?;
        let memories = app.service.create(&who, batch.memories).await?;
        return Ok((StatusCode::OK, Json(CreatedBatch { memories })).into_response());
    }
    let mut one: NewMemory = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("invalid memory: {e}")))?;
    if one.idempotency_key.is_none() {
        one.idempotency_key = headers
            .get("idempotency-key")
            .map(|v| {
                v.to_str().map(str::to_owned).map_err(|_| {
                    ApiError::invalid("Idempotency-Key", "Idempotency-Key must be text")
                })
            })
            .transpose()?;
    }
    let created = app
        .service
        .create(&who, vec![one])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("create returned nothing".into()))?;
    let status = if created.duplicate || created.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let location = format!("/v1/memories/{}", created.memory.id);
    let mut response = with_etag(status, &created.memory.clone(), created);
    if status == StatusCode::CREATED
        && let Ok(v) = header::HeaderValue::from_str(&location)
    {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Who the caller acts as, for endpoints without a body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsAgent {
    /// The agent (a bound key overrides it).
    pub as_agent: Option<String>,
}

/// `GET /v1/memories/{id}`.
pub async fn get(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiQuery(q): ApiQuery<AsAgent>,
) -> ApiResult<Response> {
    let memory = app
        .service
        .get(&who, memory_id(&id)?, q.as_agent.as_deref())
        .await?;
    Ok(with_etag(StatusCode::OK, &memory, &memory))
}

/// `GET /v1/memories/{id}/history`.
pub async fn history(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiQuery(q): ApiQuery<AsAgent>,
) -> ApiResult<Response> {
    let h = app
        .service
        .history(&who, memory_id(&id)?, q.as_agent.as_deref())
        .await?;
    Ok(Json(h).into_response())
}

/// `POST /v1/memories/{id}/supersede` (`If-Match` optional).
pub async fn supersede(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiQuery(q): ApiQuery<AsAgent>,
    headers: HeaderMap,
    ApiJson(mut req): ApiJson<Supersede>,
) -> ApiResult<Response> {
    let id = memory_id(&id)?;
    req.version = validate::expected_version(if_match(&headers)?, req.version)?;
    let done = app
        .service
        .supersede(&who, id, req, q.as_agent.as_deref())
        .await?;
    Ok((StatusCode::OK, Json(done)).into_response())
}

/// `PATCH /v1/memories/{id}` (`If-Match` optional).
pub async fn update(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiQuery(q): ApiQuery<AsAgent>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<MemoryPatch>,
) -> ApiResult<Response> {
    let id = memory_id(&id)?;
    let expected = if_match(&headers)?;
    let memory = app
        .service
        .update(&who, id, patch, expected, q.as_agent.as_deref())
        .await?;
    Ok(with_etag(StatusCode::OK, &memory, &memory))
}

/// `DELETE /v1/memories/{id}` (`If-Match` optional).
pub async fn delete(
    State(app): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath,
    ApiQuery(q): ApiQuery<AsAgent>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let id = memory_id(&id)?;
    app.service
        .delete(&who, id, if_match(&headers)?, q.as_agent.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/memories`.
pub async fn list(
    State(app): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<ListMemories>,
) -> ApiResult<Response> {
    let ns = required_namespace(Some(q.namespace.clone()).filter(|n| !n.is_empty()))?;
    let filter = q.filter();
    let page = app
        .service
        .list(
            &who,
            &ns,
            &filter,
            q.as_agent.as_deref(),
            q.limit.unwrap_or(crate::model::DEFAULT_LIST_LIMIT),
            q.cursor.as_deref(),
        )
        .await?;
    Ok(Json(page).into_response())
}

/// `POST /v1/memories/search`'s query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Keep only these fields of each memory (`text,metadata`; `id` always).
    pub fields: Option<String>,
}

/// `POST /v1/memories/search` (`?fields=` cuts each hit's memory).
pub async fn search(
    State(app): State<AppState>,
    who: Principal,
    ApiQuery(params): ApiQuery<SearchParams>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> ApiResult<Response> {
    // Refused before the search runs: a bad list costs no work.
    let fields = params
        .fields
        .as_deref()
        .map(MemoryFields::parse)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let response = app.service.search(&who, req).await?;
    Ok(match fields {
        Some(fields) => Json(Projected {
            response: &response,
            fields,
        })
        .into_response(),
        None => Json(response).into_response(),
    })
}

/// `POST /v1/memories/delete`: bulk delete by filter (admin), with `dry_run`.
pub async fn bulk_delete(
    State(app): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<BulkDelete>,
) -> ApiResult<Response> {
    Ok(Json(app.service.bulk_delete(&who, req).await?).into_response())
}
