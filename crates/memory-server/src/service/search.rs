//! Search: vector, keyword (BM25) and hybrid retrieval, fusion, recency and
//! maximal marginal relevance.
//!
//! Each retriever gathers its own candidates, deeper than `top_k`, and the
//! union is fused: a memory only the keyword side finds can win. Scoring,
//! recency and diversification work on the in-memory index; only the final
//! results are read from the store.

use std::collections::HashMap;
use std::time::Instant;

use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::{Filter, Hit, KeywordQuery, Query, TimeField};

use super::feedback::{expansion_terms, rocchio};
use super::query_time::{Named, named_time};
use super::{MemoryService, millis};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::model::{
    FeedbackUsed, Fusion, QueryTime, SearchHit, SearchMode, SearchRequest, SearchResponse,
    TimeRange,
};
use crate::validate;
use providers::embed::Purpose;

/// How much deeper than `top_k` each side of a hybrid search looks.
const HYBRID_DEPTH: usize = 4;
/// Fewest candidates each side of a hybrid search gathers.
const HYBRID_MIN_CANDIDATES: usize = 40;
/// How much deeper than `top_k` a recency-weighted or diversified search looks.
const RERANK_DEPTH: usize = 5;
/// The share of a time-boosted score that says "created when the query
/// says" (`query_time: boost`; docs/benchmarks.md measures it).
const TIME_BOOST: f32 = 0.3;

/// One candidate with everything its score is made of.
#[derive(Debug, Clone, Default)]
struct Candidate {
    id: Uuid,
    similarity: Option<f32>,
    keyword: Option<f32>,
    vector_rank: Option<u32>,
    keyword_rank: Option<u32>,
    fused: Option<f32>,
    /// What the score starts from: similarity, normalised keyword score, or fused.
    relevance: f32,
    recency: Option<f32>,
    score: f32,
}

/// The request's settings after defaults, checked.
struct Plan {
    mode: SearchMode,
    fusion: Fusion,
    alpha: f32,
    rrf_k: u32,
    bm25: vector_index::Bm25,
    top_k: usize,
    depth: usize,
    /// What to do with a time the query names.
    query_time: QueryTime,
    /// The time the query names, read once (none when `query_time` is off).
    named: Option<Named>,
    /// Entity-aware scoring's share of the score (0: off).
    entity_weight: f32,
    /// The names the query mentions (none when entity scoring is off).
    names: Vec<String>,
}

