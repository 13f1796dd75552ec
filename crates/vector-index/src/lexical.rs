//! A BM25 inverted index over points' text, one per namespace.
//!
//! Each namespace has its own term dictionary and statistics (document count,
//! average length, document frequencies), so one tenant's text never changes
//! another's scores. Within a namespace, only documents inserted as *counted*
//! make the statistics; the others are scored with them but never move them,
//! so a document some searchers cannot see (a private memory) cannot change
//! the scores they get, and scores cannot reveal its words. Postings are kept in key order (keys only grow, so almost
//! every insert appends; searches merge the lists by key), and
//! a removed document's postings stay until half of a term's list is dead,
//! when the list is compacted: removal is amortised O(terms of the document).
//! Searches skip dead postings: they score only keys that are both live and
//! allowed by the caller.

use std::sync::Arc;

use hashbrown::HashMap;
use roaring::RoaringBitmap;

use crate::Key;
use crate::backend::Scored;
use crate::topk::TopK;

/// BM25 term-frequency saturation, by default.
const K1: f32 = 1.2;
/// BM25 length normalisation, by default.
const B: f32 = 0.75;

/// BM25's two parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bm25 {
    /// Term-frequency saturation: how much a repeated word adds (0: nothing).
    pub k1: f32,
    /// Length normalisation: 1 scores a long text's matches down in full, 0 not at all.
    pub b: f32,
}

impl Default for Bm25 {
    fn default() -> Self {
        Self { k1: K1, b: B }
    }
}

impl Bm25 {
    /// The first parameter outside its range, as `(name, range, value)`,
    /// e.g. `("k1", "between 0 and 3", 4.0)`: `k1` is 0 to 3, `b` 0 to 1.
    pub fn out_of_range(&self) -> Option<(&'static str, &'static str, f32)> {
        if !(0.0..=3.0).contains(&self.k1) {
            return Some(("k1", "between 0 and 3", self.k1));
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Some(("b", "between 0 and 1", self.b));
        }
        None
    }
}

type TermId = u32;

/// One document of a term's posting list.
#[derive(Debug, Clone, Copy)]
struct Posting {
    key: Key,
    /// Occurrences of the term in the document.
    tf: u32,
    /// The document's length in terms (fixed: a key's text never changes).
    len: u32,
}

#[derive(Debug, Default)]
struct Postings {
    term: Option<Arc<str>>,
    entries: Vec<Posting>,
    /// Live documents containing the term.
    live: u32,
    /// Live counted documents containing the term (the document frequency).
    df: u32,
}

#[derive(Debug)]
struct Document {
    len: u32,
    terms: Box<[TermId]>,
    /// Whether it counts towards the statistics.
    counted: bool,
}

#[derive(Debug, Default)]
struct Namespace {
    dictionary: HashMap<Arc<str>, TermId>,
    postings: Vec<Postings>,
    free: Vec<TermId>,
    docs: HashMap<Key, Document>,
    /// The keys of `docs`, for intersecting with a search's allowed keys.
    live: RoaringBitmap,
    /// Counted documents, and their total length.
    counted: u64,
    total_len: u64,
}

