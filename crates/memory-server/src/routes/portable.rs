//! `GET /v1/export` and `POST /v1/import`: memories as NDJSON, streamed both ways.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use vector_index::store::Store;

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, required_namespace};
use crate::model::PortableMemory;

/// Memories fetched per round trip while exporting.
const EXPORT_PAGE: usize = 256;

/// Query parameters of `GET /v1/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Namespace to export.
    pub namespace: Option<String>,
    /// Include each memory's vector.
    #[serde(default)]
    pub include_vectors: bool,
    /// The agent the caller acts as (its private memories are included).
    pub as_agent: Option<String>,
}

/// `GET /v1/export?namespace=...`: one JSON memory per line, oldest first.
pub async fn export<S: Store>(
    State(app): State<AppState<S>>,
    who: Principal,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let ns = required_namespace(q.namespace)?;
    let ids = app
        .service
        .export_ids(&who, &ns, q.as_agent.as_deref())
        .await?;
    let pages: Vec<Vec<uuid::Uuid>> = ids.chunks(EXPORT_PAGE).map(<[_]>::to_vec).collect();
    let (agent, include) = (q.as_agent, q.include_vectors);
    // Each page is read when the client is ready for it, so memory stays bounded.
    let stream = futures_util::stream::iter(pages).then(move |page| {
        let (app, who, agent) = (app.clone(), who.clone(), agent.clone());
        async move {
            let memories = app
                .service
                .export_page(&who, &page, agent.as_deref(), include)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut out = Vec::new();
            for m in memories {
                serde_json::to_writer(&mut out, &m).map_err(std::io::Error::other)?;
                out.push(b'\n');
            }
            Ok::<_, std::io::Error>(Bytes::from(out))
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `POST /v1/import`: NDJSON of memories; every line is checked before any is written.
pub async fn import<S: Store>(
    State(app): State<AppState<S>>,
    who: Principal,
    body: Body,
) -> ApiResult<Response> {
    let limit = app.service.limits().max_import_bytes;
    let mut stream = body.into_data_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut lines = Vec::new();
    let (mut line_no, mut total) = (0usize, 0usize);
    let parse = |raw: &[u8], line_no: usize, lines: &mut Vec<(usize, PortableMemory)>| {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let m: PortableMemory = serde_json::from_slice(raw).map_err(|e| ApiError::BadRequest {
            message: format!("line {line_no}: not a memory: {e}"),
            details: serde_json::json!({ "line": line_no }),
        })?;
        lines.push((line_no, m));
        Ok::<_, ApiError>(())
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        total += chunk.len();
        if total > limit {
            return Err(ApiError::TooLarge(format!(
                "import body is over limits.max_import_bytes ({limit} bytes); split it"
            )));
        }
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            line_no += 1;
            parse(&pending[..end], line_no, &mut lines)?;
            pending.drain(..=end);
        }
    }
    if !pending.is_empty() {
        line_no += 1;
        parse(&pending, line_no, &mut lines)?;
    }
    if lines.is_empty() {
        return Err(ApiError::bad_request("the import body holds no memories"));
    }
    Ok(Json(app.service.import(&who, lines).await?).into_response())
}
