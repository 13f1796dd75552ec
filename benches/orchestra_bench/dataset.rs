//! The memories a run stores and the queries it sends: generated texts, an
//! NDJSON file of memories, or an ANN dataset directory whose vectors are
//! sent as they are and whose exact neighbours grade each vector search.

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use crate::ann_dataset;
use crate::scenario::{DatasetKind, DatasetSpec};
use crate::text;

/// Filter groups: `metadata.group` takes this many values, so a filtered
/// search matches about one memory in this many.
pub const GROUPS: u32 = 10;

/// A loaded dataset.
pub enum Dataset {
    /// Synthetic texts.
    Generated,
    /// Memory objects read from a file (each has `text`).
    Ndjson(Vec<Map<String, Value>>),
    /// Vectors, queries and exact neighbours.
    Ann(ann_dataset::Dataset),
}

impl Dataset {
    /// Reads what `spec` names; an error names the file and the problem.
    pub fn load(spec: &DatasetSpec) -> Result<Self, String> {
        let path = || spec.path.clone().ok_or("`dataset.path` is not set");
        Ok(match spec.kind {
            DatasetKind::Generated => Self::Generated,
            DatasetKind::Ndjson => {
                let p = path()?;
                let text =
                    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                let mut lines = Vec::new();
                for (i, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let bad = |why: &str| format!("{}: line {}: {why}", p.display(), i + 1);
                    let v: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
                    let Value::Object(mut m) = v else {
                        return Err(bad("not a JSON object"));
                    };
                    if !m.get("text").is_some_and(Value::is_string) {
                        return Err(bad("needs a `text` string"));
                    }
                    // Where the run puts it, not where it came from.
                    m.remove("namespace");
                    m.remove("id");
                    lines.push(m);
                }
                if lines.is_empty() {
                    return Err(format!("{}: no memories", p.display()));
                }
                Self::Ndjson(lines)
            }
            DatasetKind::Ann => {
                let p = path()?;
                let d = ann_dataset::load(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                if d.meta.gt_k < spec.top_k {
                    return Err(format!(
                        "{}: ground truth has {} neighbours per query, fewer than `dataset.top_k` {}",
                        p.display(),
                        d.meta.gt_k,
                        spec.top_k
                    ));
                }
                if d.meta.n_base == 0 || d.meta.n_queries == 0 {
                    return Err(format!("{}: no vectors or no queries", p.display()));
                }
                Self::Ann(d)
            }
        })
    }

    /// How many memories the preload stores per namespace: an ANN dataset's
    /// whole base (the recall check needs it), else `asked`.
    pub fn preload_count(&self, asked: usize) -> usize {
        match self {
            Self::Ann(d) => d.meta.n_base,
            _ => asked,
        }
    }

    /// The `i`-th memory to store (without its namespace).
    pub fn memory(&self, i: usize, rng: &mut StdRng) -> Value {
        let group = (i as u32) % GROUPS;
        match self {
            Self::Generated => {
                json!({"text": self.memory_text(i, rng), "metadata": {"group": group}})
            }
            Self::Ndjson(lines) => {
                let mut m = lines[i % lines.len()].clone();
                let meta = m.entry("metadata").or_insert_with(|| json!({}));
                if let Value::Object(meta) = meta {
                    meta.entry("group").or_insert(json!(group));
                }
                Value::Object(m)
            }
            Self::Ann(d) => {
                let i = i % d.meta.n_base;
                let v = &d.base[i * d.meta.dim..(i + 1) * d.meta.dim];
                json!({"text": self.memory_text(i, rng), "vector": v, "metadata": {"group": group, "i": i}})
            }
        }
    }

    /// The text of the `i`-th memory alone (what a store during the run
    /// sends), without building the rest of it.
    pub fn memory_text(&self, i: usize, rng: &mut StdRng) -> String {
        match self {
            Self::Generated => text::memory(rng),
            Self::Ndjson(lines) => lines[i % lines.len()]
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            Self::Ann(d) => format!("vector {}", i % d.meta.n_base),
        }
    }

    /// A text to search for or to send.
    pub fn query_text(&self, rng: &mut StdRng) -> String {
        match self {
            Self::Ndjson(lines) => {
                let m = &lines[rng.random_range(0..lines.len())];
                let t = m.get("text").and_then(Value::as_str).unwrap_or("");
                // A few of a stored memory's words, as a user would ask.
                let words: Vec<&str> = t.split_whitespace().collect();
                if words.is_empty() {
                    return text::query(rng);
                }
                let n = words.len().min(rng.random_range(2..6));
                let start = rng.random_range(0..=words.len() - n);
                words[start..start + n].join(" ")
            }
            _ => text::query(rng),
        }
    }

    /// Queries a vector search may pick (0 without vectors).
    pub fn n_queries(&self) -> usize {
        match self {
            Self::Ann(d) => d.meta.n_queries,
            _ => 0,
        }
    }

    /// The `q`-th query vector.
    pub fn query_vector(&self, q: usize) -> &[f32] {
        match self {
            Self::Ann(d) => {
                let q = q % d.meta.n_queries;
                &d.queries[q * d.meta.dim..(q + 1) * d.meta.dim]
            }
            _ => &[],
        }
    }

    /// Recall@k of the dataset indices a search returned for query `q`.
    pub fn recall(&self, q: usize, returned: &[u64], k: usize) -> Option<f64> {
        let Self::Ann(d) = self else { return None };
        let truth = d.gt.get(q % d.meta.n_queries)?;
        let k = k.min(truth.len());
        if k == 0 {
            return None;
        }
        let hits = truth[..k]
            .iter()
            .filter(|t| returned.iter().take(k).any(|r| *r == u64::from(**t)))
            .count();
        Some(hits as f64 / k as f64)
    }
}

/// The dataset indices (`metadata.i`) of a search answer's results.
pub fn returned_indices(results: &Value) -> Vec<u64> {
    results
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["memory"]["metadata"]["i"].as_u64())
        .collect()
}
