//! Many memories at once: the namespaces a caller sees, pages of a
//! namespace, and bulk delete by filter.

use uuid::Uuid;
use vector_index::Field;
use vector_index::store::Expect;

use super::MemoryService;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::model::{
    BulkDelete, BulkDeleted, MemoryFilter, MemoryPage, NamespaceList, NamespaceSummary,
};
use crate::validate;

impl MemoryService {
    /// The namespaces `who` may read, each with the memories `who` (as
    /// `agent`) can see there; a namespace where it sees none is left out, so
    /// another agent's private memories do not reveal that a namespace exists.
    pub fn namespaces(&self, who: &Principal, agent: Option<&str>) -> NamespaceList {
        let agent = who.acting_agent(agent);
        let namespaces = self
            .collection
            .index()
            .values(Field::Namespace)
            .into_iter()
            .filter(|ns| who.covers(ns))
            .filter_map(|namespace| {
                let visible = Self::visible_filter(&namespace, agent.as_deref());
                let memories = self.collection.count_matching(&visible);
                (memories > 0).then_some(NamespaceSummary {
                    namespace,
                    memories,
                })
            })
            .collect();
        NamespaceList { namespaces }
    }

    /// Memories of `ns` matching `filter`, newest first, `limit` at a time.
    pub async fn list(
        &self,
        who: &Principal,
        ns: &str,
        filter: &MemoryFilter,
        agent: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> ApiResult<MemoryPage> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Read)?;
        self.models.check(ns).await?;
        let limit = validate::top_k(&self.limits, "limit", limit)?;
        let after = cursor.map(decode_cursor).transpose()?;
        let agent = who.acting_agent(agent);
        let f = self.apply_filter(Self::visible_filter(ns, agent.as_deref()), filter)?;
        let mut ids = self.collection.ids_matching(&f);
        // UUIDv7 ids sort by creation time: newest first is descending id order.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(after) = after {
            ids.retain(|id| *id < after);
        }
        let more = ids.len() > limit;
        ids.truncate(limit);
        let records = self
            .timed("get_entries", self.collection.get_entries(&ids))
            .await?;
        let mut memories = Vec::with_capacity(ids.len());
        for r in records.iter().flatten() {
            // A memory changed since the index answered is re-checked here.
            if Self::visible(r, agent.as_deref()) && r.payload.namespace == ns {
                memories.extend(self.readable(r));
            }
        }
        let next_cursor = if more {
            ids.last().map(|id| encode_cursor(*id))
        } else {
            None
        };
        Ok(MemoryPage {
            memories,
            next_cursor,
        })
    }

    /// Deletes (or, on a dry run, counts) the visible memories matching a filter.
    pub async fn bulk_delete(&self, who: &Principal, req: BulkDelete) -> ApiResult<BulkDeleted> {
        validate::namespace(&self.limits, &req.namespace)?;
        who.require(&req.namespace, Role::Admin)?;
        self.models.check(&req.namespace).await?;
        let agent = who.acting_agent(req.as_agent.as_deref());
        let f = self.apply_filter(
            Self::visible_filter(&req.namespace, agent.as_deref()),
            &req.filter,
        )?;
        let ids = self.collection.ids_matching(&f);
        let matched = ids.len() as u64;
        let mut deleted = 0;
        if !req.dry_run {
            for id in ids {
                if self
                    .timed("delete", self.collection.delete(id, Expect::Any))
                    .await?
                    .is_some()
                {
                    deleted += 1;
                }
            }
        }
        Ok(BulkDeleted {
            matched,
            deleted,
            dry_run: req.dry_run,
        })
    }
}

const CURSOR_PREFIX: &str = "m1.";

fn encode_cursor(id: Uuid) -> String {
    use base64::Engine;
    format!(
        "{CURSOR_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
    )
}

fn decode_cursor(s: &str) -> ApiResult<Uuid> {
    use base64::Engine;
    let bad = || {
        ApiError::invalid(
            "cursor",
            "cursor is not one this server issued; start without it",
        )
    };
    let body = s.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| bad())?;
    Uuid::from_slice(&bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_400() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        for bad in [
            "",
            "m1.",
            "m1.!!!",
            "x",
            "m1.AAAA",
            "m2.AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(ApiError::BadRequest { .. })),
                "{bad}"
            );
        }
    }
}
