//! The parts every AI Orchestra HTTP service shares, so the memory server and
//! the orchestrator are built on one copy of each:
//!
//! - [`config`]: defaults, then `<dir>/default.toml`, `<dir>/<env>.toml`,
//!   `<PREFIX>__*` variables and `PORT`, into the service's own typed struct;
//! - [`auth`]: API keys as SHA-256 digests compared in constant time, each
//!   granting a role on namespaces and optionally binding an agent;
//! - [`error`]: the `{"error": {"code", "message", "details"}}` envelope,
//!   written once for any service error that implements [`error::HttpError`];
//! - [`json_body`]: a request's JSON body, read for a service's own extractor;
//! - [`strict_json`]: JSON read straight into a type whose structs must be
//!   JSON objects (the fast path of those extractors);
//! - [`metrics`]: request counts and latencies by route for Prometheus;
//! - [`serve`]: serving until SIGTERM or Ctrl-C, then draining in-flight
//!   requests for a grace period;
//! - [`telemetry`]: logs (text, or JSON with Cloud Logging's fields), OTLP
//!   traces, and the request span with W3C trace-context propagation.
//!
//! Each service keeps its own error enum and configuration struct.

pub mod auth;
pub mod config;
pub mod error;
pub mod fault;
pub mod json_body;
pub mod metrics;
pub mod serve;
pub mod strict_json;
pub mod telemetry;

/// What can go wrong in the kit: a configuration that cannot be used, or a
/// caller that is not authenticated or not allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be used; the message names the setting.
    #[error("configuration error: {0}")]
    Config(String),
    /// No key, or an unknown one (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The key does not allow this (403).
    #[error("{0}")]
    Forbidden(String),
}

impl error::HttpError for Error {
    fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Error::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Error::Config(_) => "internal",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "permission_denied",
        }
    }
}

impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        error::respond(&self)
    }
}