fn rank(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

/// A side's scores between mean − 3σ and mean + 3σ (distribution-based
/// score fusion).
struct Spread {
    low: f32,
    width: f32,
}

impl Spread {
    fn of(scores: impl Iterator<Item = f32>) -> Self {
        let v: Vec<f32> = scores.collect();
        let n = v.len().max(1) as f32;
        let mean = v.iter().sum::<f32>() / n;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
        Self {
            low: mean - 3.0 * sd,
            width: (6.0 * sd).max(f32::MIN_POSITIVE),
        }
    }

    /// `score` scaled to `[0, 1]`.
    fn unit(&self, score: f32) -> f32 {
        ((score - self.low) / self.width).clamp(0.0, 1.0)
    }
}

/// Merges the two rankings into candidates with their relevance.
/// `similarity_of` gives the query similarity of a keyword-only find, so
/// that weighted fusion counts its true vector side rather than zero.
fn fuse(
    plan: &Plan,
    vector: &[Hit],
    keyword: &[Hit],
    similarity_of: impl Fn(Uuid) -> Option<f32>,
) -> Vec<Candidate> {
    let mut by_id: HashMap<Uuid, Candidate> = HashMap::new();
    for (i, h) in vector.iter().enumerate() {
        let c = by_id.entry(h.id).or_insert_with(|| Candidate {
            id: h.id,
            ..Candidate::default()
        });
        c.similarity = Some(h.score);
        c.vector_rank = Some(rank(i));
    }
    for (i, h) in keyword.iter().enumerate() {
        let c = by_id.entry(h.id).or_insert_with(|| Candidate {
            id: h.id,
            ..Candidate::default()
        });
        c.keyword = Some(h.score);
        c.keyword_rank = Some(rank(i));
        if c.similarity.is_none() {
            c.similarity = similarity_of(h.id);
        }
    }
    // Hits are best first, so the first keyword hit has the best score.
    let best_keyword = keyword
        .first()
        .map_or(1.0, |h| h.score.max(f32::MIN_POSITIVE));
    let k = plan.rrf_k as f32;
    let mut out: Vec<Candidate> = by_id.into_values().collect();
    let vector_scale = Spread::of(out.iter().filter_map(|c| c.similarity));
    let keyword_scale = Spread::of(keyword.iter().map(|h| h.score));
    for c in &mut out {
        let keyword_norm = c.keyword.map_or(0.0, |s| s / best_keyword);
        c.relevance = match plan.mode {
            SearchMode::Vector => c.similarity.unwrap_or(0.0),
            SearchMode::Keyword => keyword_norm,
            SearchMode::Hybrid => {
                let fused = match plan.fusion {
                    // Scaled by the best possible sum (rank 1 on both sides).
                    Fusion::Rrf => {
                        let part = |r: Option<u32>| r.map_or(0.0, |r| 1.0 / (k + r as f32));
                        (part(c.vector_rank) + part(c.keyword_rank)) * (k + 1.0) / 2.0
                    }
                    Fusion::Weighted => {
                        plan.alpha * c.similarity.unwrap_or(0.0).max(0.0)
                            + (1.0 - plan.alpha) * keyword_norm
                    }
                    Fusion::Dbsf => {
                        plan.alpha * c.similarity.map_or(0.0, |s| vector_scale.unit(s))
                            + (1.0 - plan.alpha) * c.keyword.map_or(0.0, |s| keyword_scale.unit(s))
                    }
                };
                c.fused = Some(fused);
                fused
            }
        };
        c.score = c.relevance;
    }
    out
}

fn by_score(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id))
}

/// Greedy maximal marginal relevance: each pick maximises
/// `lambda * score - (1 - lambda) * (highest similarity to a pick so far)`.
fn diversify(mut pool: Vec<(Candidate, Vec<f32>)>, lambda: f32, top_k: usize) -> Vec<Candidate> {
    let mut picked: Vec<(Candidate, Vec<f32>)> = Vec::with_capacity(top_k.min(pool.len()));
    while picked.len() < top_k && !pool.is_empty() {
        let mut best = 0;
        let mut best_value = f32::NEG_INFINITY;
        for (i, (c, v)) in pool.iter().enumerate() {
            let redundancy = picked
                .iter()
                .map(|(_, p)| vector_index::vector::dot(v, p))
                .fold(f32::NEG_INFINITY, f32::max);
            let redundancy = if picked.is_empty() { 0.0 } else { redundancy };
            let value = lambda * c.score - (1.0 - lambda) * redundancy;
            if value > best_value {
                best = i;
                best_value = value;
            }
        }
        picked.push(pool.swap_remove(best));
    }
    picked.into_iter().map(|(c, _)| c).collect()
}

/// What the two retrievers found for one pass of a search.
struct Retrieved {
    vector_hits: Vec<Hit>,
    keyword_hits: Vec<Hit>,
    /// The vector side's plan (`bm25` when only the keyword side ran).
    plan_name: &'static str,
    /// Memories the filter allowed.
    allowed: u64,
}

impl MemoryService {
    /// One pass: nearest neighbours of `vector` and BM25 of `text`, each
    /// `plan.depth` deep, under `filter`.
    fn retrieve(
        &self,
        plan: &Plan,
        ns: &str,
        vector: Option<&Vec<f32>>,
        text: Option<&str>,
        filter: &Filter,
    ) -> ApiResult<Retrieved> {
        let (vector_hits, plan_name, allowed) = match vector {
            Some(v) => {
                let r = self
                    .collection
                    .search(&Query::new(v.clone(), plan.depth).filter(filter.clone()))?;
                (r.hits, r.plan.name(), r.allowed)
            }
            None => (Vec::new(), "bm25", 0),
        };
        let (keyword_hits, allowed) = match text {
            Some(q) => {
                let r = self.collection.search_keyword(
                    &KeywordQuery::new(ns, q, plan.depth)
                        .filter(filter.clone())
                        .bm25(plan.bm25),
                )?;
                (r.hits, r.allowed)
            }
            None => (Vec::new(), allowed),
        };
        Ok(Retrieved {
            vector_hits,
            keyword_hits,
            plan_name,
            allowed,
        })
    }

