//! Request extractors whose rejections are [`ApiError`]s in the API's error format.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use kit::json_body::BodyError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body; malformed JSON, wrong types and oversize bodies are 4xx errors that say why.
pub struct ApiJson<T>(pub T);

/// A request body type, and the schema of `/openapi.json` it is checked against.
pub trait BodySchema {
    /// Its name under `components.schemas` (`None`: the handler checks it).
    const NAME: Option<&'static str>;
}

macro_rules! body_schemas {
    ($($t:ident),*) => {$(
        impl BodySchema for crate::model::$t {
            const NAME: Option<&'static str> = Some(stringify!($t));
        }
    )*};
}
body_schemas!(
    MemoryPatch,
    SearchRequest,
    BulkDelete,
    PutSession,
    AppendMessages,
    Promote,
    MemoryPolicy,
    Supersede,
    ExtractRequest,
    SettingsChange
);

/// `POST /v1/memories` takes one memory or a batch: the handler checks whichever it is.
impl BodySchema for serde_json::Value {
    const NAME: Option<&'static str> = None;
}

/// Checks `value` against schema `name` of `/openapi.json`: an array where
/// the schema has an object is a 400 naming the field ([`crate::shape`]).
pub fn check_shape(name: &str, value: &serde_json::Value) -> Result<(), ApiError> {
    let schema = serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
    crate::shape::check(crate::http::openapi::document(), &schema, value)
        .map_err(|e| ApiError::bad_request(format!("request body does not match the schema: {e}")))
}

impl<S: Send + Sync, T: DeserializeOwned + BodySchema> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = kit::json_body::read(req, state).await.map_err(body_error)?;
        // serde reads a struct from a JSON array too (its fields in order):
        // every body of this API is an object, so anything else is refused
        // before it can be read that way.
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object ({...})",
            ));
        }
        if let Some(name) = T::NAME {
            check_shape(name, &value)?;
        }
        // Most bodies are valid: read them without tracking the path (that
        // doubled the cost of a search body's 384 numbers), and read a
        // refused one again with it, so the error names the field to fix, as
        // axum's own `Json` does.
        if let Ok(body) = T::deserialize(&value) {
            return Ok(ApiJson(body));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "request body does not match the schema: {}: {}",
                    e.path(),
                    e.inner()
                ))
            })
    }
}

fn body_error(e: BodyError) -> ApiError {
    match e {
        BodyError::Syntax(e) => {
            ApiError::bad_request(format!("request body is not valid JSON: {e}"))
        }
        BodyError::NotJson => {
            ApiError::bad_request("send the body with `Content-Type: application/json`")
        }
        BodyError::TooLarge => ApiError::TooLarge(
            "request body is over the configured limit (limits.max_body_bytes)".into(),
        ),
        BodyError::Unreadable(e) => ApiError::bad_request(e),
    }
}

/// The `{id}` segment of a path, as text; one that is not valid UTF-8 once
/// percent-decoded (e.g. `%FF`) is a 400 in the API's error format.
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(ApiPath(id)),
            Err(e) => Err(ApiError::invalid(
                "id",
                format!("the id in the path cannot be read: {}", e.body_text()),
            )),
        }
    }
}

/// Query-string parameters; a bad one is a 400 that names it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => Err(
                ApiError::bad_request(format!("invalid query string: {}", e.body_text())),
            ),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// A required `namespace` query parameter.
pub fn required_namespace(ns: Option<String>) -> Result<String, ApiError> {
    ns.ok_or_else(|| ApiError::invalid("namespace", "the namespace query parameter is required"))
}

/// Parses an `If-Match` header: `"7"`, `W/"7"` or `7`.
pub fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || ApiError::invalid("If-Match", "If-Match must be a memory version, e.g. \"7\"");
    let s = value.to_str().map_err(|_| bad())?.trim();
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse().map(Some).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SearchRequest;

    async fn read(body: &'static str) -> Result<SearchRequest, String> {
        let req = Request::builder()
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))
            .map_err(|e| e.to_string())?;
        ApiJson::<SearchRequest>::from_request(req, &())
            .await
            .map(|ApiJson(v)| v)
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn a_body_error_names_the_field_and_arrays_are_refused() {
        let nested = read(r#"{"namespace": "n", "filter": {"kind": 7}}"#).await;
        assert!(
            nested.as_ref().is_err_and(|e| e.contains("filter.kind")),
            "{nested:?}"
        );
        let array = read(r#"["n", "query"]"#).await;
        assert!(
            array.as_ref().is_err_and(|e| e.contains("JSON object")),
            "{array:?}"
        );
        assert!(read(r#"{"namespace": "n", "query": "q"}"#).await.is_ok());
    }
}
