//! The crate's one error type, and its mapping to HTTP in one place.
//!
//! Every error renders as `{"error": {"code", "message", "details"}}`; a
//! client's mistake is a 4xx whose message says what to fix.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vector_index::IndexError;

use crate::model::Binding;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a value is out of range (400).
    #[error("{message}")]
    BadRequest {
        /// What to fix.
        message: String,
        /// Machine-readable context (e.g. the field).
        details: Value,
    },
    /// No API key, or an unknown one (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The key lacks the right (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there, or not visible to the caller (404).
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request conflicts with stored state, e.g. a model mismatch (409).
    #[error("{0}")]
    Conflict(String),
    /// The namespace is bound to another embedding model than this server's (409).
    #[error(
        "namespace {namespace:?} is bound to embedding model {} ({} dims) but this server embeds with {} ({} dims); use a server running that model, or export the namespace and import it into a new one here",
        bound.model, bound.dims, server.model, server.dims
    )]
    ModelMismatch {
        /// The namespace asked for.
        namespace: String,
        /// Its model.
        bound: Binding,
        /// This server's model.
        server: Binding,
    },
    /// `If-Match` names another version than the stored one (412).
    #[error("{message}")]
    PreconditionFailed {
        /// What happened.
        message: String,
        /// The stored version, if any.
        current_version: Option<u64>,
    },
    /// The body is over the configured limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The embedding provider answered something unusable (502).
    #[error("{0}")]
    BadGateway(String),
    /// The store cannot be reached; retry (503).
    #[error("{0}")]
    Unavailable(String),
    /// A fault on our side (500); the message is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 about `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            details: json!({ "field": field }),
        }
    }

    /// A 400 without a field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            details: json!({}),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::ModelMismatch { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "invalid_argument",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "permission_denied",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::ModelMismatch { .. } => "model_mismatch",
            ApiError::PreconditionFailed { .. } => "precondition_failed",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::BadGateway(_) => "embedding_failed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// What to tell the caller, and the details (always an object).
    fn message_and_details(&self) -> (String, Value) {
        let (message, details) = match self {
            ApiError::BadRequest { message, details } => (message.clone(), details.clone()),
            ApiError::PreconditionFailed {
                message,
                current_version,
            } => (
                message.clone(),
                json!({ "current_version": current_version }),
            ),
            ApiError::ModelMismatch {
                namespace,
                bound,
                server,
            } => (
                self.to_string(),
                json!({
                    "namespace": namespace,
                    "namespace_model": bound.model,
                    "namespace_dims": bound.dims,
                    "server_model": server.model,
                    "server_dims": server.dims,
                }),
            ),
            // Internal details stay in the log.
            ApiError::Internal(_) => ("internal error; it has been logged".into(), json!({})),
            other => (other.to_string(), json!({})),
        };
        (message, details)
    }

    /// The text of an MCP tool failure (`isError: true`): the code, the
    /// message, and the details when there are any.
    pub fn tool_message(self) -> String {
        kit::error::log_if_server_error(&self, "tool call failed");
        let body = kit::error::envelope(&self).error;
        let (code, message, details) = (body.code, body.message, body.details);
        match &details {
            Value::Object(d) if !d.is_empty() => format!("{code}: {message} (details: {details})"),
            _ => format!("{code}: {message}"),
        }
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::DimensionMismatch { .. }
            | IndexError::NonFinite { .. }
            | IndexError::ZeroVector => ApiError::invalid("vector", e.to_string()),
            IndexError::InvalidK { .. } => ApiError::invalid("top_k", e.to_string()),
            IndexError::InvalidParameter { .. } | IndexError::InvalidPayload(_) => {
                ApiError::bad_request(e.to_string())
            }
            IndexError::VersionConflict { found, .. } => ApiError::PreconditionFailed {
                message: e.to_string(),
                current_version: found,
            },
            IndexError::Unavailable(m) => ApiError::Unavailable(format!("store unavailable: {m}")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Status, code, message and details decided above; the envelope, the
/// `Bearer` challenge and the logging of 5xx are `kit::error`'s.
impl kit::error::HttpError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn code(&self) -> &'static str {
        ApiError::code(self)
    }

    fn message(&self) -> String {
        self.message_and_details().0
    }

    fn details(&self) -> Value {
        self.message_and_details().1
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        kit::error::respond(&self)
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

/// A configuration that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl From<kit::Error> for ApiError {
    fn from(e: kit::Error) -> Self {
        match e {
            kit::Error::Unauthenticated(m) => ApiError::Unauthenticated(m),
            kit::Error::Forbidden(m) => ApiError::Forbidden(m),
            kit::Error::Config(m) => ApiError::Internal(m),
        }
    }
}

impl From<kit::Error> for ConfigError {
    fn from(e: kit::Error) -> Self {
        match e {
            kit::Error::Config(m) => ConfigError(m),
            other => ConfigError(other.to_string()),
        }
    }
}