    /// Checks a search request and fills in the namespace's defaults.
    /// `now` is the reference of relative times the query names, unless the
    /// request gives its own.
    fn plan_search(&self, req: &SearchRequest, now: OffsetDateTime) -> ApiResult<Plan> {
        let l = &self.limits;
        let top_k = validate::top_k(l, "top_k", req.top_k.unwrap_or(10))?;
        if req.min_score.is_some_and(|s| !s.is_finite()) {
            return Err(ApiError::invalid("min_score", "min_score must be a number"));
        }
        if let Some(r) = req.recency {
            if !(r.half_life_hours.is_finite() && r.half_life_hours > 0.0) {
                return Err(ApiError::invalid(
                    "recency.half_life_hours",
                    "half_life_hours must be a positive number",
                ));
            }
            if !(0.0..=1.0).contains(&r.weight) {
                return Err(ApiError::invalid(
                    "recency.weight",
                    "recency.weight must be between 0 and 1",
                ));
            }
        }
        if req.alpha.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
            return Err(ApiError::invalid("alpha", "alpha must be between 0 and 1"));
        }
        if req.rrf_k == Some(0) {
            return Err(ApiError::invalid("rrf_k", "rrf_k must be at least 1"));
        }
        if req.mmr.is_some_and(|m| !(0.0..=1.0).contains(&m.lambda)) {
            return Err(ApiError::invalid(
                "mmr.lambda",
                "mmr.lambda must be between 0 and 1",
            ));
        }
        if let Some(w) = &req.context_window {
            super::neighbors::check_window(w)?;
        }
        let bm25 = req.bm25.map(|p| vector_index::Bm25 { k1: p.k1, b: p.b });
        if let Some((name, range, _)) = bm25.and_then(|p| p.out_of_range()) {
            return Err(ApiError::invalid(
                &format!("bm25.{name}"),
                format!("bm25.{name} must be {range}"),
            ));
        }
        if let Some(fb) = &req.feedback {
            if !(1..=10).contains(&fb.docs) {
                return Err(ApiError::invalid(
                    "feedback.docs",
                    "feedback.docs must be between 1 and 10",
                ));
            }
            if fb.terms > 20 {
                return Err(ApiError::invalid(
                    "feedback.terms",
                    "feedback.terms must be at most 20",
                ));
            }
            if !(0.0..=1.0).contains(&fb.weight) {
                return Err(ApiError::invalid(
                    "feedback.weight",
                    "feedback.weight must be between 0 and 1",
                ));
            }
        }
        if req.max_per_session == Some(0) {
            return Err(ApiError::invalid(
                "max_per_session",
                "max_per_session must be at least 1 (leave it out for no cap)",
            ));
        }
        let resolved = self.search.of(&req.namespace);
        let defaults = &resolved.settings;
        let mode = match (&req.query, &req.vector, req.mode) {
            (None, None, _) => {
                return Err(ApiError::bad_request(
                    "give `query` (text), `vector`, or both (the vector then serves the \
                     vector side of a hybrid search)",
                ));
            }
            (None, Some(_), Some(SearchMode::Keyword | SearchMode::Hybrid)) => {
                return Err(ApiError::invalid(
                    "mode",
                    "mode `keyword` and `hybrid` need `query` text; give `query` or use \
                     mode `vector`",
                ));
            }
            (None, Some(_), _) => SearchMode::Vector,
            (Some(_), _, Some(mode)) => mode,
            (Some(_), _, None) => defaults.mode,
        };
        let max_depth = self.collection.index().config().max_k;
        let mut depth = top_k;
        if mode == SearchMode::Hybrid {
            depth = (top_k * HYBRID_DEPTH).max(HYBRID_MIN_CANDIDATES);
        }
        let query_time = req.query_time.unwrap_or_default();
        let named = match (&req.query, query_time) {
            (Some(q), QueryTime::Boost | QueryTime::Filter) => {
                named_time(q, req.reference_time.unwrap_or(now))
            }
            _ => None,
        };
        let entity_weight = req.entity_weight.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&entity_weight) {
            return Err(ApiError::invalid(
                "entity_weight",
                "entity_weight must be between 0 and 1 (0 turns it off)",
            ));
        }
        let names = match &req.query {
            Some(q) if entity_weight > 0.0 => super::entities::names(q),
            _ => Vec::new(),
        };
        if req.recency.is_some()
            || req.mmr.is_some()
            || req.max_per_session.is_some()
            || (query_time == QueryTime::Boost && named.is_some())
            || !names.is_empty()
        {
            depth = depth.max(top_k * RERANK_DEPTH);
        }
        Ok(Plan {
            mode,
            fusion: req.fusion.unwrap_or(defaults.fusion),
            alpha: req.alpha.unwrap_or(defaults.alpha),
            rrf_k: req.rrf_k.unwrap_or(defaults.rrf_k),
            bm25: bm25.unwrap_or(defaults.bm25),
            top_k,
            depth: depth.min(max_depth),
            query_time,
            named,
            entity_weight,
            names,
        })
    }

    /// The memories that best match the query: by vector, by keyword, or both fused.
    pub async fn search(&self, who: &Principal, req: SearchRequest) -> ApiResult<SearchResponse> {
        let started = Instant::now();
        validate::namespace(&self.limits, &req.namespace)?;
        who.require(&req.namespace, Role::Read)?;
        self.models.check(&req.namespace).await?;
        let now = OffsetDateTime::now_utc();
        let plan = self.plan_search(&req, now)?;
        if let Some(q) = &req.query {
            validate::text(&self.limits, "query", q)?;
        }
        let uses_vector = plan.mode != SearchMode::Keyword;
        let uses_keyword = plan.mode != SearchMode::Vector;
        let vector = match (&req.vector, &req.query) {
            (Some(v), _) if uses_vector => {
                validate::vector(self.embedder.dims(), v)?;
                Some(v.clone())
            }
            (None, Some(q)) if uses_vector => {
                Some(self.embed(vec![q.clone()], Purpose::Query).await?.remove(0))
            }
            _ => None,
        };
        let agent = who.acting_agent(req.as_agent.as_deref());
        let now_ms = millis(now);
        let state = |filter| match (req.as_of, req.include_superseded) {
            (None, true) => filter,
            (as_of, _) => Self::believed(filter, as_of.map(millis)),
        };
        // What the caller may read here, before the request's own conditions
        // (neighbouring turns are read under it).
        let visible = Self::visible_filter(&req.namespace, agent.as_deref());
        let readable = state(visible.clone());
        let filter = state(self.apply_filter(visible, &req.filter)?);
        // A time the query names: a filter now, or a boost after fusion.
        let (applied, named) = (plan.query_time, plan.named.as_ref());
        let filter = match named {
            Some(t) if applied == QueryTime::Filter => {
                filter.range(TimeField::Created, Some(millis(t.from)), Some(millis(t.to)))
            }
            _ => filter,
        };

        let keyword_text = req.query.as_deref().filter(|_| uses_keyword);
        let first = self.retrieve(
            &plan,
            &req.namespace,
            vector.as_ref(),
            keyword_text,
            &filter,
        )?;
        let (plan_name, allowed) = (first.plan_name, first.allowed);
        let index = self.collection.index();
        let unit_query = vector
            .as_ref()
            .and_then(|q| vector_index::vector::normalized(q, q.len()).ok());
        let similarity_of = |id| {
            let q = unit_query.as_ref()?;
            index
                .get(id)
                .map(|point| vector_index::vector::dot(q, &point.vector))
        };
        // After fusion, two more signals: a time the query names (boost)
        // and the names it mentions; each candidate's payload is read once.
        let boost_window = named
            .filter(|_| applied == QueryTime::Boost)
            .map(|t| (millis(t.from), millis(t.to)));
        let ranked = |pass: &Retrieved| {
            let mut candidates = fuse(&plan, &pass.vector_hits, &pass.keyword_hits, similarity_of);
            if boost_window.is_none() && plan.names.is_empty() {
                return candidates;
            }
            for c in &mut candidates {
                let payload = index.payload(c.id);
                if let Some((from, to)) = boost_window {
                    let inside = payload
                        .as_ref()
                        .is_some_and(|p| (from..to).contains(&p.created_at));
                    c.relevance =
                        (1.0 - TIME_BOOST) * c.relevance + if inside { TIME_BOOST } else { 0.0 };
                }
                if !plan.names.is_empty() {
                    let w = plan.entity_weight;
                    let share = payload
                        .as_ref()
                        .map_or(0.0, |p| super::entities::share(&plan.names, &p.text));
                    c.relevance = (1.0 - w) * c.relevance + w * share;
                }
                c.score = c.relevance;
            }
            candidates
        };
        let mut candidates = ranked(&first);
        let mut feedback_used = None;
        if let Some(fb) = req.feedback {
            // The first pass's best, as if marked relevant, widen the query.
            candidates.sort_by(by_score);
            let from: Vec<Uuid> = candidates
                .iter()
                .take(fb.docs as usize)
                .map(|c| c.id)
                .collect();
            let points: Vec<_> = from.iter().filter_map(|id| index.get(*id)).collect();
            let texts: Vec<&str> = points.iter().map(|p| p.payload.text.as_str()).collect();
            let terms = keyword_text
                .map(|q| expansion_terms(&texts, q, fb.terms as usize))
                .unwrap_or_default();
            let widened_text = keyword_text.map(|q| {
                std::iter::once(q.to_owned())
                    .chain(terms.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            let feedback_vectors: Vec<Vec<f32>> = points.iter().map(|p| p.vector.clone()).collect();
            let widened_vector = vector
                .as_ref()
                .map(|q| rocchio(q, &feedback_vectors, fb.weight));
            let again = self.retrieve(
                &plan,
                &req.namespace,
                widened_vector.as_ref(),
                widened_text.as_deref(),
                &filter,
            )?;
            candidates = ranked(&again);
            feedback_used = Some(FeedbackUsed { from, terms });
        }
        let mut vectors: HashMap<Uuid, Vec<f32>> = HashMap::new();
        // Only recency and MMR need each candidate's point.
        if req.recency.is_some() || req.mmr.is_some() {
            for c in &mut candidates {
                let Some(point) = index.get(c.id) else {
                    continue;
                };
                if let Some(r) = req.recency {
                    let age_h = ((now_ms - point.payload.updated_at).max(0) as f64) / 3_600_000.0;
                    let factor = 0.5f64.powf(age_h / r.half_life_hours);
                    c.score =
                        ((1.0 - r.weight) * f64::from(c.relevance) + r.weight * factor) as f32;
                    c.recency = Some(factor as f32);
                }
                if req.mmr.is_some() {
                    vectors.insert(c.id, point.vector);
                }
            }
        }
        match req.min_score {
            Some(m) => candidates.retain(|c| c.score >= m),
            // A text search leaves out what matches nothing at all (no shared
            // word, no positive similarity): with a lexical embedder those
            // would be noise at score 0. `min_score` (e.g. 0) asks for them;
            // a caller's own vector asks for nearest neighbours, whatever they are.
            None if req.query.is_some() && req.vector.is_none() => {
                candidates.retain(|c| c.relevance > 0.0)
            }
            None => {}
        }
        candidates.sort_by(by_score);
        if let Some(cap) = req.max_per_session {
            let kept: std::collections::HashSet<Uuid> = self
                .cap_per_session(candidates.iter().map(|c| c.id).collect(), cap as usize)
                .into_iter()
                .collect();
            candidates.retain(|c| kept.contains(&c.id));
        }
        let chosen = match req.mmr {
            Some(m) => {
                let pool = candidates
                    .into_iter()
                    .filter_map(|c| vectors.remove(&c.id).map(|v| (c, v)))
                    .collect();
                diversify(pool, m.lambda, plan.top_k)
            }
            None => {
                candidates.truncate(plan.top_k);
                candidates
            }
        };

        let ids: Vec<Uuid> = chosen.iter().map(|c| c.id).collect();
        // Entries, not records: a hit is shown, never compared again.
        let records = self
            .timed("get_entries", self.collection.get_entries(&ids))
            .await?;
        let mut results = Vec::with_capacity(records.len());
        for (c, record) in chosen.into_iter().zip(records) {
            // Deleted or changed since the index answered: skip what is no longer visible.
            let Some(record) = record else { continue };
            if !Self::visible(&record, agent.as_deref())
                || record.payload.namespace != req.namespace
            {
                continue;
            }
            let Some(memory) = self.readable(&record) else {
                continue;
            };
            results.push(SearchHit {
                memory,
                score: c.score,
                similarity: c.similarity,
                keyword_score: c.keyword,
                fused_score: c.fused,
                vector_rank: c.vector_rank,
                keyword_rank: c.keyword_rank,
                recency: c.recency,
                neighbor: None,
            });
        }
        if let Some(window) = req.context_window {
            results = self
                .with_neighbors(results, window, &readable, agent.as_deref())
                .await?;
        }
        Ok(SearchResponse {
            results,
            mode: plan.mode,
            plan: plan_name.to_owned(),
            candidates: allowed,
            took_ms: kit::telemetry::millis_rounded(started.elapsed()),
            feedback: feedback_used,
            entities: plan.names.clone(),
            time_range: named.map(|t| TimeRange {
                from: t.from,
                to: t.to,
                phrase: t.phrase.clone(),
                applied,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(n: u128, score: f32) -> Hit {
        Hit {
            id: Uuid::from_u128(n),
            score,
        }
    }

    fn plan(mode: SearchMode, fusion: Fusion) -> Plan {
        Plan {
            mode,
            fusion,
            alpha: 0.5,
            rrf_k: 60,
            bm25: vector_index::Bm25::default(),
            top_k: 10,
            depth: 40,
            query_time: QueryTime::default(),
            named: None,
            entity_weight: 0.0,
            names: Vec::new(),
        }
    }

    fn sorted(mut c: Vec<Candidate>) -> Vec<Candidate> {
        c.sort_by(by_score);
        c
    }

    #[test]
    fn rrf_rewards_agreement_and_keeps_one_sided_finds() {
        let v = [hit(1, 0.9), hit(2, 0.8), hit(3, 0.7)];
        let k = [hit(3, 12.0), hit(4, 9.0)];
        let c = sorted(fuse(&plan(SearchMode::Hybrid, Fusion::Rrf), &v, &k, |_| {
            None
        }));
        let order: Vec<u128> = c.iter().map(|c| c.id.as_u128()).collect();
        assert_eq!(order[0], 3, "found by both sides");
        assert!(order.contains(&4), "a keyword-only find is kept");
        let best = &c[0];
        assert_eq!((best.vector_rank, best.keyword_rank), (Some(3), Some(1)));
        let want = (1.0 / 63.0 + 1.0 / 61.0) * 61.0 / 2.0;
        assert!((best.fused.unwrap() - want).abs() < 1e-6);
        // Rank 1 on both sides is the top of the scale.
        let top = fuse(
            &plan(SearchMode::Hybrid, Fusion::Rrf),
            &v[..1],
            &[hit(1, 3.0)],
            |_| None,
        );
        assert!((top[0].relevance - 1.0).abs() < 1e-6);
    }

    #[test]
    fn weighted_fusion_mixes_similarity_and_relative_keyword_score() {
        let v = [hit(1, 0.8)];
        let k = [hit(2, 10.0), hit(1, 5.0)];
        let mut p = plan(SearchMode::Hybrid, Fusion::Weighted);
        p.alpha = 0.25;
        let c = sorted(fuse(&p, &v, &k, |_| None));
        let one = c.iter().find(|c| c.id.as_u128() == 1).unwrap();
        let two = c.iter().find(|c| c.id.as_u128() == 2).unwrap();
        assert!((one.relevance - (0.25 * 0.8 + 0.75 * 0.5)).abs() < 1e-6);
        assert!((two.relevance - 0.75).abs() < 1e-6);
        assert_eq!(c[0].id.as_u128(), 2);
    }

    #[test]
    fn dbsf_scales_each_side_by_its_own_spread() {
        // Keyword scores bunched near 10, similarities spread over 0.3..0.75:
        // weighted fusion (keyword / best) gives every keyword find about the
        // same large share; dbsf stretches each side over its own spread, so
        // a memory's place within each side is what counts.
        let v: Vec<Hit> = (0..10).map(|i| hit(i, 0.3 + 0.05 * i as f32)).collect();
        let k: Vec<Hit> = (0..10).map(|i| hit(i, 10.0 - 0.01 * i as f32)).collect();
        let dbsf = fuse(&plan(SearchMode::Hybrid, Fusion::Dbsf), &v, &k, |_| None);
        for c in &dbsf {
            let f = c.fused.unwrap();
            assert!((0.0..=1.0).contains(&f), "{f}");
            // Opposite orders of equal spread: every memory lands mid-way.
            assert!((f - 0.5).abs() < 1e-3, "{f}");
        }
        let mid = Spread::of([1.0f32, 2.0, 3.0].into_iter());
        assert!((mid.unit(2.0) - 0.5).abs() < 1e-6);
        assert_eq!(mid.unit(100.0), 1.0);
        assert_eq!(mid.unit(-100.0), 0.0);
    }

    #[test]
    fn weighted_fusion_counts_a_keyword_only_find_at_its_true_similarity() {
        let v = [hit(1, 0.8)];
        let k = [hit(2, 10.0), hit(1, 5.0)];
        let mut p = plan(SearchMode::Hybrid, Fusion::Weighted);
        p.alpha = 0.25;
        let c = fuse(&p, &v, &k, |id| (id.as_u128() == 2).then_some(0.4));
        let two = c.iter().find(|c| c.id.as_u128() == 2).unwrap();
        assert_eq!((two.similarity, two.vector_rank), (Some(0.4), None));
        assert!((two.relevance - (0.25 * 0.4 + 0.75)).abs() < 1e-6);
        // The vector side's own hits keep the similarity it reported.
        let one = c.iter().find(|c| c.id.as_u128() == 1).unwrap();
        assert_eq!(one.similarity, Some(0.8));
    }

    #[test]
    fn single_modes_use_their_own_scale() {
        let v = [hit(1, 0.6)];
        let k = [hit(2, 8.0), hit(3, 2.0)];
        let c = fuse(&plan(SearchMode::Vector, Fusion::Rrf), &v, &[], |_| None);
        assert!((c[0].relevance - 0.6).abs() < 1e-6 && c[0].fused.is_none());
        let c = sorted(fuse(
            &plan(SearchMode::Keyword, Fusion::Rrf),
            &[],
            &k,
            |_| None,
        ));
        assert!((c[0].relevance - 1.0).abs() < 1e-6);
        assert!((c[1].relevance - 0.25).abs() < 1e-6);
    }

    #[test]
    fn mmr_skips_near_duplicates_when_lambda_is_low() {
        let cand = |n: u128, score: f32| Candidate {
            id: Uuid::from_u128(n),
            score,
            ..Candidate::default()
        };
        let pool = || {
            vec![
                (cand(1, 0.9), vec![1.0, 0.0]),
                (cand(2, 0.89), vec![1.0, 0.0]),
                (cand(3, 0.5), vec![0.0, 1.0]),
            ]
        };
        let ids = |c: Vec<Candidate>| c.iter().map(|c| c.id.as_u128()).collect::<Vec<_>>();
        assert_eq!(
            ids(diversify(pool(), 1.0, 2)),
            vec![1, 2],
            "lambda 1: by score"
        );
        assert_eq!(
            ids(diversify(pool(), 0.5, 2)),
            vec![1, 3],
            "the duplicate waits"
        );
        assert_eq!(ids(diversify(pool(), 0.5, 5)).len(), 3);
    }
}