impl Namespace {
    fn term_id(&mut self, term: &str) -> TermId {
        if let Some(id) = self.dictionary.get(term) {
            return *id;
        }
        let term: Arc<str> = Arc::from(term);
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.postings.push(Postings::default());
                // Fewer than 2^32 distinct terms fit in memory anyway.
                (self.postings.len() - 1) as TermId
            }
        };
        self.postings[id as usize].term = Some(Arc::clone(&term));
        self.dictionary.insert(term, id);
        id
    }

    fn insert(&mut self, key: Key, terms: &[String], counted: bool) {
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for t in terms {
            *counts.entry(t.as_str()).or_default() += 1;
        }
        let len = u32::try_from(terms.len()).unwrap_or(u32::MAX);
        let mut ids = Vec::with_capacity(counts.len());
        for (term, tf) in counts {
            let id = self.term_id(term);
            let p = &mut self.postings[id as usize];
            let posting = Posting { key, tf, len };
            // Keys are allocated in order but concurrent writers may take the
            // lock out of order: a late key goes to its place, a few from the end.
            if p.entries.last().is_some_and(|last| last.key > key) {
                let at = p.entries.partition_point(|e| e.key < key);
                p.entries.insert(at, posting);
            } else {
                p.entries.push(posting);
            }
            p.live += 1;
            p.df += u32::from(counted);
            ids.push(id);
        }
        self.docs.insert(
            key,
            Document {
                len,
                terms: ids.into_boxed_slice(),
                counted,
            },
        );
        self.live.insert(key);
        if counted {
            self.counted += 1;
            self.total_len += u64::from(len);
        }
    }

    fn remove(&mut self, key: Key) -> bool {
        let Some(doc) = self.docs.remove(&key) else {
            return false;
        };
        self.live.remove(key);
        if doc.counted {
            self.counted -= 1;
            self.total_len -= u64::from(doc.len);
        }
        for &id in doc.terms.iter() {
            let p = &mut self.postings[id as usize];
            p.live -= 1;
            p.df -= u32::from(doc.counted);
            if p.live == 0 {
                if let Some(term) = p.term.take() {
                    self.dictionary.remove(&term);
                }
                p.entries = Vec::new();
                self.free.push(id);
            } else if p.entries.len() >= 2 * p.live as usize {
                let docs = &self.docs;
                p.entries.retain(|e| docs.contains_key(&e.key));
            }
        }
        true
    }

    /// Approximate heap bytes.
    fn memory_bytes(&self) -> usize {
        let postings: usize = self
            .postings
            .iter()
            .map(|p| {
                std::mem::size_of::<Postings>()
                    + p.entries.capacity() * std::mem::size_of::<Posting>()
                    + p.term.as_ref().map_or(0, |t| t.len() + 16)
            })
            .sum();
        let docs: usize = self
            .docs
            .values()
            .map(|d| d.terms.len() * std::mem::size_of::<TermId>())
            .sum::<usize>()
            + self.docs.capacity()
                * (std::mem::size_of::<Key>() + std::mem::size_of::<Document>() + 1);
        let dictionary = self.dictionary.capacity()
            * (std::mem::size_of::<Arc<str>>() + std::mem::size_of::<TermId>() + 1);
        postings
            + docs
            + dictionary
            + self.free.capacity() * std::mem::size_of::<TermId>()
            + self.live.serialized_size()
    }
}

/// BM25 indexes by namespace.
#[derive(Debug, Default)]
pub struct LexicalIndex {
    namespaces: HashMap<Arc<str>, Namespace>,
}

impl LexicalIndex {
    /// Indexes `terms` (already analyzed) as document `key` of `namespace`;
    /// `counted` documents make the namespace's statistics.
    /// A document without terms is not indexed: nothing could match it.
    pub fn insert(&mut self, namespace: &Arc<str>, key: Key, terms: &[String], counted: bool) {
        if terms.is_empty() {
            return;
        }
        self.namespaces
            .entry(Arc::clone(namespace))
            .or_default()
            .insert(key, terms, counted);
    }

    /// Forgets document `key` of `namespace`; returns whether it was indexed.
    pub fn remove(&mut self, namespace: &str, key: Key) -> bool {
        let Some(ns) = self.namespaces.get_mut(namespace) else {
            return false;
        };
        let removed = ns.remove(key);
        if ns.docs.is_empty() {
            self.namespaces.remove(namespace);
        }
        removed
    }

    /// Documents indexed in `namespace`.
    pub fn documents(&self, namespace: &str) -> usize {
        self.namespaces.get(namespace).map_or(0, |n| n.docs.len())
    }

    /// Approximate heap bytes of every namespace's index.
    pub fn memory_bytes(&self) -> usize {
        self.namespaces.values().map(Namespace::memory_bytes).sum()
    }

    /// The `k` best documents of `namespace` for the query `terms` by BM25
    /// with the default parameters, among the `allowed` keys (best first,
    /// ties by key).
    pub fn search(
        &self,
        namespace: &str,
        terms: &[String],
        k: usize,
        allowed: &RoaringBitmap,
    ) -> Vec<Scored> {
        self.search_with(namespace, terms, k, allowed, Bm25::default())
    }

