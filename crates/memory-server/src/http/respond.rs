//! How responses leave the server: every JSON body ends with a newline, so
//! `curl` output and log captures do not run together. Done once here, for
//! handlers, errors and the MCP endpoint alike.

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

/// Middleware: appends `\n` to `application/json` bodies. JSON bodies here
/// are built whole (streams are NDJSON or SSE), so this copies one buffer.
pub async fn end_json_with_newline(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) if bytes.ends_with(b"\n") => Response::from_parts(parts, Body::from(bytes)),
        Ok(bytes) => {
            let mut with_newline = Vec::with_capacity(bytes.len() + 1);
            with_newline.extend_from_slice(&bytes);
            with_newline.push(b'\n');
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(with_newline))
        }
        // A handler's body failed while being read: nothing left to send.
        Err(e) => {
            crate::error::ApiError::Internal(format!("response body failed: {e}")).into_response()
        }
    }
}
