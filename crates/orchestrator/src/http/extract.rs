//! Request extractors whose rejections are [`ApiError`]s: a JSON object
//! body read with the path of the bad field, and query strings.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON object body; malformed JSON, wrong types and oversize bodies are
/// 4xx errors that name the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                return Err(ApiError::TooLarge(
                    "request body is over runs.max_body_bytes".into(),
                ));
            }
            Err(JsonRejection::MissingJsonContentType(_)) => {
                return Err(ApiError::field(
                    "body",
                    "send the body with `Content-Type: application/json`",
                ));
            }
            Err(e) => return Err(ApiError::field("body", e.body_text())),
        };
        // serde reads a struct from an array too: every body here is an object.
        if !value.is_object() {
            return Err(ApiError::field(
                "body",
                "the request body must be a JSON object",
            ));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                ApiError::field(&path, format!("{path}: {}", e.inner()))
            })
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
