//! One memory by id: get, history, update (optimistic, retried without
//! `If-Match`), delete. What the caller cannot see is 404 for all of them.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::IndexError;
use vector_index::store::{Expect, Record};

use super::record::{Doc, attributes, distinct_tags, hex, revision, scope_keys};
use super::{MemoryService, millis};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::model::{History, Memory, MemoryPatch, Visibility};
use crate::validate;
use providers::embed::Purpose;

/// Retries of a read-modify-write that lost a race without `If-Match`.
const PATCH_RETRIES: usize = 5;

impl MemoryService {
    /// Loads a memory the caller may see (acting as `agent`), or 404.
    pub(super) async fn load_visible(
        &self,
        who: &Principal,
        id: Uuid,
        agent: Option<&str>,
        role: Role,
    ) -> ApiResult<Record> {
        let not_found = || ApiError::NotFound(format!("memory {id} not found"));
        let record = self
            .timed("get", self.collection.get(id))
            .await?
            .ok_or_else(not_found)?;
        // What the caller cannot see is "not found", never "forbidden", whatever
        // the operation: another tenant's memory, another agent's private one.
        // Only then does the role count, so a 403 never confirms an id.
        if who.require(&record.payload.namespace, Role::Read).is_err() {
            return Err(not_found());
        }
        let agent = who.acting_agent(agent);
        if !Self::visible(&record, agent.as_deref()) {
            return Err(not_found());
        }
        who.require(&record.payload.namespace, role)?;
        Ok(record)
    }

    /// One memory.
    pub async fn get(&self, who: &Principal, id: Uuid, agent: Option<&str>) -> ApiResult<Memory> {
        let record = self.load_visible(who, id, agent, Role::Read).await?;
        Self::memory_of(&record)
    }

    /// The memory's states, newest first.
    pub async fn history(
        &self,
        who: &Principal,
        id: Uuid,
        agent: Option<&str>,
    ) -> ApiResult<History> {
        let record = self.load_visible(who, id, agent, Role::Read).await?;
        let reason = Doc::of(&record)?.reason;
        let mut revisions = vec![revision(Self::memory_of(&record)?, reason)];
        // A shared memory may have been a private draft: its earlier states
        // are shown only to its author, as they were when current.
        let author = record.payload.agent_id.as_deref();
        let is_author = author.is_some() && who.acting_agent(agent).as_deref() == author;
        revisions.extend(
            Doc::of(&record)?
                .history
                .into_iter()
                .filter(|r| r.visibility == Visibility::Shared || is_author),
        );
        Ok(History { id, revisions })
    }

    /// Applies `patch`; `if_match` (or `patch.version`) must name the stored version when given.
    pub async fn update(
        &self,
        who: &Principal,
        id: Uuid,
        patch: MemoryPatch,
        if_match: Option<u64>,
        agent: Option<&str>,
    ) -> ApiResult<Memory> {
        self.update_for(who, id, patch, (if_match, agent), None)
            .await
    }

