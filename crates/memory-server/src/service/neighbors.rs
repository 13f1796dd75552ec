//! Conversation context for search hits: a hit's neighbouring turns
//! (`context_window`) and a cap on hits per session (`max_per_session`).
//!
//! A conversation is the memories of one session and user in a namespace,
//! in turn order: `metadata.turn` where given (a number, or a string holding
//! one), then `created_at`, then id (ids are time-ordered v7). Neighbours are
//! read with the same visibility and supersession rules as the search that
//! found the hit, so a window shows nothing the caller could not search for.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;
use vector_index::{Field, Filter, Payload};

use super::MemoryService;
use super::record::attr;
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

/// Where a memory sits in its conversation.
type TurnKey = (Option<f64>, i64, Uuid);

/// The explicit `metadata.turn` of a payload (its metadata attribute).
fn explicit_turn(p: &Payload) -> Option<f64> {
    let prefix = format!("{}turn=", attr::META);
    p.attributes.iter().find_map(|a| {
        let value = a.strip_prefix(&prefix)?;
        value.trim_matches('"').parse::<f64>().ok()
    })
}

/// Orders turns: explicit turn numbers first by number, then time, then id.
fn by_turn(a: &TurnKey, b: &TurnKey) -> std::cmp::Ordering {
    let turn = match (a.0, b.0) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    };
    turn.then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
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
        let index = self.collection.index();
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
                let mut keyed: Vec<TurnKey> = self
                    .collection
                    .ids_matching(&filter)
                    .into_iter()
                    .filter_map(|id| {
                        let p = index.payload(id)?;
                        (p.user_id == key.1).then(|| (explicit_turn(&p), p.created_at, id))
                    })
                    .collect();
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
            .timed("get_many", self.collection.get_many(&wanted))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_turns_order_before_time_and_ids_break_ties() {
        let id = |n: u128| Uuid::from_u128(n);
        let mut keys: Vec<TurnKey> = vec![
            (None, 5, id(1)),
            (Some(2.0), 9, id(2)),
            (Some(1.0), 10, id(3)),
            (None, 5, id(0)),
        ];
        keys.sort_by(by_turn);
        let order: Vec<Uuid> = keys.iter().map(|k| k.2).collect();
        assert_eq!(order, vec![id(3), id(2), id(0), id(1)]);
    }

    #[test]
    fn a_turn_is_read_from_a_number_or_a_numeric_string() {
        let mut p = Payload {
            attributes: vec![format!("{}turn=7", attr::META)],
            ..Payload::default()
        };
        assert_eq!(explicit_turn(&p), Some(7.0));
        p.attributes = vec![format!("{}turn=\"12\"", attr::META)];
        assert_eq!(explicit_turn(&p), Some(12.0));
        p.attributes = vec![format!("{}turn=\"first\"", attr::META)];
        assert_eq!(explicit_turn(&p), None);
    }
}
