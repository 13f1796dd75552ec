//! Retrieval-quality evaluation through the HTTP API: a set of memories and of
//! questions naming the memories that answer them, scored per search mode as
//! recall@k and mean reciprocal rank (MRR).
//!
//! Recall@k of a question is the share of its answers among the first k
//! results; MRR averages `1 / rank` of the first answer found (0 when none is
//! in the results). Both are averaged over the questions, overall and per kind.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use memory_client::{
    Bm25Params, ClientError, ContextWindow, Feedback, Fusion, MemoryClient, PortableMemory,
    QueryTime, Result, SearchMode, SearchRequest,
};

/// Memories per import request.
const IMPORT_PART: usize = 250;

/// The cut-offs recall is reported at.
pub const CUTOFFS: [usize; 4] = [1, 5, 10, 25];

/// Every search mode, in report order.
pub const MODES: [SearchMode; 3] = [SearchMode::Vector, SearchMode::Keyword, SearchMode::Hybrid];

/// A retrieval-quality set.
#[derive(Debug, Clone, Deserialize)]
pub struct EvalSet {
    /// Where the set comes from and its licence.
    pub about: String,
    /// The namespace its memories are imported into (a prefix: a run adds a suffix).
    pub namespace: String,
    /// The memories, each with a key the questions refer to.
    pub memories: Vec<EvalMemory>,
    /// The questions.
    pub questions: Vec<EvalQuestion>,
}

/// One memory of a set: a key plus the fields of a [`PortableMemory`] but the namespace.
#[derive(Debug, Clone, Deserialize)]
pub struct EvalMemory {
    /// What questions call it.
    pub key: String,
    /// `text`, `user_id`, `agent_id`, `session_id`, `created_at`, ...
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// One question and the keys of the memories that answer it.
#[derive(Debug, Clone, Deserialize)]
pub struct EvalQuestion {
    /// The question, as an agent would ask it.
    pub question: String,
    /// Keys of the memories that answer it.
    pub answers: Vec<String>,
    /// A label to report by (e.g. `literal`, `paraphrase`, `context`).
    #[serde(default)]
    pub kind: String,
}

/// Scores over a group of questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Questions in the group.
    pub questions: usize,
    /// Recall at each of [`CUTOFFS`], in order.
    pub recall: Vec<f64>,
    /// Mean reciprocal rank.
    pub mrr: f64,
}

impl Scores {
    /// Recall at cut-off `k` (one of [`CUTOFFS`]).
    pub fn recall_at(&self, k: usize) -> Option<f64> {
        CUTOFFS
            .iter()
            .position(|c| *c == k)
            .and_then(|i| self.recall.get(i).copied())
    }
}

/// One mode's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeReport {
    /// The mode.
    pub mode: SearchMode,
    /// Over every question.
    pub overall: Scores,
    /// By question kind.
    pub by_kind: BTreeMap<String, Scores>,
    /// Median server-side search time, in milliseconds.
    pub median_took_ms: f64,
}

/// A whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The namespace the set was loaded into.
    pub namespace: String,
    /// Memories loaded.
    pub memories: usize,
    /// One entry per mode evaluated.
    pub modes: Vec<ModeReport>,
}

impl Report {
    /// The report of `mode`, if it was evaluated.
    pub fn mode(&self, mode: SearchMode) -> Option<&ModeReport> {
        self.modes.iter().find(|m| m.mode == mode)
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} memories in namespace {}\n{:<8} {:<11} {:>4} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9}\n",
            self.memories,
            self.namespace,
            "mode",
            "questions",
            "n",
            "R@1",
            "R@5",
            "R@10",
            "R@25",
            "MRR",
            "p50 ms"
        );
        for m in &self.modes {
            let mut rows = vec![("all", &m.overall)];
            rows.extend(m.by_kind.iter().map(|(k, s)| (k.as_str(), s)));
            for (kind, s) in rows {
                out.push_str(&format!(
                    "{:<8} {:<11} {:>4} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>9.2}\n",
                    format!("{:?}", m.mode).to_lowercase(),
                    kind,
                    s.questions,
                    s.recall[0],
                    s.recall[1],
                    s.recall[2],
                    s.recall[3],
                    s.mrr,
                    m.median_took_ms
                ));
            }
        }
        out
    }
}

/// Imports the set's memories into `namespace`; returns each memory id's key.
pub async fn load(
    client: &MemoryClient,
    set: &EvalSet,
    namespace: &str,
) -> Result<HashMap<Uuid, String>> {
    let mut keys = HashMap::new();
    let mut memories = Vec::with_capacity(set.memories.len());
    for m in &set.memories {
        let mut fields = m.fields.clone();
        fields.insert("namespace".into(), Value::String(namespace.to_owned()));
        let mut memory: PortableMemory = serde_json::from_value(Value::Object(fields))
            .map_err(|e| ClientError::Input(format!("memory {}: {e}", m.key)))?;
        let id = Uuid::now_v7();
        memory.id = Some(id);
        keys.insert(id, m.key.clone());
        memories.push(memory);
    }
    // In parts, so that a slow embedder (a model on the CPU) answers each
    // import well within the client's timeout.
    for part in memories.chunks(IMPORT_PART) {
        client.import(part).await?;
    }
    Ok(keys)
}

