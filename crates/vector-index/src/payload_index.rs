//! Payloads by internal key, with an inverted index for filtering.
//!
//! Keyword fields map each value to a [`RoaringBitmap`] of keys; timestamps are
//! kept in ordered sets so a range becomes a bitmap without touching payloads.
//! Strings are interned: a payload stores shared `Arc<str>`s from the term
//! dictionary, so a million points in one namespace hold one copy of its name.

use std::collections::BTreeSet;
use std::sync::Arc;

use hashbrown::HashMap;
use roaring::RoaringBitmap;

use crate::Key;
use crate::filter::{Condition, Filter};
use crate::payload::{Field, Millis, Payload, TimeField};

/// Below this many candidates a time condition is checked on each payload
/// instead of materialising a bitmap of the whole range.
const PER_POINT_CHECK_MAX: u64 = 4096;

/// Number of [`Field`] variants.
const FIELDS: usize = 7;

/// A payload as stored: interned strings, no per-point string allocations.
#[derive(Debug, Clone)]
struct Stored {
    namespace: Arc<str>,
    agent_id: Option<Arc<str>>,
    user_id: Option<Arc<str>>,
    session_id: Option<Arc<str>>,
    kind: Option<Arc<str>>,
    tags: Box<[Arc<str>]>,
    attributes: Box<[Arc<str>]>,
    created_at: Millis,
    updated_at: Millis,
    expires_at: Option<Millis>,
    text: Box<str>,
}

/// A stored payload, borrowed: its fields read in place, nothing copied.
#[derive(Debug, Clone, Copy)]
pub struct PayloadView<'a>(&'a Stored);

impl<'a> PayloadView<'a> {
    /// End user the point is about.
    pub fn user_id(&self) -> Option<&'a str> {
        self.0.user_id.as_deref()
    }

    /// Conversation session.
    pub fn session_id(&self) -> Option<&'a str> {
        self.0.session_id.as_deref()
    }

    /// Creation time.
    pub fn created_at(&self) -> Millis {
        self.0.created_at
    }

    /// The caller's keyword labels ([`Payload::attributes`]).
    pub fn attributes(&self) -> impl Iterator<Item = &'a str> {
        self.0.attributes.iter().map(|a| &**a)
    }
}

impl Stored {
    fn to_payload(&self) -> Payload {
        let owned = |s: &Option<Arc<str>>| s.as_deref().map(str::to_owned);
        Payload {
            namespace: self.namespace.to_string(),
            agent_id: owned(&self.agent_id),
            user_id: owned(&self.user_id),
            session_id: owned(&self.session_id),
            kind: owned(&self.kind),
            tags: self.tags.iter().map(|t| t.to_string()).collect(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            attributes: self.attributes.iter().map(|a| a.to_string()).collect(),
            text: self.text.to_string(),
        }
    }

    fn time(&self, field: TimeField) -> Option<Millis> {
        match field {
            TimeField::Created => Some(self.created_at),
            TimeField::Updated => Some(self.updated_at),
            TimeField::Expires => self.expires_at,
        }
    }

    /// Evaluates a time condition (keyword conditions are answered by bitmaps).
    fn satisfies(&self, c: &Condition) -> bool {
        c.time_holds(|f| self.time(f)).unwrap_or(true)
    }
}

/// Payload storage plus the indexes that answer filters.
#[derive(Debug, Default)]
pub struct PayloadIndex {
    payloads: HashMap<Key, Stored>,
    live: RoaringBitmap,
    /// Per field, value → keys having it.
    terms: [HashMap<Arc<str>, RoaringBitmap>; FIELDS],
    created: BTreeSet<(Millis, Key)>,
    updated: BTreeSet<(Millis, Key)>,
    expires: BTreeSet<(Millis, Key)>,
    /// Keys that have an expiry: "not expired" examines only these, so a
    /// filter over records that never expire pays no per-point check.
    expiring: RoaringBitmap,
}

impl PayloadIndex {
    /// Number of indexed points.
    pub fn len(&self) -> u64 {
        self.live.len()
    }

