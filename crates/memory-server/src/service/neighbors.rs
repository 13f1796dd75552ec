//! Conversation context for search hits: a hit's neighbouring turns
//! (`context_window`) and a cap on hits per session (`max_per_session`).
//!
//! A conversation and its turn order are `conversation.rs`'s. Neighbours are
//! read with the same visibility and supersession rules as the search that
//! found the hit, so a window shows nothing the caller could not search for.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;
use vector_index::{Field, Filter};

use super::MemoryService;
use super::conversation::by_turn;
use crate::error::{ApiError, ApiResult};
use crate::model::{ContextWindow, Neighbor, SearchHit};

/// Most turns a window may ask for on each side.
pub(super) const MAX_WINDOW: u32 = 10;

/// Refuses a window wider than [`MAX_WINDOW`] on either side.
pub(super) fn check_window(w: &ContextWindow) -> ApiResult<()> {
    for (name, n) in [("before", w.before), ("after", w.after)] {
        if n > MAX_WINDOW {
            return Err(ApiError::invalid(
                &format!("context_window.{name}"),
                format!("context_window.{name} is {n}; at most {MAX_WINDOW} turns each side"),
            ));
        }
    }
    Ok(())
}

impl MemoryService {
    /// Keeps at most `cap` of `ids` per session, in order; memories without
    /// a session are all kept.
    pub(super) fn cap_per_session(&self, ids: Vec<Uuid>, cap: usize) -> Vec<Uuid> {
        let index = self.collection.index();
        let mut taken: HashMap<String, usize> = HashMap::new();
        ids.into_iter()
            .filter(|id| {
                let Some(session) = index.payload(*id).and_then(|p| p.session_id) else {
                    return true;
                };
                let n = taken.entry(session).or_default();
                *n += 1;
                *n <= cap
            })
            .collect()
    }

    /// `hits` with each one's neighbouring turns after it. `readable` is the
    /// filter the search ran under before the request's own conditions
    /// (namespace, visibility, supersession).
    pub(super) async fn with_neighbors(
        &self,
        hits: Vec<SearchHit>,
        window: ContextWindow,
        readable: &Filter,
        agent: Option<&str>,
    ) -> ApiResult<Vec<SearchHit>> {
        if window.before == 0 && window.after == 0 {
            return Ok(hits);
        }
        let mut shown: HashSet<Uuid> = hits.iter().map(|h| h.memory.id).collect();
        // Conversations already ordered, by (session, user).
        let mut conversations: HashMap<(String, Option<String>), Vec<Uuid>> = HashMap::new();
        // Per hit, its neighbours' ids and offsets.
        let mut planned: Vec<Vec<(Uuid, i32)>> = Vec::with_capacity(hits.len());
        for hit in &hits {
            let m = &hit.memory;
            let Some(session) = m.session_id.clone() else {
                planned.push(Vec::new());
                continue;
            };
            let key = (session, m.user_id.clone());
            let turns = conversations.entry(key.clone()).or_insert_with(|| {
                let filter = readable.clone().eq(Field::Session, key.0.as_str());
                let mut keyed = self.turn_keys(&filter, key.1.as_deref());
                keyed.sort_by(by_turn);
                keyed.into_iter().map(|k| k.2).collect()
            });
            let Some(at) = turns.iter().position(|id| *id == m.id) else {
                planned.push(Vec::new());
                continue;
            };
            let from = at.saturating_sub(window.before as usize);
            let to = (at + window.after as usize + 1).min(turns.len());
            let mut mine = Vec::new();
            for (i, id) in turns.iter().enumerate().take(to).skip(from) {
                if i != at && shown.insert(*id) {
                    mine.push((*id, i as i32 - at as i32));
                }
            }
            planned.push(mine);
        }
        let wanted: Vec<Uuid> = planned.iter().flatten().map(|(id, _)| *id).collect();
        let records = self
            .timed("get_entries", self.collection.get_entries(&wanted))
            .await?;
        let mut found: HashMap<Uuid, _> = HashMap::with_capacity(records.len());
        for record in records.into_iter().flatten() {
            if Self::visible(&record, agent)
                && let Some(memory) = self.readable(&record)
            {
                found.insert(record.id, memory);
            }
        }
        let mut out = Vec::with_capacity(hits.len() + wanted.len());
        for (hit, mine) in hits.into_iter().zip(planned) {
            let (of, score) = (hit.memory.id, hit.score);
            out.push(hit);
            for (id, offset) in mine {
                if let Some(memory) = found.remove(&id) {
                    out.push(SearchHit {
                        memory,
                        score,
                        similarity: None,
                        keyword_score: None,
                        fused_score: None,
                        vector_rank: None,
                        keyword_rank: None,
                        recency: None,
                        neighbor: Some(Neighbor { of, offset }),
                    });
                }
            }
        }
        Ok(out)
    }
}
