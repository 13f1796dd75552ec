//! The filterable attributes stored beside each vector.

use crate::error::{IndexError, Result};

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// Attributes of a point that searches can filter on.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Payload {
    /// Tenant namespace; required and non-empty.
    pub namespace: String,
    /// Authoring agent.
    pub agent_id: Option<String>,
    /// End user the point is about.
    pub user_id: Option<String>,
    /// Conversation session.
    pub session_id: Option<String>,
    /// Memory kind (semantic, episodic, ...); the index treats it as an opaque label.
    pub kind: Option<String>,
    /// Free-form labels; duplicates are ignored.
    pub tags: Vec<String>,
    /// Creation time.
    pub created_at: Millis,
    /// Last update time.
    pub updated_at: Millis,
    /// After this instant the point no longer matches "not expired" filters.
    pub expires_at: Option<Millis>,
    /// Further keyword labels for the caller's own filters (e.g. `key=value`
    /// pairs), kept apart from `tags` so users' tags never collide with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// Text indexed for keyword search (BM25 in the point's namespace); empty for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

/// A keyword attribute indexed with one bitmap per distinct value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// [`Payload::namespace`].
    Namespace,
    /// [`Payload::agent_id`].
    Agent,
    /// [`Payload::user_id`].
    User,
    /// [`Payload::session_id`].
    Session,
    /// [`Payload::kind`].
    Kind,
    /// Any entry of [`Payload::tags`].
    Tag,
    /// Any entry of [`Payload::attributes`].
    Attribute,
}

/// A timestamp attribute, filtered with ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeField {
    /// [`Payload::created_at`].
    Created,
    /// [`Payload::updated_at`].
    Updated,
    /// [`Payload::expires_at`] (points without one never match a range on it).
    Expires,
}

impl Payload {
    /// A payload in `namespace` with every other field empty.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            ..Self::default()
        }
    }

    /// Checks the invariants the index relies on.
    pub fn validate(&self) -> Result<()> {
        if self.namespace.is_empty() {
            return Err(IndexError::InvalidPayload(
                "namespace must not be empty".into(),
            ));
        }
        Ok(())
    }

    /// Every (field, value) pair this payload is indexed under.
    pub fn terms(&self) -> impl Iterator<Item = (Field, &str)> {
        let singles = [
            (Field::Namespace, Some(self.namespace.as_str())),
            (Field::Agent, self.agent_id.as_deref()),
            (Field::User, self.user_id.as_deref()),
            (Field::Session, self.session_id.as_deref()),
            (Field::Kind, self.kind.as_deref()),
        ];
        singles
            .into_iter()
            .filter_map(|(f, v)| v.map(|v| (f, v)))
            .chain(self.tags.iter().map(|t| (Field::Tag, t.as_str())))
            .chain(
                self.attributes
                    .iter()
                    .map(|a| (Field::Attribute, a.as_str())),
            )
    }

    /// The value of a timestamp field, if set.
    pub fn time(&self, field: TimeField) -> Option<Millis> {
        match field {
            TimeField::Created => Some(self.created_at),
            TimeField::Updated => Some(self.updated_at),
            TimeField::Expires => self.expires_at,
        }
    }

    /// Whether the point is still alive at `now`.
    pub fn alive_at(&self, now: Millis) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }
}
