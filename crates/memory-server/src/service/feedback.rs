//! Pseudo-relevance feedback (`feedback` in a search): take the first pass's
//! best results as if the caller had marked them relevant, widen the query
//! with them, and search again. For questions whose words reach only part
//! of the evidence ("what did Ann's sister give her?" finds the turn that
//! names the sister; the sister's name then finds the present).
//!
//! - keyword side: the words the feedback memories share most that the
//!   query lacks are added to it (the analyzer drops stop words and stems
//!   them as for any query);
//! - vector side: Rocchio's rule, the query vector moved towards the mean
//!   of the feedback memories' vectors by `weight`.

use std::collections::{BTreeMap, HashSet};

/// Words of at least this many characters count as expansion terms (shorter
/// ones are mostly function words and inflections).
const MIN_TERM_CHARS: usize = 3;

/// The `n` words most frequent across `texts` that `query` does not have,
/// most frequent first (ties alphabetical), counted once per text.
pub(super) fn expansion_terms(texts: &[&str], query: &str, n: usize) -> Vec<String> {
    let words = |t: &str| -> HashSet<String> {
        t.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= MIN_TERM_CHARS)
            .map(str::to_owned)
            .collect()
    };
    let asked = words(query);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in texts {
        for w in words(t) {
            if !asked.contains(&w) {
                *counts.entry(w).or_default() += 1;
            }
        }
    }
    // Only words more than one feedback memory shares: one memory's own
    // words would pull the search towards that memory alone.
    let mut ranked: Vec<(String, usize)> = counts
        .into_iter()
        .filter(|(_, c)| *c > 1 || texts.len() == 1)
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.into_iter().take(n).map(|(w, _)| w).collect()
}

/// `query` moved towards the mean of `feedback` by `weight` (both taken at
/// unit length), at unit length; `query` itself when there is no feedback.
pub(super) fn rocchio(query: &[f32], feedback: &[Vec<f32>], weight: f32) -> Vec<f32> {
    let unit = |v: &[f32]| -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            v.iter().map(|x| x / n).collect()
        } else {
            v.to_vec()
        }
    };
    let usable: Vec<Vec<f32>> = feedback
        .iter()
        .filter(|v| v.len() == query.len())
        .map(|v| unit(v))
        .collect();
    if usable.is_empty() {
        return query.to_vec();
    }
    let q = unit(query);
    let count = usable.len() as f32;
    let moved: Vec<f32> = (0..q.len())
        .map(|i| {
            let mean = usable.iter().map(|v| v[i]).sum::<f32>() / count;
            (1.0 - weight) * q[i] + weight * mean
        })
        .collect();
    unit(&moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_new_words_expand_the_query() {
        let texts = [
            "Ann: My sister Clara is visiting from Porto",
            "Ann: Clara gave me a telescope for my birthday",
            "Bo: the telescope arrived",
        ];
        let terms = expansion_terms(&texts, "What did Ann's sister give her?", 3);
        // "clara" and "telescope" appear in two texts; "ann" and "sister" are asked.
        assert_eq!(terms, vec!["clara".to_owned(), "telescope".to_owned()]);
        assert!(expansion_terms(&[], "anything", 3).is_empty());
    }

    #[test]
    fn rocchio_moves_the_query_towards_the_feedback_and_keeps_unit_length() {
        let q = [1.0, 0.0];
        let moved = rocchio(&q, &[vec![0.0, 2.0]], 0.5);
        let norm = moved.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6);
        assert!((moved[0] - moved[1]).abs() < 1e-6, "half way: {moved:?}");
        assert_eq!(rocchio(&q, &[], 0.5), q.to_vec());
        // A vector of another length (a foreign model's) is ignored.
        assert_eq!(rocchio(&q, &[vec![1.0, 2.0, 3.0]], 0.5), q.to_vec());
    }
}
