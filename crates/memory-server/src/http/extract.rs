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
    ($($t:ident),*) => {
        $(
            impl BodySchema for crate::model::$t {
                const NAME: Option<&'static str> = Some(stringify!($t));
            }
        )*
        /// Each named body type's schema, and whether the fast path reads a body as one.
        #[cfg(test)]
        const FAST_READERS: &[(&str, fn(&[u8]) -> bool)] = &[$(
            (stringify!($t), |b| kit::strict_json::from_slice::<crate::model::$t>(b).is_ok()),
        )*];
    };
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
        let bytes = kit::json_body::read_bytes(req, state)
            .await
            .map_err(body_error)?;
        // Most bodies are valid: read them straight into `T`, refusing an
        // array wherever `T` has a struct: no `Value` tree, no schema walk
        // (about 4 % of a vector search's server CPU, docs/benchmarks.md).
        // The test `fast_path_agrees_with_the_schema_check` holds every
        // named body type to the schema check below, which decides the rest.
        if T::NAME.is_some()
            && let Ok(body) = kit::strict_json::from_slice::<T>(&bytes)
        {
            return Ok(ApiJson(body));
        }
        let value = kit::json_body::parse(&bytes).map_err(body_error)?;
        of_value(value).map(ApiJson)
    }
}

/// `T` from a parsed body: refused if it is not an object or (for a named
/// schema) has an array where the schema has an object, else read as serde
/// reads it, with the path of the field to fix when that fails.
fn of_value<T: DeserializeOwned + BodySchema>(value: serde_json::Value) -> Result<T, ApiError> {
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
    // Without tracking the path first (that doubled the cost of a search
    // body's 384 numbers), and again with it when that fails, so the error
    // names the field to fix, as axum's own `Json` does.
    if let Ok(body) = T::deserialize(&value) {
        return Ok(body);
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        ApiError::bad_request(format!(
            "request body does not match the schema: {}: {}",
            e.path(),
            e.inner()
        ))
    })
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

    use serde_json::{Map, Value, json};

    /// `schema` with its `$ref`s followed.
    fn resolved(schema: &Value) -> &Value {
        let mut s = schema;
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/components/schemas/");
            s = &crate::http::openapi::document()["components"]["schemas"][name];
        }
        s
    }

    /// `schema`'s variants that are not just `null` (itself when it has none).
    fn variants(schema: &Value) -> Vec<&Value> {
        let s = resolved(schema);
        match s
            .get("oneOf")
            .or_else(|| s.get("anyOf"))
            .and_then(Value::as_array)
        {
            Some(vs) => vs
                .iter()
                .map(resolved)
                .filter(|v| v.get("type") != Some(&json!("null")))
                .collect(),
            None => vec![s],
        }
    }

    fn has_type(schema: &Value, t: &str) -> bool {
        match schema.get("type") {
            Some(Value::String(s)) => s == t,
            Some(Value::Array(ts)) => ts.iter().any(|x| x == t),
            None => t == "object" && schema.get("properties").is_some(),
            _ => false,
        }
    }

    /// The least value `schema` takes: its required properties only, each
    /// the least of its own schema.
    fn least(schema: &Value) -> Value {
        let s = variants(schema)[0];
        if let Some(first) = s.get("enum").and_then(|e| e.get(0)) {
            return first.clone();
        }
        if has_type(s, "object") {
            let mut out = Map::new();
            for name in s["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                out.insert(name.to_owned(), least(&s["properties"][name]));
            }
            return Value::Object(out);
        }
        match s.get("format").and_then(Value::as_str) {
            Some("date-time") => return json!("2026-01-02T03:04:05Z"),
            Some("uuid") => return json!("01900000-0000-7000-8000-000000000000"),
            _ => {}
        }
        for (t, v) in [
            ("string", json!("x")),
            ("integer", json!(1)),
            ("number", json!(0.5)),
            ("boolean", json!(true)),
            ("array", json!([])),
        ] {
            if has_type(s, t) {
                return v;
            }
        }
        Value::Null
    }

    /// Every place under `schema` where an object belongs and an array does
    /// not, as the least body of `root` with an array there.
    fn arrays_for_objects(
        schema: &Value,
        at: Value,
        put: &dyn Fn(Value) -> Value,
        depth: usize,
        out: &mut Vec<Value>,
    ) {
        if depth > 6 {
            return;
        }
        for s in variants(schema) {
            if has_type(s, "object") && !has_type(s, "array") {
                out.push(put(json!([])));
                let Some(properties) = s.get("properties").and_then(Value::as_object) else {
                    continue;
                };
                for (name, p) in properties {
                    let base = match at.clone() {
                        Value::Object(m) => m,
                        _ => least(s).as_object().cloned().unwrap_or_default(),
                    };
                    let name = name.clone();
                    let inner = move |v: Value| {
                        let mut m = base.clone();
                        m.insert(name.clone(), v);
                        put(Value::Object(m))
                    };
                    arrays_for_objects(p, least(p), &inner, depth + 1, out);
                }
            }
            if has_type(s, "array")
                && let Some(items) = s.get("items")
            {
                arrays_for_objects(items, least(items), &|v| put(json!([v])), depth + 1, out);
            }
        }
    }

    #[test]
    fn fast_path_agrees_with_the_schema_check() {
        let mut checked = 0;
        for (name, fast) in FAST_READERS {
            let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
            let base = least(&schema);
            let bytes = serde_json::to_vec(&base).unwrap();
            assert!(fast(&bytes), "{name}: its least body {base} must be read");
            let mut bodies = Vec::new();
            arrays_for_objects(&schema, base.clone(), &|v| v, 0, &mut bodies);
            // The body itself is an object: at least that place.
            assert!(!bodies.is_empty(), "{name}: no place for an object found");
            for body in bodies {
                assert!(
                    check_shape(name, &body).is_err(),
                    "{name}: the schema check takes {body}"
                );
                let bytes = serde_json::to_vec(&body).unwrap();
                assert!(!fast(&bytes), "{name}: the fast path takes {body}");
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} bodies checked");
    }
}
