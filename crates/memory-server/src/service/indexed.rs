//! What is indexed for a memory: its contextual text (keyword-indexed), the
//! text that is embedded, and the vector made from that embedding. The
//! template (`template.rs`) says what the texts hold; where it asks for
//! `{previous_turn}`, the turn before (`conversation.rs`) adds its text to
//! the first and a share of its vector to the last.

use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::Payload;

use super::MemoryService;
use super::conversation::{Place, PreviousTurn, with_previous};
use super::record::{Doc, distinct_tags, from_millis};
use super::template::Fields;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::model::NewMemory;

impl MemoryService {
    /// The contextual text of a new memory created at `created_at`, with
    /// the text of the turn before where its template asks for it (`None`
    /// renders the text that is embedded).
    pub(super) fn contextual(
        &self,
        who: &Principal,
        m: &NewMemory,
        created_at: OffsetDateTime,
        previous_turn: Option<&str>,
    ) -> String {
        let agent = who.acting_agent(m.agent_id.as_deref());
        let tags = distinct_tags(&m.tags);
        self.search.of(&m.namespace).template.render(&Fields {
            text: &m.text,
            namespace: &m.namespace,
            agent_id: agent.as_deref(),
            user_id: m.user_id.as_deref(),
            session_id: m.session_id.as_deref(),
            kind: m.kind.as_str(),
            tags: &tags,
            metadata: &m.metadata,
            created_at,
            previous_turn,
        })
    }

    /// A stored memory's texts as its namespace's template renders them now
    /// (reading the turn before, where the template asks for it).
    pub(super) async fn indexed_of(
        &self,
        id: Uuid,
        payload: &Payload,
        doc: &Doc,
    ) -> ApiResult<Indexed> {
        let template = &self.search.of(&payload.namespace).template;
        let previous = match Place::of(id, payload, doc) {
            Some(at) if template.wants_previous_turn() => self.previous_turn(&at).await?,
            _ => None,
        };
        let render = |previous_turn| {
            template.render(&Fields {
                text: &doc.text,
                namespace: &payload.namespace,
                agent_id: payload.agent_id.as_deref(),
                user_id: payload.user_id.as_deref(),
                session_id: payload.session_id.as_deref(),
                kind: payload.kind.as_deref().unwrap_or(""),
                tags: &payload.tags,
                metadata: &doc.metadata,
                created_at: from_millis(payload.created_at),
                previous_turn,
            })
        };
        let embedded = render(None);
        let text = match &previous {
            Some(p) => render(Some(p.text.as_str())),
            None => embedded.clone(),
        };
        Ok(Indexed {
            text,
            embedded,
            previous,
        })
    }
}

/// A memory's texts as its template renders them, and the turn before it.
pub(super) struct Indexed {
    /// The contextual text: keyword-indexed, and what a stored memory is
    /// compared with to see whether it needs re-indexing.
    pub(super) text: String,
    /// The text that is embedded (the contextual text without the turn before).
    pub(super) embedded: String,
    /// The turn before, where the template asks for it and there is one.
    pub(super) previous: Option<PreviousTurn>,
}

impl Indexed {
    /// The memory's vector from the embedding of [`Self::embedded`].
    pub(super) fn vector(&self, own: Vec<f32>) -> Vec<f32> {
        match &self.previous {
            Some(p) => with_previous(own, &p.vector),
            None => own,
        }
    }
}
