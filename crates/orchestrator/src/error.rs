//! The orchestrator's one error type: status, code and body decided here
//! (through [`kit::error::HttpError`]), for every route.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input; `field` names what to fix.
    #[error("{message}")]
    BadRequest {
        /// The field at fault, when there is one.
        field: Option<String>,
        /// What to fix.
        message: String,
    },
    /// No API key, or an unknown one.
    #[error("{0}")]
    Unauthenticated(String),
    /// The key may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing (or not visible to this key).
    #[error("{0} not found")]
    NotFound(String),
    /// A known path with another method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The thread has a run in progress.
    #[error("{message}")]
    Busy {
        /// What to do.
        message: String,
        /// The run in progress.
        active_run: String,
    },
    /// The state does not allow it (e.g. cancelling a finished run).
    #[error("{0}")]
    Conflict(String),
    /// A message or body over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// The store could not be reached; retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken record.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Bad input in `field`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

impl kit::error::HttpError for ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Busy { .. } | Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "invalid_argument",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Busy { .. } => "thread_busy",
            Self::Conflict(_) => "conflict",
            Self::TooLarge(_) => "payload_too_large",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Unavailable(_) => "the store is unavailable; retry shortly".into(),
            Self::Internal(_) => "internal error; it has been logged".into(),
            other => other.to_string(),
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::BadRequest {
                field: Some(field), ..
            } => json!({"field": field}),
            Self::Busy { active_run, .. } => json!({"active_run": active_run}),
            _ => json!({}),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        kit::error::respond(&self)
    }
}

impl From<kit::Error> for ApiError {
    fn from(e: kit::Error) -> Self {
        match e {
            kit::Error::Unauthenticated(m) => Self::Unauthenticated(m),
            kit::Error::Forbidden(m) => Self::Forbidden(m),
            kit::Error::Config(m) => Self::Internal(m),
        }
    }
}

impl From<vector_index::IndexError> for ApiError {
    fn from(e: vector_index::IndexError) -> Self {
        use vector_index::IndexError as E;
        match e {
            E::Unavailable(m) => Self::Unavailable(m),
            E::VersionConflict { .. } => {
                Self::Conflict("changed by another request at the same time; retry".into())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A configuration that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl From<kit::Error> for ConfigError {
    fn from(e: kit::Error) -> Self {
        Self(e.to_string())
    }
}