    /// [`Self::search`] with BM25 parameters `params`.
    pub fn search_with(
        &self,
        namespace: &str,
        terms: &[String],
        k: usize,
        allowed: &RoaringBitmap,
        params: Bm25,
    ) -> Vec<Scored> {
        let Bm25 { k1, b } = params;
        let Some(ns) = self.namespaces.get(namespace) else {
            return Vec::new();
        };
        let allowed = allowed & &ns.live;
        let n = ns.counted as f32;
        let avg_len = (ns.total_len as f32 / n.max(1.0)).max(1.0);
        // A repeated query term counts as many times as it is repeated.
        let mut query: HashMap<TermId, f32> = HashMap::new();
        for t in terms {
            if let Some(id) = ns.dictionary.get(t.as_str()) {
                *query.entry(*id).or_default() += 1.0;
            }
        }
        let contribution = |e: &Posting| {
            let tf = e.tf as f32;
            let norm = k1 * (1.0 - b + b * e.len as f32 / avg_len);
            tf * (k1 + 1.0) / (tf + norm)
        };
        // Document at a time with MaxScore pruning. Every posting list is in key
        // order, so one merge pass scores each document once. A term adds at
        // most `weight * (k1 + 1)`; once the k-th best score exceeds the bounds
        // of the weakest terms together, a document having only those cannot
        // enter the top k, so only the other ("essential") lists drive the
        // merge and the weak ones are merely probed, strongest first.
        let mut lists: Vec<List<'_>> = query
            .into_iter()
            .map(|(id, weight)| {
                let p = &ns.postings[id as usize];
                let df = p.df as f32;
                let weight = weight * (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                List {
                    postings: p.entries.as_slice(),
                    weight,
                    bound: weight * (k1 + 1.0),
                }
            })
            .collect();
        lists.sort_by(|a, b| a.bound.total_cmp(&b.bound));
        // bounds_below[i]: the bounds of lists[..i] together.
        let mut bounds_below = Vec::with_capacity(lists.len() + 1);
        let mut sum = 0.0f32;
        bounds_below.push(sum);
        for l in &lists {
            sum += l.bound;
            bounds_below.push(sum);
        }
        let mut best = TopK::new(k);
        let mut threshold = f32::NEG_INFINITY;
        let mut first_essential = 0;
        while let Some(key) = lists[first_essential..]
            .iter()
            .filter_map(|l| l.postings.first())
            .map(|e| e.key)
            .min()
        {
            let wanted = allowed.contains(key);
            let mut score = 0.0;
            for l in &mut lists[first_essential..] {
                if let Some((e, rest)) = l.postings.split_first()
                    && e.key == key
                {
                    if wanted {
                        score += l.weight * contribution(e);
                    }
                    l.postings = rest;
                }
            }
            if !wanted {
                continue;
            }
            let mut hopeless = false;
            for i in (0..first_essential).rev() {
                if score + bounds_below[i + 1] <= threshold {
                    hopeless = true;
                    break;
                }
                let l = &mut lists[i];
                l.postings = &l.postings[l.postings.partition_point(|e| e.key < key)..];
                if let Some((e, rest)) = l.postings.split_first()
                    && e.key == key
                {
                    score += l.weight * contribution(e);
                    l.postings = rest;
                }
            }
            if hopeless {
                continue;
            }
            best.push(Scored { key, score });
            if let Some(t) = best.threshold() {
                threshold = t;
                while first_essential < lists.len()
                    && bounds_below[first_essential + 1] <= threshold
                {
                    first_essential += 1;
                }
            }
        }
        best.into_sorted()
    }
}

/// One query term's remaining postings during a search.
struct List<'a> {
    postings: &'a [Posting],
    /// Query-term count times IDF.
    weight: f32,
    /// The most one posting can add.
    bound: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn all(keys: impl IntoIterator<Item = Key>) -> RoaringBitmap {
        keys.into_iter().collect()
    }

    #[test]
    fn rare_terms_outweigh_common_ones_and_tf_saturates() {
        let ns: Arc<str> = Arc::from("a");
        let mut idx = LexicalIndex::default();
        idx.insert(&ns, 0, &words("paris trip booked"), true);
        idx.insert(&ns, 1, &words("trip trip trip trip planned"), true);
        idx.insert(&ns, 2, &words("trip to rome"), true);
        let hits = idx.search("a", &words("paris trip"), 10, &all(0..3));
        assert_eq!(hits[0].key, 0, "the only document with the rare term wins");
        assert_eq!(hits.len(), 3);
        let only_trip = idx.search("a", &words("trip"), 10, &all(0..3));
        // Repeats help, but far less than linearly.
        let (four, one) = (only_trip[0].score, only_trip[2].score);
        assert_eq!(only_trip[0].key, 1);
        assert!(four > one && four < 2.0 * one, "{four} vs {one}");
    }

