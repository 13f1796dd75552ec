//! The error envelope every service answers with, decided in one place:
//! a service's error type says its status, code, message and details
//! ([`HttpError`]); [`respond`] writes
//! `{"error": {"code", "message", "details"}}`, adds the `Bearer` challenge
//! to a 401 and logs server-side failures (a client's mistake is not logged
//! as an error).

use axum::Json;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

/// A service error that can be answered over HTTP.
pub trait HttpError: std::fmt::Display {
    /// The HTTP status.
    fn status(&self) -> StatusCode;
    /// The stable, documented code (`invalid_argument`, `not_found`, ...).
    fn code(&self) -> &'static str;
    /// What to tell the caller (server-side details stay in the log).
    fn message(&self) -> String {
        if self.status().is_server_error() {
            "internal error; it has been logged".into()
        } else {
            self.to_string()
        }
    }
    /// Context, always a JSON object (e.g. the field to fix).
    fn details(&self) -> Value {
        json!({})
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    /// The error.
    pub error: Body,
}

/// What went wrong and what to fix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Body {
    /// Stable code.
    pub code: &'static str,
    /// What to fix.
    pub message: String,
    /// Context: always an object.
    pub details: Value,
}

/// The envelope of `e`.
pub fn envelope(e: &impl HttpError) -> Envelope {
    let details = e.details();
    Envelope {
        error: Body {
            code: e.code(),
            message: e.message(),
            details: if details.is_object() {
                details
            } else {
                json!({})
            },
        },
    }
}

/// Logs `e` with the full error if it is a server-side failure (a client's
/// mistake is not logged as an error); `what` says where it surfaced.
pub fn log_if_server_error(e: &impl HttpError, what: &str) {
    if e.status().is_server_error() {
        tracing::error!(error = %e, code = e.code(), "{what}");
    }
}

/// The response for `e`: its status, the envelope, `WWW-Authenticate: Bearer`
/// on a 401; a 5xx is logged with the full error.
pub fn respond(e: &impl HttpError) -> Response {
    use axum::response::IntoResponse;
    let status = e.status();
    log_if_server_error(e, "request failed");
    let mut response = (status, Json(envelope(e))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}
