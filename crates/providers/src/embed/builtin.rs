//! The built-in offline embedder: feature hashing of words and character trigrams.
//!
//! What it captures: shared words (case-insensitive, Unicode-aware) and shared
//! spelling fragments, so "deploy", "deploys" and "deployment" land close, and
//! names, ids and numbers match literally. What it does not capture: meaning.
//! Synonyms ("car" / "automobile"), paraphrases and other languages' words for
//! the same thing are unrelated to it. It needs no model files and gives the
//! same vector for the same text on every machine, which makes it right for
//! laptops, tests and load benches; use a real model provider for semantic recall.

use super::{EmbedFuture, Embedder, Purpose};

/// Hashing embedder; see the module docs for what it does and does not capture.
#[derive(Debug, Clone)]
pub struct BuiltinEmbedder {
    dims: usize,
    model_id: String,
}

impl BuiltinEmbedder {
    /// An embedder producing `dims`-dimensional unit vectors.
    pub fn new(dims: usize) -> Self {
        Self {
            dims: dims.max(1),
            model_id: format!("builtin-hash-v1-{dims}"),
        }
    }

    /// The vector of one text (unit length; never all zeros for non-empty text).
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dims];
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let mut add = |feature: &[u8], weight: f32| {
            let h = fnv1a(feature);
            // The low bits pick the slot, one high bit the sign (keeps collisions unbiased).
            let slot = (h % self.dims as u64) as usize;
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            if let Some(x) = v.get_mut(slot) {
                *x += sign * weight;
            }
        };
        for w in &words {
            let mut feature = Vec::with_capacity(w.len() + 2);
            feature.extend_from_slice(b"w:");
            feature.extend_from_slice(w.as_bytes());
            add(&feature, 1.0);
            let chars: Vec<char> = format!(" {w} ").chars().collect();
            for tri in chars.windows(3) {
                let s: String = tri.iter().collect();
                add(s.as_bytes(), 0.35);
            }
        }
        if words.is_empty() {
            // Punctuation or symbols only: their characters are the content.
            let chars: Vec<char> = lower.trim().chars().collect();
            for c in &chars {
                let mut buf = [0u8; 4];
                add(c.encode_utf8(&mut buf).as_bytes(), 1.0);
            }
        }
        // Sublinear term weighting: a word repeated ten times is not ten times as important.
        for x in &mut v {
            *x = x.signum() * (1.0 + x.abs()).ln();
        }
        let norm = v
            .iter()
            .map(|x| f64::from(*x) * f64::from(*x))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            for x in &mut v {
                *x = (f64::from(*x) / norm) as f32;
            }
        }
        v
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Embedder for BuiltinEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn captures(&self) -> &'static str {
        "shared words and word fragments, not meaning: \"hot beverage\" does not find \"tea\"; \
         for semantic recall set embedder.provider to openai or vertex (docs/api.md, Embeddings)"
    }

    fn semantic(&self) -> bool {
        false
    }

    fn dims(&self) -> usize {
        self.dims
    }

    /// Queries and documents embed alike.
    fn embed<'a>(&'a self, texts: &'a [String], _purpose: Purpose) -> EmbedFuture<'a> {
        let out = texts.iter().map(|t| self.vector(t)).collect();
        Box::pin(async move { Ok(out) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn deterministic_unit_vectors_that_reflect_shared_words() {
        let e = BuiltinEmbedder::new(384);
        let a = e.vector("The deploy to staging failed at 14:02");
        assert_eq!(a, e.vector("The deploy to staging failed at 14:02"));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        let near = e.vector("staging deployment failed");
        let far = e.vector("Alice prefers green tea in the morning");
        assert!(cos(&a, &near) > cos(&a, &far) + 0.2);
        // Case and punctuation do not matter for words.
        assert!(cos(&e.vector("Hello, World!"), &e.vector("hello world")) > 0.99);
    }

    #[test]
    fn odd_text_still_has_a_direction() {
        let e = BuiltinEmbedder::new(64);
        for t in ["?", "\"\"", "&&||", "a", "🙂", "的", " \u{200b} x"] {
            let v = e.vector(t);
            assert!(v.iter().any(|x| *x != 0.0), "{t:?} embeds to zero");
            assert!(v.iter().all(|x| x.is_finite()));
        }
    }
}
