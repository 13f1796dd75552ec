//! A memory as a stored record: the document beside its vector, the index
//! attributes that say who may see it and which scope keys it has, and the
//! mapping back to the API's [`Memory`].

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;
use vector_index::store::{Entry, Record};
use vector_index::{Field, Filter, Payload, TimeField};

pub(crate) use crate::ids::derived_id;
use crate::ids::digest_bytes;

use super::MemoryService;
use crate::error::{ApiError, ApiResult};
use crate::model::{Kind, Memory, MemoryFilter, Revision, Visibility};
use crate::validate;

/// The part of a [`Doc`] a [`Memory`] shows, read without building the rest:
/// a memory updated many times carries up to `max_history` prior states,
/// which every search, list and get would otherwise parse and drop. Its
/// fields are read as [`Doc`] reads them (a test holds the two together).
#[derive(Debug, Deserialize)]
struct Shown {
    text: String,
    #[serde(default)]
    metadata: Map<String, Value>,
    #[serde(default)]
    visibility: Visibility,
    content_hash: String,
    embedding_model: String,
    #[serde(default)]
    valid_from: Option<i64>,
    #[serde(default)]
    valid_until: Option<i64>,
    #[serde(default)]
    superseded_by: Option<Uuid>,
}

impl Shown {
    fn of(record: &impl Stored) -> ApiResult<Self> {
        serde_json::from_slice(record.document())
            .map_err(|e| ApiError::Internal(format!("memory {} is unreadable: {e}", record.id())))
    }
}

/// What a memory is read from: a whole record, or an entry without its
/// vector (search results and lists, which never use it).
pub(super) trait Stored {
    /// The point's id.
    fn id(&self) -> Uuid;
    /// Its version.
    fn version(&self) -> u64;
    /// Its index payload.
    fn payload(&self) -> &Payload;
    /// Its document (a [`Doc`] for a memory).
    fn document(&self) -> &[u8];
}

/// Both types carry the four fields under the same names.
macro_rules! stored {
    ($($t:ty),*) => {$(
        impl Stored for $t {
            fn id(&self) -> Uuid {
                self.id
            }
            fn version(&self) -> u64 {
                self.version
            }
            fn payload(&self) -> &Payload {
                &self.payload
            }
            fn document(&self) -> &[u8] {
                &self.document
            }
        }
    )*};
}

stored!(Record, Entry);

/// The document stored beside each memory's vector.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Doc {
    pub(super) text: String,
    #[serde(default)]
    pub(super) metadata: Map<String, Value>,
    #[serde(default)]
    pub(super) visibility: Visibility,
    pub(super) content_hash: String,
    pub(super) embedding_model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) idempotency_key: Option<String>,
    /// Prior states, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) history: Vec<Revision>,
    /// The caller gave the vector: it is never re-embedded from text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) client_vector: bool,
    /// When the fact starts to hold (ms since the epoch), where stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) valid_from: Option<i64>,
    /// When it stops holding, stated or set on supersede.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) valid_until: Option<i64>,
    /// The memory that replaced this one (frozen from then on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) superseded_by: Option<Uuid>,
    /// Why the current state was written, where recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) reason: Option<String>,
}

