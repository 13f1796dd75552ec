//! A request's JSON body, for a service's own extractor: its bytes once the
//! content type says JSON and the size limit holds ([`read_bytes`]), and, to
//! say why a body was refused, the same bytes as a [`serde_json::Value`]
//! ([`parse`]).
//!
//! axum's `Json` tracks the path of every value as it parses, for the
//! message of a refused body. Both services read a valid body straight into
//! its type ([`crate::strict_json`]) and look at a refused one again, so the
//! tracking is paid only for a refusal: it was a third of the parse of a
//! search body's 384 numbers. A JSON syntax error needs no path: serde's
//! message names line and column.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};

/// Why a body could not be read as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Over the body limit (413).
    TooLarge,
    /// No `Content-Type: application/json` (or `+json`).
    NotJson,
    /// Not valid JSON; serde's message, with line and column.
    Syntax(String),
    /// The body could not be received; the reason.
    Unreadable(String),
}

/// Reads `req`'s body, refused unless it is sent as JSON, not yet parsed
/// (a caller may read it straight into its own type first).
pub async fn read_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, BodyError> {
    if !is_json(req.headers()) {
        return Err(BodyError::NotJson);
    }
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyError::TooLarge
        } else {
            BodyError::Unreadable(e.body_text())
        }
    })
}

/// `bytes` as JSON; a syntax error says where.
pub fn parse(bytes: &[u8]) -> Result<serde_json::Value, BodyError> {
    serde_json::from_slice(bytes).map_err(|e| BodyError::Syntax(e.to_string()))
}

/// Whether the content type is `application/json` or `application/*+json`
/// (parameters such as `charset` allowed), as axum's `Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    // Bytes, not `str` slices: no char boundary to get wrong.
    let subtype = subtype.as_bytes();
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case(b"json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    /// A body read and parsed, as an extractor refusing it would.
    async fn read(req: Request, state: &()) -> Result<serde_json::Value, BodyError> {
        parse(&read_bytes(req, state).await?)
    }

    fn request(content_type: Option<&str>, body: impl Into<Body>) -> Request {
        let mut b = axum::http::Request::builder().method("POST").uri("/");
        if let Some(t) = content_type {
            b = b.header(CONTENT_TYPE, t);
        }
        b.body(body.into()).unwrap()
    }

    #[tokio::test]
    async fn a_json_body_is_read_whatever_its_json_content_type() {
        for t in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            let got = read(request(Some(t), r#"{"a": [1, 2.5]}"#), &()).await;
            assert_eq!(got, Ok(serde_json::json!({"a": [1, 2.5]})), "{t}");
        }
    }

    #[tokio::test]
    async fn another_content_type_or_none_is_refused_before_the_body_is_read() {
        for t in [
            None,
            Some("text/plain"),
            Some("application/jsonx"),
            Some("+json"),
        ] {
            let got = read(request(t, "{}"), &()).await;
            assert_eq!(got, Err(BodyError::NotJson), "{t:?}");
        }
    }

    #[tokio::test]
    async fn bad_json_says_where() {
        let got = read(request(Some("application/json"), "{\"a\": }"), &()).await;
        match got {
            Err(BodyError::Syntax(m)) => assert!(m.contains("line 1 column 7"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_too_large() {
        // axum's default limit (2 MiB) holds when the router sets none.
        let big = format!("[{}0]", "0,".repeat(1_500_000));
        let got = read(request(Some("application/json"), big), &()).await;
        assert_eq!(got, Err(BodyError::TooLarge));
    }
}