    /// Whether no point is indexed.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Every indexed key.
    pub fn live(&self) -> &RoaringBitmap {
        &self.live
    }

    /// The payload of `key`, if indexed.
    pub fn get(&self, key: Key) -> Option<Payload> {
        self.payloads.get(&key).map(Stored::to_payload)
    }

    /// The payload of `key` read in place, if indexed.
    pub fn view(&self, key: Key) -> Option<PayloadView<'_>> {
        self.payloads.get(&key).map(PayloadView)
    }

    /// The (interned) namespace of `key`, if indexed.
    pub fn namespace(&self, key: Key) -> Option<Arc<str>> {
        self.payloads.get(&key).map(|p| Arc::clone(&p.namespace))
    }

    /// Adds `key` to the bitmap of `(field, value)` and returns the interned value.
    fn index_term(&mut self, field: Field, value: &str, key: Key) -> Arc<str> {
        let map = &mut self.terms[field as usize];
        if let Some((interned, keys)) = map.get_key_value_mut(value) {
            keys.insert(key);
            return Arc::clone(interned);
        }
        let interned: Arc<str> = Arc::from(value);
        map.insert(Arc::clone(&interned), RoaringBitmap::from_iter([key]));
        interned
    }

    /// Indexes a list field's values (duplicates count once) and returns them interned.
    fn index_list(&mut self, field: Field, values: &[String], key: Key) -> Box<[Arc<str>]> {
        let mut out: Vec<Arc<str>> = Vec::with_capacity(values.len());
        for v in values {
            if !out.iter().any(|x| **x == **v) {
                out.push(self.index_term(field, v, key));
            }
        }
        out.into_boxed_slice()
    }

    fn unindex_term(&mut self, field: Field, value: &str, key: Key) {
        let map = &mut self.terms[field as usize];
        if let Some(keys) = map.get_mut(value) {
            keys.remove(key);
            if keys.is_empty() {
                map.remove(value);
            }
        }
    }

    /// Indexes `payload` under `key` (which must be new).
    pub fn insert(&mut self, key: Key, payload: &Payload) {
        self.live.insert(key);
        let mut opt =
            |field, v: &Option<String>| v.as_deref().map(|v| self.index_term(field, v, key));
        let agent_id = opt(Field::Agent, &payload.agent_id);
        let user_id = opt(Field::User, &payload.user_id);
        let session_id = opt(Field::Session, &payload.session_id);
        let kind = opt(Field::Kind, &payload.kind);
        let namespace = self.index_term(Field::Namespace, &payload.namespace, key);
        let tags = self.index_list(Field::Tag, &payload.tags, key);
        let attributes = self.index_list(Field::Attribute, &payload.attributes, key);
        self.created.insert((payload.created_at, key));
        self.updated.insert((payload.updated_at, key));
        if let Some(e) = payload.expires_at {
            self.expires.insert((e, key));
            self.expiring.insert(key);
        }
        let stored = Stored {
            namespace,
            agent_id,
            user_id,
            session_id,
            kind,
            tags,
            attributes,
            created_at: payload.created_at,
            updated_at: payload.updated_at,
            expires_at: payload.expires_at,
            text: payload.text.as_str().into(),
        };
        self.payloads.insert(key, stored);
    }

    /// Removes `key`; returns whether it was indexed.
    pub fn remove(&mut self, key: Key) -> bool {
        let Some(s) = self.payloads.remove(&key) else {
            return false;
        };
        self.live.remove(key);
        self.unindex_term(Field::Namespace, &s.namespace, key);
        for (field, v) in [
            (Field::Agent, &s.agent_id),
            (Field::User, &s.user_id),
            (Field::Session, &s.session_id),
            (Field::Kind, &s.kind),
        ] {
            if let Some(v) = v {
                self.unindex_term(field, v, key);
            }
        }
        for t in &s.tags {
            self.unindex_term(Field::Tag, t, key);
        }
        for a in &s.attributes {
            self.unindex_term(Field::Attribute, a, key);
        }
        self.created.remove(&(s.created_at, key));
        self.updated.remove(&(s.updated_at, key));
        if let Some(e) = s.expires_at {
            self.expires.remove(&(e, key));
            self.expiring.remove(key);
        }
        true
    }