/// Attribute prefixes in the index payload (see [`Payload::attributes`]).
pub(super) mod attr {
    /// `vis:*` for shared memories, `vis:<agent>` for private ones.
    pub const VISIBLE: &str = "vis:";
    /// `m:<key>=<JSON value>` for each top-level scalar of the metadata.
    pub const META: &str = "m:";
    /// `dup:<digest of scope and text>`.
    pub const DUPLICATE: &str = "dup:";
    /// `idem:<digest of namespace, author agent and idempotency key>`.
    pub const IDEMPOTENCY: &str = "idem:";
    /// Carried by a superseded memory, whose `updated_at` is when it was superseded.
    pub const SUPERSEDED: &str = "state:superseded";
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn digest(parts: &[&str]) -> String {
    hex(&digest_bytes(parts))
}

pub(super) use crate::epoch_ms::{from_millis, millis};

/// The metadata attribute for `key = value`, if the value is a filterable scalar.
pub(super) fn meta_attr(key: &str, value: &Value) -> Option<String> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
            Some(format!("{}{key}={value}", attr::META))
        }
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// The scope in which identical text counts as an exact duplicate: the same
/// text is the same memory only when everything that tells two memories apart
/// is the same too — user, author agent, visibility, session and metadata. So
/// "Take care!" said by two speakers (metadata) or in two conversations
/// (sessions) is two memories; the same note stored twice is one.
pub(super) fn duplicate_attr(p: &Payload, doc: &Doc) -> String {
    // serde_json's maps are ordered by key, so equal metadata gives equal text.
    let metadata = serde_json::to_string(&doc.metadata).unwrap_or_default();
    format!(
        "{}{}",
        attr::DUPLICATE,
        digest(&[
            &p.namespace,
            p.user_id.as_deref().unwrap_or(""),
            p.agent_id.as_deref().unwrap_or(""),
            match doc.visibility {
                Visibility::Shared => "shared",
                Visibility::Private => "private",
            },
            p.session_id.as_deref().unwrap_or(""),
            &metadata,
            &doc.text,
        ])
    )
}

/// Idempotency keys are scoped to the agent that wrote (none for an unbound
/// key acting as no agent): another agent reusing a key gets its own memory,
/// never a replay of one it might not be allowed to see.
pub(super) fn idempotency_attr(ns: &str, agent: Option<&str>, key: &str) -> String {
    format!(
        "{}{}",
        attr::IDEMPOTENCY,
        digest(&[ns, agent.unwrap_or(""), key])
    )
}

/// The attribute every shared memory carries (what all readers of its namespace see).
pub fn shared_attribute() -> String {
    visibility_attr(Visibility::Shared, None)
}

pub(super) fn visibility_attr(visibility: Visibility, author: Option<&str>) -> String {
    match (visibility, author) {
        (Visibility::Private, Some(a)) => format!("{}{a}", attr::VISIBLE),
        _ => format!("{}*", attr::VISIBLE),
    }
}

/// The duplicate-scope key and idempotency key of a memory.
pub(super) fn scope_keys(p: &Payload, doc: &Doc) -> (String, Option<String>) {
    let dup = duplicate_attr(p, doc);
    let idem = doc
        .idempotency_key
        .as_deref()
        .map(|k| idempotency_attr(&p.namespace, p.agent_id.as_deref(), k));
    (dup, idem)
}

/// The index attributes of a memory: who may see it, its scope keys, its metadata.
pub(super) fn attributes(
    p: &Payload,
    doc: &Doc,
    (dup, idem): (String, Option<String>),
) -> Vec<String> {
    let mut a = vec![visibility_attr(doc.visibility, p.agent_id.as_deref())];
    if doc.superseded_by.is_some() {
        // A superseded memory is no one's duplicate: the same text stored
        // again is a new, live memory.
        a.push(attr::SUPERSEDED.to_owned());
    } else {
        a.push(dup);
    }
    a.extend(idem);
    a.extend(doc.metadata.iter().filter_map(|(k, v)| meta_attr(k, v)));
    a
}

/// Tags with repeats dropped, first occurrence kept.
pub(super) fn distinct_tags(tags: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    tags.iter().filter(|t| seen.insert(*t)).cloned().collect()
}

/// A memory's state, written for `reason`, as a history entry.
pub(super) fn revision(m: Memory, reason: Option<String>) -> Revision {
    Revision {
        reason,
        version: m.version,
        text: m.text,
        tags: m.tags,
        metadata: m.metadata,
        kind: m.kind,
        visibility: m.visibility,
        updated_at: m.updated_at,
    }
}

impl Doc {
    /// Moves the current state `current` (with the reason it was written
    /// for) into history, keeping at most `max` prior states; the next state
    /// is written for `reason`.
    pub(super) fn push_history(&mut self, current: Memory, reason: Option<String>, max: usize) {
        let before = revision(current, self.reason.take());
        self.history.insert(0, before);
        self.history.truncate(max);
        self.reason = reason;
    }

