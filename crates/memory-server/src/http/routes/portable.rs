//! `GET /v1/export` and `POST /v1/import`: memories as NDJSON, streamed both ways.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::http::AppState;
use crate::http::extract::{ApiQuery, required_namespace};
use crate::model::{ExportSummary, ExportTrailer, PortableMemory};

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

/// `GET /v1/export?namespace=...`: one JSON memory per line, oldest first,
/// then an [`ExportTrailer`] line; an export without it was cut short.
///
/// The first page is read before the headers are sent, so a store that is
/// down is a 503, not a 200 that breaks off. A failure after that is logged,
/// counted (`memory_export_failures`) and ends the connection without the
/// trailer, so no client can take a partial export for a whole one.
pub async fn export(
    State(app): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let ns = required_namespace(q.namespace)?;
    let ids = app
        .service
        .export_ids(&who, &ns, q.as_agent.as_deref())
        .await?;
    let mut pages = ids
        .chunks(EXPORT_PAGE)
        .map(<[_]>::to_vec)
        .collect::<Vec<_>>()
        .into_iter();
    let (agent, include) = (q.as_agent, q.include_vectors);
    let first = pages.next().unwrap_or_default();
    let first = app
        .service
        .export_page(&who, &first, agent.as_deref(), include)
        .await?;
    let mut summary = ExportSummary {
        memories: 0,
        skipped_unreadable: 0,
    };
    let first = lines(first, &mut summary);
    // Each later page is read when the client is ready for it, so memory stays bounded.
    let rest = futures_util::stream::unfold((Some(pages), summary), move |(pages, mut summary)| {
        let (app, who, agent, ns) = (app.clone(), who.clone(), agent.clone(), ns.clone());
        async move {
            let mut pages = pages?;
            let Some(page) = pages.next() else {
                // Everything sent: the trailer, then the end of the stream.
                let trailer = ExportTrailer {
                    export_complete: summary,
                };
                let mut out = serde_json::to_vec(&trailer).unwrap_or_default();
                out.push(b'\n');
                return Some((Ok(Bytes::from(out)), (None, summary)));
            };
            match app
                .service
                .export_page(&who, &page, agent.as_deref(), include)
                .await
            {
                Ok(memories) => {
                    let out = lines(memories, &mut summary);
                    Some((Ok(out), (Some(pages), summary)))
                }
                Err(e) => {
                    tracing::error!(namespace = %ns, sent = summary.memories, error = %e,
                            "export broken off after its headers were sent");
                    app.service.metrics().export_failed();
                    Some((Err(std::io::Error::other(e.to_string())), (None, summary)))
                }
            }
        }
    });
    let stream = futures_util::stream::once(async move { Ok(first) }).chain(rest);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A page of an export as NDJSON, counted into `summary`.
fn lines((memories, unreadable): (Vec<PortableMemory>, u64), summary: &mut ExportSummary) -> Bytes {
    let mut out = Vec::new();
    for m in &memories {
        // Our own types always serialise.
        if serde_json::to_writer(&mut out, m).is_ok() {
            out.push(b'\n');
            summary.memories += 1;
        }
    }
    summary.skipped_unreadable += unreadable;
    Bytes::from(out)
}

/// The lines of an import body, parsed as they arrive.
#[derive(Default)]
struct ImportLines {
    memories: Vec<(usize, PortableMemory)>,
    /// An export's end line, with its line number.
    trailer: Option<(usize, ExportSummary)>,
}

impl ImportLines {
    /// Parses line `line_no` (1-based): a memory, an export's end line, or blank.
    fn push(&mut self, raw: &[u8], line_no: usize) -> ApiResult<()> {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let at_line = |message: String| ApiError::BadRequest {
            message: format!("line {line_no}: {message}"),
            details: serde_json::json!({ "line": line_no }),
        };
        if let Some((end, _)) = self.trailer {
            return Err(at_line(format!(
                "comes after the export's end line (line {end}); nothing may follow it"
            )));
        }
        match serde_json::from_slice::<PortableMemory>(raw) {
            Ok(m) => self.memories.push((line_no, m)),
            Err(e) => match serde_json::from_slice::<ExportTrailer>(raw) {
                Ok(t) => self.trailer = Some((line_no, t.export_complete)),
                Err(_) => return Err(at_line(format!("not a memory: {e}"))),
            },
        }
        Ok(())
    }

    /// The memories, once the body is read whole; an export that says how
    /// many memories it held must hold that many (else it was cut or edited).
    fn finish(self) -> ApiResult<Vec<(usize, PortableMemory)>> {
        if let Some((line, summary)) = self.trailer
            && summary.memories != self.memories.len() as u64
        {
            return Err(ApiError::BadRequest {
                message: format!(
                    "line {line}: the export's end line counts {} memories but the body holds {}; \
                     the export was cut short or edited, so nothing was imported",
                    summary.memories,
                    self.memories.len()
                ),
                details: serde_json::json!({ "line": line }),
            });
        }
        if self.memories.is_empty() {
            return Err(ApiError::bad_request("the import body holds no memories"));
        }
        Ok(self.memories)
    }
}

/// `POST /v1/import`: NDJSON of memories (an export's end line is checked and
/// skipped); every line is checked before any is written.
pub async fn import(
    State(app): State<AppState>,
    who: Principal,
    body: Body,
) -> ApiResult<Response> {
    let limit = app.service.limits().max_import_bytes;
    let mut stream = body.into_data_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut lines = ImportLines::default();
    let (mut line_no, mut total) = (0usize, 0usize);
    // One line is one memory, so it may be no larger than a request body.
    let max_line = app.service.limits().max_body_bytes;
    let too_long = |line_no: usize| {
        ApiError::TooLarge(format!(
            "line {line_no} is over limits.max_body_bytes ({max_line} bytes); \
             one line holds one memory"
        ))
    };
    // Bytes of `pending` already searched for a newline: each byte is looked
    // at once however the body is chunked, so a long line costs linear time.
    let mut scanned = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        total += chunk.len();
        if total > limit {
            return Err(ApiError::TooLarge(format!(
                "import body is over limits.max_import_bytes ({limit} bytes); split it"
            )));
        }
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(at) = pending[scanned..].iter().position(|b| *b == b'\n') {
            let end = scanned + at;
            line_no += 1;
            if end - start > max_line {
                return Err(too_long(line_no));
            }
            lines.push(&pending[start..end], line_no)?;
            start = end + 1;
            scanned = start;
        }
        pending.drain(..start);
        scanned = pending.len();
        if scanned > max_line {
            return Err(too_long(line_no + 1));
        }
    }
    if !pending.is_empty() {
        line_no += 1;
        lines.push(&pending, line_no)?;
    }
    let lines = lines.finish()?;
    Ok(Json(app.service.import(&who, lines).await?).into_response())
}