    /// Every value `field` has on some point (unordered).
    pub fn values(&self, field: Field) -> Vec<Arc<str>> {
        self.terms[field as usize].keys().cloned().collect()
    }

    /// The keys whose payload matches `filter`.
    pub fn matching(&self, filter: &Filter) -> RoaringBitmap {
        // Keyword conditions first, smallest bitmap first, so intersections stay small.
        let mut keyword: Vec<RoaringBitmap> = Vec::new();
        let mut other: Vec<&Condition> = Vec::new();
        for c in &filter.conditions {
            match c {
                Condition::Equals(f, v) => {
                    keyword.push(self.term(*f, v).cloned().unwrap_or_default())
                }
                Condition::AnyOf(f, vs) => {
                    let mut union = RoaringBitmap::new();
                    for b in vs.iter().filter_map(|v| self.term(*f, v)) {
                        union |= b;
                    }
                    keyword.push(union);
                }
                _ => other.push(c),
            }
        }
        keyword.sort_by_key(RoaringBitmap::len);
        let (negated, other): (Vec<&Condition>, Vec<&Condition>) = other
            .into_iter()
            .partition(|c| matches!(c, Condition::Not(_)));
        let mut keyword = keyword.into_iter();
        let mut set = match keyword.next() {
            Some(first) => first,
            None => self.live.clone(),
        };
        for b in keyword {
            if set.is_empty() {
                break;
            }
            set &= b;
        }
        for c in negated {
            if let Condition::Not(inner) = c {
                if set.is_empty() {
                    break;
                }
                // The inner filter is meant to be narrow (a few superseded
                // memories), so its bitmap is cheap to take away.
                set -= self.matching(inner);
            }
        }
        for c in other {
            if set.is_empty() {
                break;
            }
            if matches!(c, Condition::NotExpiredAt(_)) {
                // Only keys with an expiry can fail it.
                let mut may_fail = set.clone();
                may_fail &= &self.expiring;
                if may_fail.len() <= PER_POINT_CHECK_MAX {
                    for k in &may_fail {
                        if !self.payloads.get(&k).is_some_and(|s| s.satisfies(c)) {
                            set.remove(k);
                        }
                    }
                    continue;
                }
            }
            if set.len() <= PER_POINT_CHECK_MAX {
                set = set
                    .iter()
                    .filter(|k| self.payloads.get(k).is_some_and(|s| s.satisfies(c)))
                    .collect();
                continue;
            }
            match c {
                Condition::Range { field, from, to } => {
                    set &= self.time_range(*field, *from, *to);
                }
                Condition::NotExpiredAt(now) => {
                    set -= self.time_range(TimeField::Expires, None, now.checked_add(1));
                }
                Condition::Equals(..) | Condition::AnyOf(..) | Condition::Not(_) => {}
            }
        }
        set
    }

    fn term(&self, field: Field, value: &str) -> Option<&RoaringBitmap> {
        self.terms[field as usize].get(value)
    }

