//! Conversations: the memories of one session and user in a namespace, in
//! turn order (`metadata.turn` where given, a number or a string holding
//! one, then `created_at`, then id, since ids are time-ordered v7), and the
//! turn before a memory, which a template's `{previous_turn}` brings into
//! the memory's keyword-indexed text and, as a share, into its vector.
//!
//! Why both: a turn that answers ("Yes, a tabby!") says little without the
//! turn it answers, so searches for what was asked miss it. Its text keeps
//! the turn before for the keyword side; its vector is its own embedding
//! plus [`PREVIOUS_SHARE`] of the turn before's vector, which carries that
//! turn's own predecessor at a quarter, and so on: the conversation so far,
//! fading. The turn's own words weigh most, so it still ranks above its
//! successor for them (docs/benchmarks.md, "Conversation context").
//!
//! Who may read what: the turn before is the latest earlier turn that every
//! reader of the memory may read too. A shared memory takes only a shared
//! turn, a private one a shared turn or one of its author's own; so no
//! memory's text or vector carries what one of its readers could not read.
//!
//! When: the turn before is read when the memory is indexed (create, a
//! text-changing update, re-index). A later edit or delete of the turn
//! before reaches this memory at its next re-index, not at once.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use uuid::Uuid;
use vector_index::vector::normalized;
use vector_index::{Field, Filter, Payload};

use super::MemoryService;
use super::record::{Doc, attr};
use crate::error::ApiResult;
use crate::model::Visibility;

/// The turn before's share of a turn's vector (the turn's own is 1).
///
/// Measured on eval/conversations-set.json (`local`, `chat`): 0.3, 0.5 and
/// 0.7 give vector recall@5 0.753 / 0.764 / 0.759, so the middle is kept.
pub(super) const PREVIOUS_SHARE: f32 = 0.5;

/// Where a memory sits in its conversation: explicit turn, `created_at` (ms), id.
pub(super) type TurnKey = (Option<f64>, i64, Uuid);

/// The explicit `metadata.turn` among a payload's attributes.
pub(super) fn explicit_turn<'a>(attributes: impl IntoIterator<Item = &'a str>) -> Option<f64> {
    attributes.into_iter().find_map(|a| {
        let value = a.strip_prefix(attr::META)?.strip_prefix("turn=")?;
        value.trim_matches('"').parse::<f64>().ok()
    })
}

/// The explicit `turn` of a new memory's metadata (a number, or a string holding one).
pub(super) fn turn_in(metadata: &Map<String, Value>) -> Option<f64> {
    match metadata.get("turn")? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Orders turns: explicit turn numbers first by number, then time, then id.
pub(super) fn by_turn(a: &TurnKey, b: &TurnKey) -> Ordering {
    let turn = match (a.0, b.0) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    turn.then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
}

/// A memory's place in its conversation, and who may read it.
pub(super) struct Place<'a> {
    /// Its namespace.
    pub(super) namespace: &'a str,
    /// Its user (`None` is a conversation of its own).
    pub(super) user_id: Option<&'a str>,
    /// Its session.
    pub(super) session_id: &'a str,
    /// The author of a private memory; `None` for a shared one.
    pub(super) private_to: Option<&'a str>,
    /// Where it sits.
    pub(super) key: TurnKey,
}

impl<'a> Place<'a> {
    /// The place of a stored memory, if it has a session.
    pub(super) fn of(id: Uuid, payload: &'a Payload, doc: &Doc) -> Option<Self> {
        Some(Self {
            namespace: &payload.namespace,
            user_id: payload.user_id.as_deref(),
            session_id: payload.session_id.as_deref()?,
            private_to: match doc.visibility {
                Visibility::Private => payload.agent_id.as_deref(),
                Visibility::Shared => None,
            },
            key: (
                explicit_turn(payload.attributes.iter().map(String::as_str)),
                payload.created_at,
                id,
            ),
        })
    }

    /// Whether `other`, a memory written beside this one, is in this
    /// conversation before it and readable by all of this one's readers.
    pub(super) fn follows(&self, other: &Place<'_>) -> bool {
        self.namespace == other.namespace
            && self.user_id == other.user_id
            && self.session_id == other.session_id
            && (other.private_to.is_none() || other.private_to == self.private_to)
            && by_turn(&other.key, &self.key) == Ordering::Less
    }
}

/// The turn before a memory.
pub(super) struct PreviousTurn {
    /// Where it sits.
    pub(super) key: TurnKey,
    /// Its text.
    pub(super) text: String,
    /// Its stored vector.
    pub(super) vector: Vec<f32>,
}

