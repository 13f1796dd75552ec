//! Search responses that carry only some of each memory's fields
//! (`POST /v1/memories/search?fields=text,metadata`): a caller that reads
//! a hit's text and metadata need not have the server encode, and itself
//! parse, the content hash, the model name and six timestamps of each one.
//!
//! [`Projected`] writes the response by hand, field by field, because a
//! derive cannot leave fields out at run time. A test holds it to the
//! derived form with every field chosen, so a field added to
//! [`SearchResponse`], [`SearchHit`] or [`Memory`] and not here fails it.

use serde::ser::{Serialize, SerializeStruct, Serializer};
use time::OffsetDateTime;

use crate::{Memory, SearchHit, SearchResponse};

/// A field of [`Memory`], by its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryField {
    /// `id` (always returned).
    Id,
    /// `namespace`.
    Namespace,
    /// `agent_id`.
    AgentId,
    /// `user_id`.
    UserId,
    /// `session_id`.
    SessionId,
    /// `kind`.
    Kind,
    /// `text`.
    Text,
    /// `tags`.
    Tags,
    /// `metadata`.
    Metadata,
    /// `visibility`.
    Visibility,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// `expires_at`.
    ExpiresAt,
    /// `version`.
    Version,
    /// `content_hash`.
    ContentHash,
    /// `embedding_model`.
    EmbeddingModel,
    /// `valid_from`.
    ValidFrom,
    /// `valid_until`.
    ValidUntil,
    /// `superseded_by`.
    SupersededBy,
}

impl MemoryField {
    /// Every field, in the order a memory is written.
    pub const ALL: [MemoryField; 19] = [
        Self::Id,
        Self::Namespace,
        Self::AgentId,
        Self::UserId,
        Self::SessionId,
        Self::Kind,
        Self::Text,
        Self::Tags,
        Self::Metadata,
        Self::Visibility,
        Self::CreatedAt,
        Self::UpdatedAt,
        Self::ExpiresAt,
        Self::Version,
        Self::ContentHash,
        Self::EmbeddingModel,
        Self::ValidFrom,
        Self::ValidUntil,
        Self::SupersededBy,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Namespace => "namespace",
            Self::AgentId => "agent_id",
            Self::UserId => "user_id",
            Self::SessionId => "session_id",
            Self::Kind => "kind",
            Self::Text => "text",
            Self::Tags => "tags",
            Self::Metadata => "metadata",
            Self::Visibility => "visibility",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::ExpiresAt => "expires_at",
            Self::Version => "version",
            Self::ContentHash => "content_hash",
            Self::EmbeddingModel => "embedding_model",
            Self::ValidFrom => "valid_from",
            Self::ValidUntil => "valid_until",
            Self::SupersededBy => "superseded_by",
        }
    }

    /// The field named `name` on the wire.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// The fields a projected response keeps of each memory: `id`, and the
/// ones named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryFields(u32);

impl MemoryFields {
    /// Every field: a projection that changes nothing.
    pub fn all() -> Self {
        Self(MemoryField::ALL.iter().fold(0, |bits, f| bits | f.bit()))
    }

    /// Parses a comma-separated list of wire names (`text,metadata`);
    /// `id` is kept whether named or not. The error says what to send.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut bits = MemoryField::Id.bit();
        for name in list.split(',').map(str::trim) {
            let field = MemoryField::parse(name).ok_or_else(|| {
                let known: Vec<&str> = MemoryField::ALL.iter().map(|f| f.name()).collect();
                let shown = if name.is_empty() { "(empty)" } else { name };
                format!(
                    "`fields` names {shown:?}, which is not a memory field; \
                     name some of: {}",
                    known.join(", ")
                )
            })?;
            bits |= field.bit();
        }
        Ok(Self(bits))
    }

    /// Whether `field` is kept.
    pub fn contains(self, field: MemoryField) -> bool {
        self.0 & field.bit() != 0
    }
}

/// A search response whose memories carry only `fields`; everything else
/// (scores, ranks, the plan) is written as [`SearchResponse`] writes it.
pub struct Projected<'a> {
    /// The whole response.
    pub response: &'a SearchResponse,
    /// What to keep of each memory.
    pub fields: MemoryFields,
}

