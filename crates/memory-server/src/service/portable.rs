//! Export (pages of a namespace, oldest first) and import (ids and times
//! kept; an id may replace only what the caller could update).

use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::store::NewPoint;

use super::record::{attributes, scope_keys};
use super::{MemoryService, located, millis};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::model::{Imported, NewMemory, PortableMemory};
use crate::validate;

impl MemoryService {
    /// Ids of the memories of `ns` the caller may export, oldest first.
    pub async fn export_ids(
        &self,
        who: &Principal,
        ns: &str,
        agent: Option<&str>,
    ) -> ApiResult<Vec<Uuid>> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Read)?;
        self.models.check(ns).await?;
        let agent = who.acting_agent(agent);
        let mut ids = self
            .collection
            .ids_matching(&Self::visible_filter(ns, agent.as_deref()));
        ids.sort_unstable();
        Ok(ids)
    }

    /// The exportable form of `ids` (skipping any deleted since they were
    /// listed), and how many were left out as unreadable.
    pub async fn export_page(
        &self,
        who: &Principal,
        ids: &[Uuid],
        agent: Option<&str>,
        include_vectors: bool,
    ) -> ApiResult<(Vec<PortableMemory>, u64)> {
        let agent = who.acting_agent(agent);
        let records = self
            .timed("get_many", self.collection.get_many(ids))
            .await?;
        let mut out = Vec::with_capacity(records.len());
        let mut unreadable = 0;
        for r in records.into_iter().flatten() {
            if !Self::visible(&r, agent.as_deref())
                || who.require(&r.payload.namespace, Role::Read).is_err()
            {
                continue;
            }
            let Some(m) = self.readable(&r) else {
                unreadable += 1;
                continue;
            };
            let mut p = PortableMemory::from(m);
            if include_vectors {
                p.vector = Some(r.vector);
            }
            out.push(p);
        }
        Ok((out, unreadable))
    }

    /// Writes imported memories (ids and times kept, same id replaced). Every
    /// line is checked before anything is written; errors name the line (1-based).
    pub async fn import(
        &self,
        who: &Principal,
        lines: Vec<(usize, PortableMemory)>,
    ) -> ApiResult<Imported> {
        let now = OffsetDateTime::now_utc();
        let at_line = |line: usize, e: ApiError| located(e, format!("line {line}"), "line", line);
        let mut checked = Vec::with_capacity(lines.len());
        // Lines that name an id, which may already be taken: (line, id).
        let mut given = Vec::new();
        // Superseded memories stay superseded: id → successor.
        let mut superseded = std::collections::HashMap::new();
        for (line, p) in lines {
            let created = p.created_at.unwrap_or(now);
            let updated = p.updated_at.unwrap_or(created);
            if updated < created {
                return Err(at_line(
                    line,
                    ApiError::invalid("updated_at", "updated_at is before created_at"),
                ));
            }
            if let Some(id) = p.id {
                given.push((line, id, checked.len()));
            }
            let id = p.id.unwrap_or_else(Uuid::now_v7);
            let input = NewMemory {
                namespace: p.namespace,
                text: p.text,
                agent_id: p.agent_id,
                user_id: p.user_id,
                session_id: p.session_id,
                kind: p.kind,
                tags: p.tags,
                metadata: p.metadata,
                visibility: p.visibility,
                expires_at: p.expires_at,
                vector: p.vector,
                idempotency_key: None,
                // An import restores what was stored: never a near-duplicate refusal.
                allow_near_duplicate: true,
                allow_duplicate: false,
                created_at: None,
                valid_from: p.valid_from,
                valid_until: p.valid_until,
            };
            if let Some(successor) = p.superseded_by {
                superseded.insert(id, successor);
            }
            self.check_new(who, &input, now)
                .map_err(|e| at_line(line, e))?;
            checked.push((id, (millis(created), millis(updated)), input));
        }
        // Ids are global: a line may replace only a memory the caller could
        // itself update, in the same namespace. Another tenant's memory,
        // another agent's private one or a session record is refused, and
        // nothing is written.
        let ids: Vec<Uuid> = given.iter().map(|(_, id, _)| *id).collect();
        let existing = self
            .timed("get_many", self.collection.get_many(&ids))
            .await?;
        for ((line, id, at), record) in given.into_iter().zip(existing) {
            let (Some(record), Some((_, _, input))) = (record, checked.get(at)) else {
                continue;
            };
            let agent = who.acting_agent(input.agent_id.as_deref());
            let replaceable = record.payload.namespace == input.namespace
                && Self::visible(&record, agent.as_deref());
            if !replaceable {
                return Err(ApiError::Conflict(format!(
                    "line {line}: id {id} is taken by a record this key cannot replace; \
                     leave `id` out to import the line as a new memory"
                )));
            }
        }
        self.bind_models(checked.iter().map(|(_, _, m)| m.namespace.as_str()))
            .await?;
        let mut imported = 0u64;
        for chunk in checked.chunks(self.limits.max_batch.max(1)) {
            let prepared = self.embed_and_prepare(who, chunk.to_vec()).await?;
            let mut writes = Vec::with_capacity(prepared.len());
            for mut p in prepared {
                if let Some(successor) = superseded.get(&p.id) {
                    p.doc.superseded_by = Some(*successor);
                    let keys = scope_keys(&p.payload, &p.doc);
                    p.payload.attributes = attributes(&p.payload, &p.doc, keys);
                }
                let document = serde_json::to_vec(&p.doc)
                    .map_err(|e| ApiError::Internal(format!("encoding a memory: {e}")))?;
                writes.push(NewPoint::new(p.id, p.vector, p.payload).with_document(document));
            }
            imported += writes.len() as u64;
            self.timed("put_many", self.collection.upsert_many(writes))
                .await?;
        }
        Ok(Imported { imported })
    }
}
