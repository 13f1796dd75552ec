//! Superseding a memory: a new memory replaces an old one, which is kept.
//!
//! The successor is created first, with an idempotency key derived from the
//! old memory's id and version, then the old memory is marked (its
//! `superseded_by`, `valid_until`, a history entry with the reason) in a
//! write that requires the version read. A retry after a crash between the
//! two writes replays the same successor and finishes the mark; a race with
//! another writer is a 412 and leaves the old memory live. A superseded
//! memory is frozen: updates are refused, so its `updated_at` stays the
//! instant it was superseded, which `as_of` searches rely on.

use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::IndexError;
use vector_index::store::{Expect, Record};

use super::record::{Doc, attributes, scope_keys};
use super::{MemoryService, millis};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::model::{Memory, NewMemory, Supersede, Superseded};
use crate::validate;

impl MemoryService {
    /// Replaces memory `id` by a new one built from `req`.
    pub async fn supersede(
        &self,
        who: &Principal,
        id: Uuid,
        req: Supersede,
        agent: Option<&str>,
    ) -> ApiResult<Superseded> {
        self.supersede_for(who, id, req, agent, serde_json::Map::new())
            .await
    }

    /// [`Self::supersede`], adding `provenance` to the successor's metadata.
    pub(super) async fn supersede_for(
        &self,
        who: &Principal,
        id: Uuid,
        req: Supersede,
        agent: Option<&str>,
        provenance: serde_json::Map<String, serde_json::Value>,
    ) -> ApiResult<Superseded> {
        validate::text(&self.limits, "text", &req.text)?;
        if let Some(r) = &req.reason {
            validate::text(&self.limits, "reason", r)?;
        }
        let record = self.load_visible(who, id, agent, Role::Write).await?;
        validate::at_version(id, record.version, req.version)?;
        let old = Self::memory_of(&record)?;
        if let Some(successor) = old.superseded_by {
            return Err(ApiError::Conflict(format!(
                "memory {id} was already superseded by {successor}"
            )));
        }
        if old.text == req.text {
            return Err(ApiError::invalid(
                "text",
                "the new text is the memory's own text; nothing to supersede",
            ));
        }
        let mut metadata = req.metadata.unwrap_or_else(|| old.metadata.clone());
        metadata.extend(provenance);
        let new = NewMemory {
            namespace: old.namespace.clone(),
            text: req.text,
            agent_id: who.acting_agent(agent),
            user_id: old.user_id.clone(),
            session_id: old.session_id.clone(),
            kind: req.kind.unwrap_or(old.kind),
            tags: req.tags.unwrap_or_else(|| old.tags.clone()),
            metadata,
            visibility: old.visibility,
            valid_from: req.valid_from,
            // The successor is meant to resemble what it replaces.
            allow_near_duplicate: true,
            allow_duplicate: false,
            created_at: None,
            idempotency_key: Some(format!("supersede:{id}:{}", record.version)),
            ..NewMemory::default()
        };
        let successor = self.create_one(who, new).await?.memory;
        if successor.id == id {
            return Err(ApiError::invalid(
                "text",
                "the new text is the memory's own text; nothing to supersede",
            ));
        }
        let now = OffsetDateTime::now_utc();
        let reason = match req.reason {
            Some(r) => format!("superseded by {}: {r}", successor.id),
            None => format!("superseded by {}", successor.id),
        };
        let until = millis(req.valid_from.unwrap_or(now));
        match self
            .mark_superseded(&record, successor.id, until, reason)
            .await
        {
            Ok(previous) => Ok(Superseded {
                previous,
                successor,
            }),
            Err(ApiError::PreconditionFailed {
                current_version, ..
            }) => Err(ApiError::PreconditionFailed {
                message: format!(
                    "memory {id} changed while it was being superseded; reload it and retry \
                     (the successor {} is stored)",
                    successor.id
                ),
                current_version,
            }),
            Err(e) => Err(e),
        }
    }

    /// Marks `record` superseded by `successor` from `until` (ms), for
    /// `reason`, in a write that requires the version read (a 412 if it moved).
    pub(super) async fn mark_superseded(
        &self,
        record: &Record,
        successor: Uuid,
        until: i64,
        reason: String,
    ) -> ApiResult<Memory> {
        let id = record.id;
        let old = Self::memory_of(record)?;
        let mut doc = Doc::of(record)?;
        doc.push_history(old, Some(reason), self.limits.max_history);
        doc.superseded_by = Some(successor);
        doc.valid_until = Some(until);
        let mut payload = record.payload.clone();
        payload.updated_at = millis(OffsetDateTime::now_utc()).max(payload.created_at);
        payload.attributes = attributes(&payload, &doc, scope_keys(&payload, &doc));
        let document = serde_json::to_vec(&doc)
            .map_err(|e| ApiError::Internal(format!("encoding a memory: {e}")))?;
        // The vector is unchanged, so the index keeps the point's graph node.
        let write = self.collection.upsert_document(
            id,
            &record.vector,
            payload.clone(),
            &document,
            Expect::Version(record.version),
        );
        match self.timed("put", write).await {
            Ok(version) => Self::memory_of(&Record {
                id,
                version,
                vector: Vec::new(),
                payload,
                document,
            }),
            Err(IndexError::VersionConflict { found, .. }) => Err(ApiError::PreconditionFailed {
                message: format!("memory {id} changed meanwhile; reload it and retry"),
                current_version: found,
            }),
            Err(e) => Err(e.into()),
        }
    }
}
