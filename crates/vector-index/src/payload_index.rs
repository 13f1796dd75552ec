//! Payloads by internal key, with an inverted index for filtering.
//!
//! Keyword fields map each value to a [`RoaringBitmap`] of keys; timestamps are
//! kept in ordered sets so a range becomes a bitmap without touching payloads.

use std::collections::{BTreeSet, HashMap};

use roaring::RoaringBitmap;

use crate::Key;
use crate::filter::{Condition, Filter};
use crate::payload::{Field, Millis, Payload, TimeField};

/// Below this many candidates a time condition is checked on each payload
/// instead of materialising a bitmap of the whole range.
const PER_POINT_CHECK_MAX: u64 = 4096;

/// Payload storage plus the indexes that answer filters.
#[derive(Debug, Default)]
pub struct PayloadIndex {
    payloads: HashMap<Key, Payload>,
    live: RoaringBitmap,
    terms: HashMap<(Field, Box<str>), RoaringBitmap>,
    created: BTreeSet<(Millis, Key)>,
    updated: BTreeSet<(Millis, Key)>,
    expires: BTreeSet<(Millis, Key)>,
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
    pub fn get(&self, key: Key) -> Option<&Payload> {
        self.payloads.get(&key)
    }

    /// Indexes `payload` under `key` (which must be new).
    pub fn insert(&mut self, key: Key, payload: Payload) {
        self.live.insert(key);
        for (field, value) in payload.terms() {
            self.terms
                .entry((field, value.into()))
                .or_default()
                .insert(key);
        }
        self.created.insert((payload.created_at, key));
        self.updated.insert((payload.updated_at, key));
        if let Some(e) = payload.expires_at {
            self.expires.insert((e, key));
        }
        self.payloads.insert(key, payload);
    }

    /// Removes `key` and returns its payload.
    pub fn remove(&mut self, key: Key) -> Option<Payload> {
        let payload = self.payloads.remove(&key)?;
        self.live.remove(key);
        for (field, value) in payload.terms() {
            let term = (field, Box::<str>::from(value));
            if let Some(bitmap) = self.terms.get_mut(&term) {
                bitmap.remove(key);
                if bitmap.is_empty() {
                    self.terms.remove(&term);
                }
            }
        }
        self.created.remove(&(payload.created_at, key));
        self.updated.remove(&(payload.updated_at, key));
        if let Some(e) = payload.expires_at {
            self.expires.remove(&(e, key));
        }
        Some(payload)
    }

    /// The keys whose payload matches `filter`.
    pub fn matching(&self, filter: &Filter) -> RoaringBitmap {
        // Keyword conditions first, smallest bitmap first, so intersections stay small.
        let mut keyword: Vec<RoaringBitmap> = Vec::new();
        let mut other: Vec<&Condition> = Vec::new();
        for c in &filter.conditions {
            match c {
                Condition::Equals(f, v) => keyword.push(self.term(*f, v)),
                Condition::AnyOf(f, vs) => keyword.push(vs.iter().map(|v| self.term(*f, v)).fold(
                    RoaringBitmap::new(),
                    |mut acc, b| {
                        acc |= b;
                        acc
                    },
                )),
                _ => other.push(c),
            }
        }
        keyword.sort_by_key(RoaringBitmap::len);
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
        for c in other {
            if set.is_empty() {
                break;
            }
            if set.len() <= PER_POINT_CHECK_MAX {
                set = set
                    .iter()
                    .filter(|k| self.payloads.get(k).is_some_and(|p| c.matches(p)))
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
                Condition::Equals(..) | Condition::AnyOf(..) => {}
            }
        }
        set
    }

    fn term(&self, field: Field, value: &str) -> RoaringBitmap {
        // A tuple of borrowed parts cannot look up `(Field, Box<str>)`; the
        // allocation is per condition, not per point.
        self.terms
            .get(&(field, Box::from(value)))
            .cloned()
            .unwrap_or_default()
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
            idx.insert(k, p.clone());
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
        // 10_000 points exercises the range-bitmap path, 30 the per-point path.
        for n in [30u32, 10_000] {
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
            ];
            for f in &filters {
                assert_eq!(idx.matching(f), reference(&all, f), "n={n} filter={f:?}");
            }
        }
    }

    #[test]
    fn remove_unindexes_every_field() {
        let (mut idx, all) = index_of(9);
        assert_eq!(idx.remove(3), Some(all[3].clone()));
        assert_eq!(idx.remove(3), None);
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
        assert!(idx.terms.is_empty() && idx.created.is_empty() && idx.expires.is_empty());
    }
}