    #[test]
    fn namespaces_keep_their_own_statistics() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let mut idx = LexicalIndex::default();
        idx.insert(&a, 0, &words("alpha beta"), true);
        idx.insert(&a, 1, &words("gamma"), true);
        let before = idx.search("a", &words("alpha"), 5, &all(0..10));
        for key in 2..50 {
            idx.insert(&b, key, &words("alpha"), true);
        }
        let after = idx.search("a", &words("alpha"), 5, &all(0..50));
        assert_eq!(before, after, "b's documents change nothing in a");
        assert!(idx.search("a", &words("alpha"), 5, &all(0..50)).len() == 1);
    }

    #[test]
    fn removed_documents_stop_matching_and_compaction_keeps_the_rest() {
        let ns: Arc<str> = Arc::from("a");
        let mut idx = LexicalIndex::default();
        for key in 0..100 {
            idx.insert(&ns, key, &words("common words here"), true);
        }
        for key in 0..90 {
            assert!(idx.remove("a", key));
        }
        assert!(!idx.remove("a", 0));
        let hits = idx.search("a", &words("common"), 100, &all(0..100));
        let keys: Vec<Key> = hits.iter().map(|h| h.key).collect();
        assert_eq!(keys, (90..100).collect::<Vec<_>>());
        assert_eq!(idx.documents("a"), 10);
        let postings = &idx.namespaces["a"].postings[0];
        assert!(postings.entries.len() < 2 * postings.live as usize + 1);
        for key in 90..100 {
            idx.remove("a", key);
        }
        assert_eq!(idx.documents("a"), 0);
        assert!(idx.namespaces.is_empty(), "an empty namespace is dropped");
    }

    #[test]
    fn terms_of_removed_documents_are_forgotten_and_their_ids_reused() {
        let ns: Arc<str> = Arc::from("a");
        let mut idx = LexicalIndex::default();
        idx.insert(&ns, 0, &words("keep"), true);
        idx.insert(&ns, 1, &words("once"), true);
        idx.remove("a", 1);
        assert!(!idx.namespaces["a"].dictionary.contains_key("once"));
        idx.insert(&ns, 2, &words("again"), true);
        assert_eq!(
            idx.namespaces["a"].postings.len(),
            2,
            "the freed id is reused"
        );
        assert_eq!(idx.search("a", &words("again"), 1, &all([2]))[0].key, 2);
        assert!(idx.search("a", &words("once"), 1, &all(0..3)).is_empty());
    }

    /// Scores every posting into a map: the obvious BM25, to check the pruned merge against.
    fn reference(
        idx: &LexicalIndex,
        terms: &[String],
        k: usize,
        allowed: &RoaringBitmap,
    ) -> Vec<Scored> {
        let ns = &idx.namespaces["a"];
        let n = ns.counted as f32;
        let avg_len = (ns.total_len as f32 / n.max(1.0)).max(1.0);
        let mut scores: HashMap<Key, f32> = HashMap::new();
        for t in terms {
            let Some(id) = ns.dictionary.get(t.as_str()) else {
                continue;
            };
            let p = &ns.postings[*id as usize];
            let df = p.df as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for e in p
                .entries
                .iter()
                .filter(|e| allowed.contains(e.key) && ns.live.contains(e.key))
            {
                let tf = e.tf as f32;
                let norm = K1 * (1.0 - B + B * e.len as f32 / avg_len);
                *scores.entry(e.key).or_default() += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let mut hits: Vec<Scored> = scores
            .into_iter()
            .map(|(key, score)| Scored { key, score })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.key.cmp(&b.key)));
        hits.truncate(k);
        hits
    }

    #[test]
    fn pruned_search_equals_scoring_every_posting() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let ns: Arc<str> = Arc::from("a");
        let mut idx = LexicalIndex::default();
        // A skewed vocabulary: a few very common words, many rare ones.
        let word = |rng: &mut rand::rngs::StdRng| {
            let r: f64 = rng.random();
            format!("w{}", (r * r * r * 300.0) as u32)
        };
        for key in 0..3000 {
            let len = rng.random_range(1..12);
            let text: Vec<String> = (0..len).map(|_| word(&mut rng)).collect();
            idx.insert(&ns, key, &text, true);
            if key % 7 == 0 {
                idx.remove("a", key / 2);
            }
        }
        let allowed: RoaringBitmap = (0..3000).filter(|k| k % 5 != 0).collect();
        for _ in 0..300 {
            let terms: Vec<String> = (0..rng.random_range(1..6))
                .map(|_| word(&mut rng))
                .collect();
            let every = reference(&idx, &terms, usize::MAX, &allowed);
            for k in [1, 10, 40] {
                let got = idx.search("a", &terms, k, &allowed);
                let want = &every[..k.min(every.len())];
                // Equal scores may differ in the last bit (summation order), so
                // ties can swap: compare score by score, and each hit's true score.
                assert_eq!(got.len(), want.len(), "{terms:?} k={k}");
                for (g, w) in got.iter().zip(want) {
                    assert!((g.score - w.score).abs() < 1e-4, "{terms:?} k={k}");
                    let truth = every.iter().find(|e| e.key == g.key).map(|e| e.score);
                    assert!(truth.is_some_and(|t| (t - g.score).abs() < 1e-4));
                }
            }
        }
    }

    #[test]
    fn keys_inserted_out_of_order_are_merged_correctly() {
        let ns: Arc<str> = Arc::from("a");
        let mut idx = LexicalIndex::default();
        for key in [5, 3, 9, 1, 7] {
            idx.insert(&ns, key, &words(&format!("shared k{key}")), true);
        }
        // Term ids follow the order a document's terms are counted in (a
        // hash map's), so look "shared" up rather than assume it is term 0.
        let namespace = &idx.namespaces["a"];
        let shared = namespace.dictionary["shared"];
        let keys: Vec<Key> = namespace.postings[shared as usize]
            .entries
            .iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, vec![1, 3, 5, 7, 9]);
        let hits = idx.search("a", &words("shared k7"), 2, &all(0..10));
        assert_eq!(hits[0].key, 7);
        assert_eq!(hits.len(), 2);
    }

    #[test]
    fn only_allowed_keys_are_scored_and_k_bounds_the_answer() {
        let ns: Arc<str> = Arc::from("a");
        let mut idx = LexicalIndex::default();
        for key in 0..20 {
            idx.insert(&ns, key, &words("same text"), true);
        }
        let hits = idx.search("a", &words("text"), 3, &all([5, 7, 9, 11]));
        let keys: Vec<Key> = hits.iter().map(|h| h.key).collect();
        assert_eq!(keys, vec![5, 7, 9], "equal scores tie-break by key");
        assert!(idx.search("a", &[], 3, &all(0..20)).is_empty());
        assert!(
            idx.search("missing", &words("text"), 3, &all(0..20))
                .is_empty()
        );
        idx.insert(&ns, 30, &[], true);
        assert_eq!(
            idx.documents("a"),
            20,
            "a document without terms is not indexed"
        );
    }

    #[test]
    fn uncounted_documents_are_scored_but_never_move_the_statistics() {
        let ns: Arc<str> = Arc::from("a");
        let mut idx = LexicalIndex::default();
        idx.insert(&ns, 0, &words("deploy the canary"), true);
        idx.insert(&ns, 1, &words("rollback plan"), true);
        let before = idx.search("a", &words("canary"), 5, &all(0..10));
        // A private document with the same word, counted or not.
        idx.insert(&ns, 2, &words("canary secret"), false);
        let after = idx.search("a", &words("canary"), 5, &all([0, 1]));
        assert_eq!(before, after, "the visible document's score did not move");
        // The uncounted document is found and scored like any other.
        let hits = idx.search("a", &words("canary"), 5, &all(0..10));
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.score > 0.0));
        let expected = reference(&idx, &words("canary"), 5, &all(0..10));
        for (h, e) in hits.iter().zip(&expected) {
            assert_eq!(h.key, e.key);
            assert!((h.score - e.score).abs() < 1e-5, "{h:?} vs {e:?}");
        }
        // Removing it leaves the statistics as they were.
        assert!(idx.remove("a", 2));
        assert_eq!(idx.search("a", &words("canary"), 5, &all(0..10)), before);
        // Counted, it would have moved them: the check above can fail.
        idx.insert(&ns, 3, &words("canary secret"), true);
        assert_ne!(idx.search("a", &words("canary"), 5, &all([0, 1])), before);
    }
}
