//! Request extractors whose rejections are [`ApiError`]s: a JSON object
//! body read with the path of the bad field, and query strings.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use kit::json_body::BodyError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON object body; malformed JSON, wrong types and oversize bodies are
/// 4xx errors that name the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = kit::json_body::read_bytes(req, state)
            .await
            .map_err(body_error)?;
        // serde reads a struct from an array too: every object of this API
        // is sent by name, so a struct is read only from a JSON object, at
        // any depth (`kit::strict_json`).
        if let Ok(body) = kit::strict_json::from_slice(&bytes) {
            return Ok(ApiJson(body));
        }
        // Refused: read it again to say why.
        if !kit::json_body::parse(&bytes)
            .map_err(body_error)?
            .is_object()
        {
            return Err(ApiError::field(
                "body",
                "the request body must be a JSON object",
            ));
        }
        kit::strict_json::from_slice_traced(&bytes)
            .map(ApiJson)
            .map_err(|(path, e)| ApiError::field(&path, format!("{path}: {e}")))
    }
}

fn body_error(e: BodyError) -> ApiError {
    match e {
        BodyError::TooLarge => {
            ApiError::TooLarge("request body is over runs.max_body_bytes".into())
        }
        BodyError::NotJson => ApiError::field(
            "body",
            "send the body with `Content-Type: application/json`",
        ),
        BodyError::Syntax(e) => {
            ApiError::field("body", format!("request body is not valid JSON: {e}"))
        }
        BodyError::Unreadable(e) => ApiError::field("body", e),
    }
}

/// Query-string parameters; a bad one is a 400 that names it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| {
                ApiError::field("query", format!("invalid query string: {}", e.body_text()))
            })
    }
}

/// A path segment that must be a UUID (`what` names it in the error).
pub fn uuid(what: &str, raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("{what} {raw:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestrator_api::RunRequest;

    async fn read(body: &'static str) -> Result<RunRequest, String> {
        let req = Request::builder()
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))
            .map_err(|e| e.to_string())?;
        ApiJson::<RunRequest>::from_request(req, &())
            .await
            .map(|ApiJson(v)| v)
            .map_err(|e| format!("{e:?}"))
    }

    #[tokio::test]
    async fn an_array_where_an_object_belongs_is_refused_naming_it() {
        let ok = read(r#"{"agent": "a", "messages": [{"role": "user", "content": "hi"}]}"#).await;
        assert_eq!(ok.map(|r| r.messages.map(|m| m.len())), Ok(Some(1)));
        // serde alone would read this message from its fields in order.
        let nested = read(r#"{"agent": "a", "messages": [["user", "hi"]]}"#).await;
        assert!(
            nested
                .as_ref()
                .is_err_and(|e| e.contains("messages[0]") && e.contains("sequence")),
            "{nested:?}"
        );
        let top = read(r#"["a"]"#).await;
        assert!(
            top.as_ref()
                .is_err_and(|e| e.contains("must be a JSON object")),
            "{top:?}"
        );
        let wrong = read(r#"{"agent": 7}"#).await;
        assert!(
            wrong.as_ref().is_err_and(|e| e.contains("agent")),
            "{wrong:?}"
        );
        let syntax = read(r#"{"agent": "#).await;
        assert!(
            syntax.as_ref().is_err_and(|e| e.contains("not valid JSON")),
            "{syntax:?}"
        );
    }
}
