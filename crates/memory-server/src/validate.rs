//! Checks on client input, each failing with a 400 that names the field.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::config::Limits;
use crate::error::{ApiError, ApiResult};

/// A namespace: 1 to `max_label_chars` of `A-Z a-z 0-9 . _ : -`.
pub fn namespace(limits: &Limits, ns: &str) -> ApiResult<()> {
    if ns.is_empty() {
        return Err(ApiError::invalid("namespace", "namespace is required"));
    }
    if ns.chars().count() > limits.max_label_chars {
        return Err(ApiError::invalid(
            "namespace",
            format!(
                "namespace is longer than {} characters",
                limits.max_label_chars
            ),
        ));
    }
    if !ns
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    {
        return Err(ApiError::invalid(
            "namespace",
            format!("namespace `{ns}` may only contain letters, digits, `.`, `_`, `:` and `-`"),
        ));
    }
    Ok(())
}

/// An id-like label (agent, user, session, tag): non-blank, bounded, no control characters.
pub fn label(limits: &Limits, field: &str, value: &str) -> ApiResult<()> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be empty or blank"),
        ));
    }
    if value.chars().count() > limits.max_label_chars {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} is longer than {} characters",
                limits.max_label_chars
            ),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// An optional label.
pub fn opt_label(limits: &Limits, field: &str, value: Option<&str>) -> ApiResult<()> {
    value.map_or(Ok(()), |v| label(limits, field, v))
}

/// An optional agent id: a label, and never `*`, which in visibility means
/// "every agent" (a private memory of agent `*` would be readable by all).
pub fn agent(limits: &Limits, field: &str, value: Option<&str>) -> ApiResult<()> {
    opt_label(limits, field, value)?;
    if value.is_some_and(|v| v.trim() == crate::auth::EVERY_AGENT) {
        return Err(ApiError::invalid(
            field,
            format!("{field} `*` is reserved (it stands for every agent); name one agent"),
        ));
    }
    Ok(())
}

/// Memory text: non-blank and at most `max_text_chars`.
pub fn text(limits: &Limits, field: &str, text: &str) -> ApiResult<()> {
    // Whitespace and control characters alone say nothing (e.g. "\u0000").
    if !text.chars().any(|c| !c.is_whitespace() && !c.is_control()) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be empty or only whitespace and control characters"),
        ));
    }
    let chars = text.chars().count();
    if chars > limits.max_text_chars {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} has {chars} characters; the limit is {}",
                limits.max_text_chars
            ),
        ));
    }
    Ok(())
}

/// Tags: at most `max_tags`, each a valid label.
pub fn tags(limits: &Limits, field: &str, tags: &[String]) -> ApiResult<()> {
    if tags.len() > limits.max_tags {
        return Err(ApiError::invalid(
            field,
            format!(
                "{} tags given; the limit is {}",
                tags.len(),
                limits.max_tags
            ),
        ));
    }
    tags.iter().try_for_each(|t| label(limits, field, t))
}

/// Metadata: at most `max_metadata_bytes` of JSON.
pub fn metadata(limits: &Limits, metadata: &Map<String, Value>) -> ApiResult<()> {
    let size = serde_json::to_vec(metadata)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > limits.max_metadata_bytes {
        return Err(ApiError::invalid(
            "metadata",
            format!(
                "metadata is {size} bytes of JSON; the limit is {}",
                limits.max_metadata_bytes
            ),
        ));
    }
    if metadata.keys().any(|k| k.is_empty()) {
        return Err(ApiError::invalid(
            "metadata",
            "metadata keys must not be empty",
        ));
    }
    let depth = metadata.values().map(nesting).max().unwrap_or(0) + 1;
    within_depth("metadata", depth)
}

/// Free-form JSON stored in a record (a session's `data`): no deeper than
/// metadata may be, for the same reason.
pub fn json(field: &str, value: &Value) -> ApiResult<()> {
    within_depth(field, nesting(value))
}

fn within_depth(field: &str, depth: usize) -> ApiResult<()> {
    if depth > MAX_METADATA_DEPTH {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} nests {depth} levels of objects and arrays; the limit is {MAX_METADATA_DEPTH}"
            ),
        ));
    }
    Ok(())
}

/// How deep metadata (and other stored JSON) may nest. A stored memory holds its metadata a few
/// levels down (and again in each history entry), and serde_json refuses to
/// read past 128 levels: a deeper value would be accepted here and then make
/// the memory unreadable after its first change.
pub const MAX_METADATA_DEPTH: usize = 32;

/// Levels of objects and arrays in `value` (a scalar is 0).
fn nesting(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

/// An expiry, which must lie in the future.
pub fn expiry(expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> ApiResult<()> {
    match expires_at {
        Some(t) if t <= now => Err(ApiError::invalid(
            "expires_at",
            "expires_at is in the past; omit it or give a future time",
        )),
        _ => Ok(()),
    }
}

/// `top_k`: 1 to `max_top_k`.
pub fn top_k(limits: &Limits, field: &str, k: usize) -> ApiResult<usize> {
    if k == 0 || k > limits.max_top_k {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} must be between 1 and {}, got {k}",
                limits.max_top_k
            ),
        ));
    }
    Ok(k)
}

/// A caller-supplied vector: right length, finite, not all zeros.
pub fn vector(dims: usize, v: &[f32]) -> ApiResult<()> {
    if v.len() != dims {
        return Err(ApiError::invalid(
            "vector",
            format!(
                "vector has {} dimensions; this namespace's model has {dims}",
                v.len()
            ),
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(ApiError::invalid(
            "vector",
            format!("vector component {i} is not a finite number"),
        ));
    }
    if v.iter().all(|x| *x == 0.0) {
        return Err(ApiError::invalid(
            "vector",
            "vector is all zeros; cosine similarity needs a direction",
        ));
    }
    Ok(())
}

/// A memory id as a client sent it (path segment, tool argument).
pub fn memory_id(raw: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| ApiError::invalid("id", format!("`{raw}` is not a memory id (a UUID)")))
}

/// A namespace's memory policy: every setting in its range.
pub fn policy(p: &crate::model::MemoryPolicy) -> ApiResult<()> {
    match p.problem() {
        Some((field, message)) => Err(ApiError::invalid(field, message)),
        None => Ok(()),
    }
}

/// The version a conditional write is based on: `If-Match` or the body's
/// `version` (which must agree when both are given).
pub fn expected_version(if_match: Option<u64>, body: Option<u64>) -> ApiResult<Option<u64>> {
    match (if_match, body) {
        (Some(a), Some(b)) if a != b => Err(ApiError::bad_request(
            "If-Match and version name different versions",
        )),
        (a, b) => Ok(a.or(b)),
    }
}

/// A 412 unless memory `id`, stored at `stored`, is at the `expected` version (if any).
pub fn at_version(id: uuid::Uuid, stored: u64, expected: Option<u64>) -> ApiResult<()> {
    match expected {
        Some(v) if v != stored => Err(ApiError::PreconditionFailed {
            message: format!("memory {id} is at version {stored}, not {v}; reload it and retry"),
            current_version: Some(stored),
        }),
        _ => Ok(()),
    }
}