    /// The document of a memory record.
    pub(super) fn of(record: &impl Stored) -> ApiResult<Self> {
        serde_json::from_slice(record.document())
            .map_err(|e| ApiError::Internal(format!("memory {} is unreadable: {e}", record.id())))
    }

    /// The contextual text the stored vector was made from, or, for memories
    /// written before contextual text was indexed, their text. (With a turn
    /// before, its text is in the contextual text and its vector in the
    /// stored vector: when either text changes, the vector is made again.)
    pub(super) fn embedded_from<'a>(&'a self, payload: &'a Payload) -> &'a str {
        if payload.text.is_empty() {
            &self.text
        } else {
            &payload.text
        }
    }
}

impl MemoryService {
    /// Turns a stored record into a memory (`None` if it is not a memory).
    pub(super) fn memory_of(record: &impl Stored) -> ApiResult<Memory> {
        let doc = Shown::of(record)?;
        let p = record.payload();
        Ok(Memory {
            id: record.id(),
            namespace: p.namespace.clone(),
            agent_id: p.agent_id.clone(),
            user_id: p.user_id.clone(),
            session_id: p.session_id.clone(),
            kind: p.kind.as_deref().and_then(Kind::parse).unwrap_or_default(),
            text: doc.text,
            tags: p.tags.clone(),
            metadata: doc.metadata,
            visibility: doc.visibility,
            created_at: from_millis(p.created_at),
            updated_at: from_millis(p.updated_at),
            expires_at: p.expires_at.map(from_millis),
            version: record.version(),
            content_hash: doc.content_hash,
            embedding_model: doc.embedding_model,
            valid_from: doc.valid_from.map(from_millis),
            valid_until: doc.valid_until.map(from_millis),
            superseded_by: doc.superseded_by,
        })
    }

    /// The memory of a record read for a list, search or export, or `None`
    /// (logged and counted) when it cannot be decoded.
    pub(super) fn readable(&self, record: &impl Stored) -> Option<Memory> {
        self.skip_unreadable(record.id(), Self::memory_of(record))
    }