    /// [`Self::update`], recording `reason` as why the new state was written.
    pub(super) async fn update_for(
        &self,
        who: &Principal,
        id: Uuid,
        patch: MemoryPatch,
        (if_match, agent): (Option<u64>, Option<&str>),
        reason: Option<String>,
    ) -> ApiResult<Memory> {
        let l = &self.limits;
        if let Some(t) = &patch.text {
            validate::text(l, "text", t)?;
        }
        if let Some(t) = &patch.tags {
            validate::tags(l, "tags", t)?;
        }
        if let Some(m) = &patch.metadata {
            validate::metadata(l, m)?;
        }
        let now = OffsetDateTime::now_utc();
        validate::expiry(patch.expires_at, now)?;
        if patch.clear_expiry && patch.expires_at.is_some() {
            return Err(ApiError::invalid(
                "clear_expiry",
                "give either expires_at or clear_expiry, not both",
            ));
        }
        let expected = validate::expected_version(if_match, patch.version)?;
        // The last embedding made, kept across retries: (embedded text, vector).
        let mut embedded: Option<(String, Vec<f32>)> = None;
        for _ in 0..PATCH_RETRIES {
            let record = self.load_visible(who, id, agent, Role::Write).await?;
            validate::at_version(id, record.version, expected)?;
            if patch.changes_nothing() {
                // No new version and no history entry (history keeps only
                // `max_history` states; an empty PATCH must not push real ones out).
                return Self::memory_of(&record);
            }
            let mut doc = Doc::of(&record)?;
            if let Some(successor) = doc.superseded_by {
                return Err(ApiError::Conflict(format!(
                    "memory {id} was superseded by {successor} and is kept as it was; \
                     update {successor} instead"
                )));
            }
            let embedded_from = doc.embedded_from(&record.payload).to_owned();
            let mut payload = record.payload.clone();
            doc.push_history(Self::memory_of(&record)?, reason.clone(), l.max_history);
            if let Some(t) = &patch.text {
                doc.text.clone_from(t);
                doc.content_hash = hex(&Sha256::digest(t.as_bytes()));
                doc.embedding_model = self.embedder.model_id().to_owned();
                doc.client_vector = false;
            }
            if let Some(m) = &patch.metadata {
                doc.metadata.clone_from(m);
            }
            if let Some(v) = patch.visibility {
                if v == Visibility::Private && payload.agent_id.is_none() {
                    return Err(ApiError::invalid(
                        "visibility",
                        "this memory has no author agent, so it cannot be private",
                    ));
                }
                doc.visibility = v;
            }
            if let Some(t) = &patch.tags {
                payload.tags = distinct_tags(t);
            }
            if let Some(k) = patch.kind {
                payload.kind = Some(k.as_str().to_owned());
            }
            if patch.clear_expiry {
                payload.expires_at = None;
            } else if let Some(e) = patch.expires_at {
                payload.expires_at = Some(millis(e));
            }
            payload.updated_at = millis(now).max(payload.created_at);
            payload.attributes = attributes(&payload, &doc, scope_keys(&payload, &doc));
            let indexed = self.indexed_of(id, &payload, &doc).await?;
            let v = if doc.client_vector || indexed.text == embedded_from {
                record.vector.clone()
            } else {
                let own = match &embedded {
                    Some((text, v)) if *text == indexed.embedded => v.clone(),
                    _ => {
                        let v = self
                            .embed(vec![indexed.embedded.clone()], Purpose::Document)
                            .await?
                            .remove(0);
                        embedded = Some((indexed.embedded.clone(), v.clone()));
                        v
                    }
                };
                indexed.vector(own)
            };
            payload.text = indexed.text;
            let document = serde_json::to_vec(&doc)
                .map_err(|e| ApiError::Internal(format!("encoding a memory: {e}")))?;
            let write = self.collection.upsert_document(
                id,
                &v,
                payload.clone(),
                &document,
                Expect::Version(record.version),
            );
            match self.timed("put", write).await {
                Ok(version) => {
                    return Self::memory_of(&Record {
                        id,
                        version,
                        vector: Vec::new(),
                        payload,
                        document,
                    });
                }
                // Someone else wrote in between: with If-Match that is the caller's
                // conflict; without, re-read and apply the patch to the new state.
                Err(IndexError::VersionConflict { found, .. }) if expected.is_some() => {
                    return Err(ApiError::PreconditionFailed {
                        message: format!("memory {id} changed while updating; reload it and retry"),
                        current_version: found,
                    });
                }
                Err(IndexError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Conflict(format!(
            "memory {id} is being updated concurrently; retry"
        )))
    }

    /// Deletes a memory; `if_match` must name the stored version when given.
    pub async fn delete(
        &self,
        who: &Principal,
        id: Uuid,
        if_match: Option<u64>,
        agent: Option<&str>,
    ) -> ApiResult<()> {
        let record = self.load_visible(who, id, agent, Role::Write).await?;
        let expect = Expect::Version(if_match.unwrap_or(record.version));
        match self
            .timed("delete", self.collection.delete(id, expect))
            .await
        {
            Ok(_) => Ok(()),
            Err(IndexError::VersionConflict { found: None, .. }) => {
                Err(ApiError::NotFound(format!("memory {id} not found")))
            }
            Err(e) => Err(e.into()),
        }
    }
}