impl Serialize for Projected<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.response;
        let hits: Vec<ProjectedHit<'_>> = r
            .results
            .iter()
            .map(|hit| ProjectedHit {
                hit,
                fields: self.fields,
            })
            .collect();
        let mut out = s.serialize_struct("SearchResponse", 8)?;
        out.serialize_field("results", &hits)?;
        out.serialize_field("mode", &r.mode)?;
        out.serialize_field("plan", &r.plan)?;
        out.serialize_field("candidates", &r.candidates)?;
        out.serialize_field("took_ms", &r.took_ms)?;
        if let Some(t) = &r.time_range {
            out.serialize_field("time_range", t)?;
        }
        if !r.entities.is_empty() {
            out.serialize_field("entities", &r.entities)?;
        }
        if let Some(f) = &r.feedback {
            out.serialize_field("feedback", f)?;
        }
        out.end()
    }
}

struct ProjectedHit<'a> {
    hit: &'a SearchHit,
    fields: MemoryFields,
}

impl Serialize for ProjectedHit<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = self.hit;
        let mut out = s.serialize_struct("SearchHit", 9)?;
        out.serialize_field(
            "memory",
            &ProjectedMemory {
                memory: &h.memory,
                fields: self.fields,
            },
        )?;
        out.serialize_field("score", &h.score)?;
        out.serialize_field("similarity", &h.similarity)?;
        out.serialize_field("keyword_score", &h.keyword_score)?;
        out.serialize_field("fused_score", &h.fused_score)?;
        out.serialize_field("vector_rank", &h.vector_rank)?;
        out.serialize_field("keyword_rank", &h.keyword_rank)?;
        out.serialize_field("recency", &h.recency)?;
        if let Some(n) = &h.neighbor {
            out.serialize_field("neighbor", n)?;
        }
        out.end()
    }
}

struct ProjectedMemory<'a> {
    memory: &'a Memory,
    fields: MemoryFields,
}

impl Serialize for ProjectedMemory<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use MemoryField as F;
        let m = self.memory;
        let mut out = s.serialize_struct("Memory", MemoryField::ALL.len())?;
        for field in MemoryField::ALL {
            if !self.fields.contains(field) {
                continue;
            }
            let name = field.name();
            match field {
                F::Id => out.serialize_field(name, &m.id)?,
                F::Namespace => out.serialize_field(name, &m.namespace)?,
                F::AgentId => out.serialize_field(name, &m.agent_id)?,
                F::UserId => out.serialize_field(name, &m.user_id)?,
                F::SessionId => out.serialize_field(name, &m.session_id)?,
                F::Kind => out.serialize_field(name, &m.kind)?,
                F::Text => out.serialize_field(name, &m.text)?,
                F::Tags => out.serialize_field(name, &m.tags)?,
                F::Metadata => out.serialize_field(name, &m.metadata)?,
                F::Visibility => out.serialize_field(name, &m.visibility)?,
                F::CreatedAt => out.serialize_field(name, &Rfc3339(Some(&m.created_at)))?,
                F::UpdatedAt => out.serialize_field(name, &Rfc3339(Some(&m.updated_at)))?,
                F::ExpiresAt => out.serialize_field(name, &Rfc3339(m.expires_at.as_ref()))?,
                F::Version => out.serialize_field(name, &m.version)?,
                F::ContentHash => out.serialize_field(name, &m.content_hash)?,
                F::EmbeddingModel => out.serialize_field(name, &m.embedding_model)?,
                // As the derive writes them: left out when unset.
                F::ValidFrom if m.valid_from.is_some() => {
                    out.serialize_field(name, &Rfc3339(m.valid_from.as_ref()))?
                }
                F::ValidUntil if m.valid_until.is_some() => {
                    out.serialize_field(name, &Rfc3339(m.valid_until.as_ref()))?
                }
                F::SupersededBy if m.superseded_by.is_some() => {
                    out.serialize_field(name, &m.superseded_by)?
                }
                F::ValidFrom | F::ValidUntil | F::SupersededBy => {}
            }
        }
        out.end()
    }
}

/// A time as `Memory` writes its times: RFC 3339, or `null`.
struct Rfc3339<'a>(Option<&'a OffsetDateTime>);

