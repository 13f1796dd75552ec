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
        let value = kit::json_body::read(req, state)
            .await
            .map_err(|e| match e {
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
            })?;
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