impl MemoryService {
    /// The turns of `user`'s conversation among the memories `session`
    /// (a filter on one session) matches, unordered.
    pub(super) fn turn_keys(&self, session: &Filter, user: Option<&str>) -> Vec<TurnKey> {
        // Read in place: a session can hold thousands of turns, and every
        // write with `{previous_turn}` looks them up.
        self.collection.index().map_matching(session, |id, p| {
            (p.user_id() == user).then(|| (explicit_turn(p.attributes()), p.created_at(), id))
        })
    }

    /// The stored turn before `at` that all of `at`'s readers may read.
    pub(super) async fn previous_turn(&self, at: &Place<'_>) -> ApiResult<Option<PreviousTurn>> {
        let filter =
            Self::visible_filter(at.namespace, at.private_to).eq(Field::Session, at.session_id);
        let before = self
            .turn_keys(&filter, at.user_id)
            .into_iter()
            .filter(|k| by_turn(k, &at.key) == Ordering::Less)
            .max_by(by_turn);
        let Some(key) = before else {
            return Ok(None);
        };
        let Some(record) = self.timed("get", self.collection.get(key.2)).await? else {
            return Ok(None);
        };
        Ok(self
            .skip_unreadable(record.id, Doc::of(&record))
            .map(|doc| PreviousTurn {
                key,
                text: doc.text,
                vector: record.vector,
            }))
    }
}

/// A turn's vector: its own embedding plus [`PREVIOUS_SHARE`] of the turn
/// before's vector, both at unit length, the sum at unit length. A vector of
/// another length (never written by one model) leaves `own` as it is.
pub(super) fn with_previous(own: Vec<f32>, previous: &[f32]) -> Vec<f32> {
    let dim = own.len();
    if previous.len() != dim {
        return own;
    }
    // A zero vector has no direction to add: it counts as zero.
    let unit = |v: &[f32]| normalized(v, dim).unwrap_or_else(|_| vec![0.0; dim]);
    let sum: Vec<f32> = unit(&own)
        .iter()
        .zip(unit(previous))
        .map(|(x, y)| x + y * PREVIOUS_SHARE)
        .collect();
    normalized(&sum, dim).unwrap_or(own)
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
        assert_eq!(
            explicit_turn(p.attributes.iter().map(String::as_str)),
            Some(7.0)
        );
        p.attributes = vec![format!("{}turn=\"12\"", attr::META)];
        assert_eq!(
            explicit_turn(p.attributes.iter().map(String::as_str)),
            Some(12.0)
        );
        p.attributes = vec![format!("{}turn=\"first\"", attr::META)];
        assert_eq!(explicit_turn(p.attributes.iter().map(String::as_str)), None);
        let meta = |v: Value| Map::from_iter([("turn".to_owned(), v)]);
        assert_eq!(turn_in(&meta(Value::from(3))), Some(3.0));
        assert_eq!(turn_in(&meta(Value::from("4"))), Some(4.0));
        assert_eq!(turn_in(&meta(Value::from("x"))), None);
        assert_eq!(turn_in(&Map::new()), None);
    }

    #[test]
    fn a_turn_keeps_the_most_of_its_own_direction() {
        let own = vec![3.0, 0.0];
        let mixed = with_previous(own.clone(), &[0.0, 2.0]);
        let norm = mixed.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6, "{mixed:?}");
        // own 1, previous 0.5, at unit length: (1, 0.5) / |(1, 0.5)|.
        assert!((mixed[0] - 0.894_427).abs() < 1e-5, "{mixed:?}");
        assert!((mixed[1] - 0.447_213).abs() < 1e-5, "{mixed:?}");
        assert_eq!(with_previous(own.clone(), &[1.0]), own);
        assert_eq!(with_previous(vec![0.0, 0.0], &[0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn a_turn_follows_only_what_all_its_readers_may_read() {
        let id = |n: u128| Uuid::from_u128(n);
        let place = |private_to, key| Place {
            namespace: "ns",
            user_id: Some("u"),
            session_id: "s",
            private_to,
            key,
        };
        let shared = place(None, (None, 10, id(5)));
        let earlier_shared = place(None, (None, 5, id(1)));
        let earlier_private = place(Some("a"), (None, 5, id(2)));
        let later = place(None, (None, 20, id(9)));
        assert!(shared.follows(&earlier_shared));
        assert!(!shared.follows(&earlier_private));
        assert!(!shared.follows(&later));
        let private_a = place(Some("a"), (None, 10, id(6)));
        assert!(private_a.follows(&earlier_private));
        assert!(private_a.follows(&earlier_shared));
        assert!(!place(Some("b"), (None, 10, id(7))).follows(&earlier_private));
        let other_session = Place {
            session_id: "t",
            ..place(None, (None, 5, id(3)))
        };
        assert!(!shared.follows(&other_session));
        let other_user = Place {
            user_id: None,
            ..place(None, (None, 5, id(4)))
        };
        assert!(!shared.follows(&other_user));
    }
}