impl Serialize for Rfc3339<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(t) => time::serde::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FeedbackUsed, Kind, Neighbor, SearchMode, TimeRange, Visibility};
    use serde_json::{Value, json};
    use uuid::Uuid;

    fn memory(all_set: bool) -> Memory {
        let t = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        Memory {
            id: Uuid::from_u128(7),
            namespace: "ns".into(),
            agent_id: all_set.then_some("a".into()),
            user_id: all_set.then_some("u".into()),
            session_id: all_set.then_some("s".into()),
            kind: Kind::Episodic,
            text: "Alice drinks tea".into(),
            tags: vec!["t".into()],
            metadata: json!({"i": 3, "g": "x"}).as_object().unwrap().clone(),
            visibility: Visibility::Private,
            created_at: t,
            updated_at: t,
            expires_at: all_set.then_some(t),
            version: 4,
            content_hash: "ab".into(),
            embedding_model: "m".into(),
            valid_from: all_set.then_some(t),
            valid_until: all_set.then_some(t),
            superseded_by: all_set.then_some(Uuid::from_u128(9)),
        }
    }

    fn response(all_set: bool) -> SearchResponse {
        let t = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let hit = SearchHit {
            memory: memory(all_set),
            score: 0.5,
            similarity: Some(0.5),
            keyword_score: None,
            fused_score: all_set.then_some(0.25),
            vector_rank: Some(1),
            keyword_rank: None,
            recency: None,
            neighbor: all_set.then_some(Neighbor {
                of: Uuid::from_u128(1),
                offset: -1,
            }),
        };
        SearchResponse {
            results: vec![hit.clone(), hit],
            mode: SearchMode::Hybrid,
            plan: "graph".into(),
            candidates: 12,
            took_ms: 0.3,
            time_range: all_set.then(|| TimeRange {
                from: t,
                to: t,
                phrase: "today".into(),
                applied: crate::QueryTime::Boost,
            }),
            entities: if all_set {
                vec!["Alice".into()]
            } else {
                vec![]
            },
            feedback: all_set.then(|| FeedbackUsed {
                from: vec![Uuid::from_u128(2)],
                terms: vec!["tea".into()],
            }),
        }
    }

    #[test]
    fn every_field_chosen_writes_what_the_derive_writes() {
        // Both with every optional part set and with none: a field added to
        // the response, a hit or a memory and not to the projection fails here.
        for all_set in [true, false] {
            let r = response(all_set);
            let projected = Projected {
                response: &r,
                fields: MemoryFields::all(),
            };
            assert_eq!(
                serde_json::to_value(&projected).unwrap(),
                serde_json::to_value(&r).unwrap(),
                "all_set = {all_set}"
            );
        }
    }

    #[test]
    fn a_projection_keeps_id_and_the_named_fields_only() {
        let r = response(true);
        let fields = MemoryFields::parse("text, metadata").unwrap();
        let v = serde_json::to_value(Projected {
            response: &r,
            fields,
        })
        .unwrap();
        let full = serde_json::to_value(&r).unwrap();
        for (hit, whole) in v["results"]
            .as_array()
            .unwrap()
            .iter()
            .zip(full["results"].as_array().unwrap())
        {
            let memory = hit["memory"].as_object().unwrap();
            let mut keys: Vec<&str> = memory.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["id", "metadata", "text"]);
            for key in keys {
                assert_eq!(memory[key], whole["memory"][key]);
            }
            // The hit's own fields are untouched.
            let mut hit = hit.clone();
            let mut whole = whole.clone();
            hit.as_object_mut().unwrap().remove("memory");
            whole.as_object_mut().unwrap().remove("memory");
            assert_eq!(hit, whole);
        }
        assert_eq!(v["plan"], "graph");
        assert_eq!(v["entities"], json!(["Alice"]));
    }

    #[test]
    fn unset_optional_times_stay_out_when_named_and_null_ones_stay_null() {
        let r = response(false);
        let fields = MemoryFields::parse("valid_from,superseded_by,expires_at").unwrap();
        let v = serde_json::to_value(Projected {
            response: &r,
            fields,
        })
        .unwrap();
        assert_eq!(
            v["results"][0]["memory"],
            json!({"id": Uuid::from_u128(7), "expires_at": Value::Null})
        );
    }

    #[test]
    fn unknown_or_empty_names_are_refused_with_the_list_of_fields() {
        for bad in ["txt", "text,", "", "text,,metadata", "TEXT"] {
            let err = MemoryFields::parse(bad).unwrap_err();
            assert!(err.contains("name some of: id, namespace"), "{bad}: {err}");
        }
        assert!(MemoryFields::parse("txt").unwrap_err().contains("\"txt\""));
        assert_eq!(
            MemoryFields::parse("id").unwrap(),
            MemoryFields::parse("id,id").unwrap()
        );
        for f in MemoryField::ALL {
            assert_eq!(MemoryField::parse(f.name()), Some(f));
            assert!(MemoryFields::parse(f.name()).unwrap().contains(f));
            assert!(
                MemoryFields::parse(f.name())
                    .unwrap()
                    .contains(MemoryField::Id)
            );
        }
    }
}