    fn time_range(
        &self,
        field: TimeField,
        from: Option<Millis>,
        to: Option<Millis>,
    ) -> RoaringBitmap {
        let set = match field {
            TimeField::Created => &self.created,
            TimeField::Updated => &self.updated,
            TimeField::Expires => &self.expires,
        };
        let lo = (from.unwrap_or(Millis::MIN), Key::MIN);
        match to {
            Some(to) if to <= lo.0 => RoaringBitmap::new(),
            Some(to) => set.range(lo..(to, Key::MIN)).map(|(_, k)| *k).collect(),
            None => set.range(lo..).map(|(_, k)| *k).collect(),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn payload(
        ns: &str,
        agent: &str,
        tags: &[&str],
        created: Millis,
        expires: Option<Millis>,
    ) -> Payload {
        Payload {
            namespace: ns.into(),
            agent_id: Some(agent.into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            created_at: created,
            updated_at: created,
            expires_at: expires,
            ..Payload::default()
        }
    }

    fn index_of(n: u32) -> (PayloadIndex, Vec<Payload>) {
        let mut idx = PayloadIndex::default();
        let mut all = Vec::new();
        for k in 0..n {
            let p = payload(
                ["a", "b", "c"][k as usize % 3],
                ["x", "y"][k as usize % 2],
                &[
                    ["t1", "t2", "t3"][k as usize % 3],
                    ["u1", "u2"][k as usize % 2],
                ],
                i64::from(k) * 10,
                (k % 4 == 0).then(|| i64::from(k) * 5),
            );
            idx.insert(k, &p);
            all.push(p);
        }
        (idx, all)
    }

    fn reference(all: &[Payload], f: &Filter) -> RoaringBitmap {
        (0u32..)
            .zip(all)
            .filter(|(_, p)| f.matches(p))
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn bitmaps_match_per_point_semantics_on_small_and_large_sets() {
        // 30 points exercise the per-point path; 10_000 the range-bitmap path
        // for ranges and the per-point check of the 2_500 expiring keys for
        // "not expired"; 20_000 (5_000 expiring) the range bitmap for both.
        for n in [30u32, 10_000, 20_000] {
            let (idx, all) = index_of(n);
            let filters = [
                Filter::all(),
                Filter::all().eq(Field::Namespace, "a"),
                Filter::all()
                    .eq(Field::Namespace, "a")
                    .eq(Field::Agent, "y"),
                Filter::all().any_of(Field::Tag, ["t1", "u2"]),
                Filter::all().all_tags(["t1", "u2"]),
                Filter::all().any_of(Field::Tag, Vec::<String>::new()),
                Filter::all().eq(Field::Tag, "missing"),
                Filter::all().range(TimeField::Created, Some(100), Some(50_000)),
                Filter::all().range(TimeField::Created, None, Some(200)),
                Filter::all().range(TimeField::Created, Some(200), Some(100)),
                Filter::all().range(TimeField::Expires, Some(0), None),
                Filter::all().not_expired_at(1_000),
                Filter::all().eq(Field::User, "nobody").not_expired_at(0),
                Filter::all()
                    .eq(Field::Namespace, "b")
                    .not_expired_at(20_000)
                    .range(TimeField::Updated, Some(30), None),
                Filter::all().not(Filter::all().eq(Field::Namespace, "a")),
                Filter::all().eq(Field::Agent, "y").not(
                    Filter::all().any_of(Field::Tag, ["t1"]).range(
                        TimeField::Created,
                        None,
                        Some(5_000),
                    ),
                ),
                Filter::all().not(Filter::all()),
                Filter::all().not(Filter::all().not_expired_at(1_000)),
            ];
            for f in &filters {
                assert_eq!(idx.matching(f), reference(&all, f), "n={n} filter={f:?}");
            }
        }
    }

    #[test]
    fn remove_unindexes_every_field() {
        let (mut idx, all) = index_of(9);
        assert_eq!(idx.get(3), Some(all[3].clone()));
        assert!(idx.remove(3));
        assert!(!idx.remove(3));
        assert_eq!(idx.get(3), None);
        assert_eq!(idx.len(), 8);
        for f in [
            Filter::all().eq(Field::Namespace, "a"),
            Filter::all().eq(Field::Agent, "y"),
            Filter::all().eq(Field::Tag, "t1"),
            Filter::all().range(TimeField::Created, Some(30), Some(31)),
        ] {
            assert!(!idx.matching(&f).contains(3), "{f:?}");
        }
        let (mut idx, _) = index_of(3);
        for k in 0..3 {
            idx.remove(k);
        }
        assert!(idx.terms.iter().all(|m| m.is_empty()));
        assert!(idx.created.is_empty() && idx.expires.is_empty() && idx.expiring.is_empty());
    }
}