/// Deletes the memories [`load`] imported (by id: the namespace may hold others).
pub async fn unload(client: &MemoryClient, keys: &HashMap<Uuid, String>) -> Result<()> {
    for &id in keys.keys() {
        match client.delete(id, None).await {
            Ok(()) | Err(ClientError::Api { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Search options every question is asked with (absent: the server's
/// defaults for the namespace).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tuning {
    /// Hybrid fusion.
    pub fusion: Option<Fusion>,
    /// Weighted fusion's vector share.
    pub alpha: Option<f32>,
    /// Neighbouring turns returned with each hit (they take places in the
    /// ranked list like any result).
    pub context_window: Option<ContextWindow>,
    /// Hits per session, at most.
    pub max_per_session: Option<u32>,
    /// What to do with a time the question names.
    pub query_time: Option<QueryTime>,
    /// Pseudo-relevance feedback.
    pub feedback: Option<Feedback>,
    /// BM25 parameters of the keyword side.
    pub bm25: Option<Bm25Params>,
    /// Entity-aware scoring's share of the score.
    pub entity_weight: Option<f32>,
}

/// Asks every question in each of `modes` with `tuning` and scores the answers.
pub async fn evaluate(
    client: &MemoryClient,
    set: &EvalSet,
    namespace: &str,
    keys: &HashMap<Uuid, String>,
    modes: &[SearchMode],
    tuning: &Tuning,
) -> Result<Report> {
    let depth = CUTOFFS[CUTOFFS.len() - 1];
    let mut reports = Vec::with_capacity(modes.len());
    for &mode in modes {
        let mut per_question: Vec<(&str, Vec<f64>, f64)> = Vec::new();
        let mut took = Vec::with_capacity(set.questions.len());
        for q in &set.questions {
            let found = client
                .search(&SearchRequest {
                    namespace: namespace.to_owned(),
                    query: Some(q.question.clone()),
                    top_k: Some(depth),
                    mode: Some(mode),
                    fusion: tuning.fusion,
                    alpha: tuning.alpha,
                    context_window: tuning.context_window,
                    max_per_session: tuning.max_per_session,
                    query_time: tuning.query_time,
                    feedback: tuning.feedback,
                    bm25: tuning.bm25,
                    entity_weight: tuning.entity_weight,
                    ..SearchRequest::default()
                })
                .await?;
            took.push(found.took_ms);
            let ranked: Vec<&str> = found
                .results
                .iter()
                .map(|h| keys.get(&h.memory.id).map_or("", String::as_str))
                .collect();
            let (recall, rr) = score(&ranked, &q.answers);
            per_question.push((q.kind.as_str(), recall, rr));
        }
        let overall = average(per_question.iter().map(|(_, r, m)| (r, *m)));
        let mut kinds: Vec<&str> = per_question.iter().map(|(k, _, _)| *k).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let by_kind = kinds
            .into_iter()
            .filter(|k| !k.is_empty())
            .map(|k| {
                let group = per_question
                    .iter()
                    .filter(|(kind, _, _)| *kind == k)
                    .map(|(_, r, m)| (r, *m));
                (k.to_owned(), average(group))
            })
            .collect();
        took.sort_by(f64::total_cmp);
        reports.push(ModeReport {
            mode,
            overall,
            by_kind,
            median_took_ms: took.get(took.len() / 2).copied().unwrap_or(0.0),
        });
    }
    Ok(Report {
        namespace: namespace.to_owned(),
        memories: keys.len(),
        modes: reports,
    })
}

/// Recall at each cut-off and the reciprocal rank of one ranked answer list.
fn score(ranked: &[&str], answers: &[String]) -> (Vec<f64>, f64) {
    let wanted = answers.len().max(1) as f64;
    let recall = CUTOFFS
        .iter()
        .map(|&k| {
            let top = &ranked[..k.min(ranked.len())];
            answers.iter().filter(|a| top.contains(&a.as_str())).count() as f64 / wanted
        })
        .collect();
    let rr = ranked
        .iter()
        .position(|key| answers.iter().any(|a| a == key))
        .map_or(0.0, |i| 1.0 / (i + 1) as f64);
    (recall, rr)
}

fn average<'a>(rows: impl Iterator<Item = (&'a Vec<f64>, f64)>) -> Scores {
    let mut n = 0;
    let mut recall = vec![0.0; CUTOFFS.len()];
    let mut mrr = 0.0;
    for (r, m) in rows {
        n += 1;
        for (sum, x) in recall.iter_mut().zip(r) {
            *sum += x;
        }
        mrr += m;
    }
    let d = n.max(1) as f64;
    Scores {
        questions: n,
        recall: recall.into_iter().map(|s| s / d).collect(),
        mrr: mrr / d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_and_reciprocal_rank_count_answers_by_position() {
        let answers = vec!["a".to_owned(), "b".to_owned()];
        let (recall, rr) = score(&["x", "a", "y", "z", "w", "b"], &answers);
        assert_eq!(recall, vec![0.0, 0.5, 1.0, 1.0]);
        assert_eq!(rr, 0.5);
        let (recall, rr) = score(&[], &answers);
        assert_eq!(recall, vec![0.0; 4]);
        assert_eq!(rr, 0.0);
    }

    #[test]
    fn averages_are_per_question() {
        let rows = [
            (vec![1.0, 1.0, 1.0, 1.0], 1.0),
            (vec![0.0, 0.0, 1.0, 1.0], 0.1),
        ];
        let s = average(rows.iter().map(|(r, m)| (r, *m)));
        assert_eq!(s.questions, 2);
        assert_eq!(s.recall, vec![0.5, 0.5, 1.0, 1.0]);
        assert!((s.mrr - 0.55).abs() < 1e-12);
        assert_eq!(s.recall_at(10), Some(1.0));
        assert_eq!(s.recall_at(3), None);
    }
}
