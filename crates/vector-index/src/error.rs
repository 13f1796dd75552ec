//! The one error type of the crate.

use thiserror::Error;

/// Everything that can go wrong in a collection; each variant says what to fix.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum IndexError {
    /// The vector's length differs from the collection's dimension.
    #[error("vector has {got} dimensions, the collection expects {expected}")]
    DimensionMismatch {
        /// The collection's dimension.
        expected: usize,
        /// The length that was given.
        got: usize,
    },
    /// A component is NaN or infinite.
    #[error("vector component {index} is not a finite number")]
    NonFinite {
        /// Position of the first offending component.
        index: usize,
    },
    /// All components are zero, so the vector has no direction.
    #[error("vector is all zeros: cosine similarity needs a non-zero vector")]
    ZeroVector,
    /// `k` is zero or above the configured maximum.
    #[error("k must be between 1 and {max}, got {got}")]
    InvalidK {
        /// The requested k.
        got: usize,
        /// The largest k the collection accepts.
        max: usize,
    },
    /// A tuning or configuration parameter is out of its range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// What the accepted range is.
        reason: String,
    },
    /// The payload is not acceptable (e.g. an empty namespace).
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// Every internal key has been handed out; the collection must be reloaded.
    #[error("the collection has used all {0} internal keys; reload it to compact them")]
    KeysExhausted(u64),
    /// The record's version is not the one the write required.
    #[error("version conflict on {id}: expected {expected}, found {}", found.map_or("no record".to_string(), |v| format!("version {v}")))]
    VersionConflict {
        /// The record.
        id: uuid::Uuid,
        /// What the write required.
        expected: crate::expect::Expect,
        /// The version stored, if any.
        found: Option<u64>,
    },
    /// The store cannot be reached (timeout, connection refused); retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store failed or holds data this version cannot read.
    #[error("store error: {0}")]
    Storage(String),
    /// An embedded store file is held open by another process (one process per file).
    #[error("{0} is open in another process")]
    InUse(String),
    /// A snapshot is damaged or does not match the collection; rebuild from records.
    #[error("unusable snapshot: {0}")]
    CorruptSnapshot(String),
    /// The ANN library reported a failure.
    #[error("{backend} backend failed: {message}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The library's message.
        message: String,
    },
}

impl IndexError {
    /// A storage failure with a message.
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        IndexError::Storage(e.to_string())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