    /// `decoded`, or `None` when record `id` could not be decoded, with an
    /// error log naming it and `memory_unreadable_records_total`: one bad
    /// record must not fail every request that touches it.
    pub(super) fn skip_unreadable<T>(&self, id: Uuid, decoded: ApiResult<T>) -> Option<T> {
        match decoded {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(id = %id, error = %e, "skipping an unreadable record");
                self.metrics.unreadable_record();
                None
            }
        }
    }

    /// Whether the caller may see `record`, acting as `agent` (expired
    /// records never get here: `DurableCollection`'s reads hide them).
    pub(super) fn visible(record: &impl Stored, agent: Option<&str>) -> bool {
        let p = record.payload();
        let want_shared = format!("{}*", attr::VISIBLE);
        p.attributes.iter().any(|a| {
            a == &want_shared || agent.is_some_and(|ag| a.strip_prefix(attr::VISIBLE) == Some(ag))
        })
    }

    /// The condition "not superseded", or with `as_of`, "created by then
    /// and not superseded by then" (a superseded memory is frozen, so its
    /// `updated_at` is the instant it was superseded).
    pub(super) fn believed(filter: Filter, as_of: Option<i64>) -> Filter {
        let superseded = Filter::all().eq(Field::Attribute, attr::SUPERSEDED);
        match as_of {
            None => filter.not(superseded),
            Some(t) => filter
                .range(TimeField::Created, None, t.checked_add(1))
                .not(superseded.range(TimeField::Updated, None, t.checked_add(1))),
        }
    }

    /// The filter of what `agent` may see in `ns` (`DurableCollection`'s
    /// queries leave out what has expired).
    pub(super) fn visible_filter(ns: &str, agent: Option<&str>) -> Filter {
        let mut readers = vec![format!("{}*", attr::VISIBLE)];
        if let Some(a) = agent {
            readers.push(format!("{}{a}", attr::VISIBLE));
        }
        Filter::all()
            .eq(Field::Namespace, ns)
            .any_of(Field::Attribute, readers)
    }

    /// Adds the conditions of `f` to `filter`.
    pub(super) fn apply_filter(&self, mut filter: Filter, f: &MemoryFilter) -> ApiResult<Filter> {
        let l = &self.limits;
        for (field, name, value) in [
            (Field::Agent, "filter.agent_id", &f.agent_id),
            (Field::User, "filter.user_id", &f.user_id),
            (Field::Session, "filter.session_id", &f.session_id),
        ] {
            if let Some(v) = value {
                validate::label(l, name, v)?;
                filter = filter.eq(field, v.as_str());
            }
        }
        if let Some(kind) = f.kind {
            filter = filter.eq(Field::Kind, kind.as_str());
        }
        validate::tags(l, "filter.tags_any", &f.tags_any)?;
        validate::tags(l, "filter.tags_all", &f.tags_all)?;
        if !f.tags_any.is_empty() {
            filter = filter.any_of(Field::Tag, f.tags_any.iter().cloned());
        }
        filter = filter.all_tags(f.tags_all.iter().cloned());
        for (field, after, before) in [
            (TimeField::Created, f.created_after, f.created_before),
            (TimeField::Updated, f.updated_after, f.updated_before),
        ] {
            if after.is_some() || before.is_some() {
                filter = filter.range(field, after.map(millis), before.map(millis));
            }
        }
        for (k, v) in &f.metadata {
            let a = meta_attr(k, v).ok_or_else(|| {
                ApiError::invalid(
                    "filter.metadata",
                    format!("metadata filter `{k}` must be a string, number, boolean or null"),
                )
            })?;
            filter = filter.eq(Field::Attribute, a);
        }
        Ok(filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Shown`] reads each field as [`Doc`] does, set or left at its
    /// default, with history, a reason and an idempotency key beside them.
    #[test]
    fn a_shown_memory_reads_its_fields_as_the_whole_document_does() {
        let set = Doc {
            text: "now".into(),
            metadata: serde_json::json!({"k": [1, {"n": null}]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            visibility: Visibility::Private,
            content_hash: "h".into(),
            embedding_model: "m".into(),
            idempotency_key: Some("i".into()),
            history: Vec::new(),
            client_vector: true,
            valid_from: Some(1),
            valid_until: Some(2),
            superseded_by: Some(Uuid::from_u128(7)),
            reason: Some("r".into()),
        };
        let then = Revision {
            version: 1,
            text: "then".into(),
            tags: vec!["t".into()],
            metadata: Map::new(),
            kind: Kind::default(),
            visibility: Visibility::Shared,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            reason: Some("first".into()),
        };
        let mut with_history = set.clone();
        with_history.history = vec![then.clone(), then];
        let bare = serde_json::json!({"text": "t", "content_hash": "h", "embedding_model": "m"});
        for doc in [
            serde_json::to_vec(&set).unwrap(),
            serde_json::to_vec(&with_history).unwrap(),
            serde_json::to_vec(&bare).unwrap(),
        ] {
            let record = Entry {
                id: Uuid::from_u128(1),
                version: 3,
                payload: Payload::new("ns"),
                document: doc,
            };
            let (whole, shown) = (Doc::of(&record).unwrap(), Shown::of(&record).unwrap());
            assert_eq!(
                (whole.text, whole.metadata, whole.visibility),
                (shown.text, shown.metadata, shown.visibility)
            );
            assert_eq!(
                (whole.content_hash, whole.embedding_model),
                (shown.content_hash, shown.embedding_model)
            );
            assert_eq!(
                (whole.valid_from, whole.valid_until, whole.superseded_by),
                (shown.valid_from, shown.valid_until, shown.superseded_by)
            );
        }
    }

    #[test]
    fn metadata_attributes_distinguish_types() {
        assert_ne!(
            meta_attr("k", &Value::from(1)),
            meta_attr("k", &Value::from("1"))
        );
        assert!(meta_attr("k", &serde_json::json!([1])).is_none());
    }
}
