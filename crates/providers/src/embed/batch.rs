//! What every embedder that calls a model shares, written once: the text →
//! vector LRU cache (per purpose), each distinct missing text embedded once,
//! and chunks of at most `batch_size` texts. A provider supplies only the call
//! that embeds one chunk.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::num::NonZeroUsize;

use lru::LruCache;
use parking_lot::Mutex;

use super::Purpose;
use crate::ProviderError;

/// Vectors by purpose and text.
type VectorCache = LruCache<(Purpose, String), Vec<f32>>;

/// Cache and chunking in front of a model call.
pub(super) struct Batcher {
    batch_size: usize,
    cache: Option<Mutex<VectorCache>>,
}

impl Batcher {
    /// Chunks of `batch_size` texts and a cache of `cache_entries` vectors (0: none).
    pub fn new(batch_size: usize, cache_entries: usize) -> Self {
        Self {
            batch_size: batch_size.max(1),
            cache: NonZeroUsize::new(cache_entries).map(|n| Mutex::new(LruCache::new(n))),
        }
    }

    /// One vector per text, in order: cached ones from the cache, the rest
    /// from `call` (one call per chunk of distinct missing texts).
    pub async fn embed<F, Fut>(
        &self,
        texts: &[String],
        purpose: Purpose,
        mut call: F,
    ) -> Result<Vec<Vec<f32>>, ProviderError>
    where
        F: FnMut(Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<Vec<f32>>, ProviderError>>,
    {
        let mut out: Vec<Option<Vec<f32>>> = match &self.cache {
            Some(cache) => {
                let mut cache = cache.lock();
                texts
                    .iter()
                    .map(|t| cache.get(&(purpose, t.clone())).cloned())
                    .collect()
            }
            None => vec![None; texts.len()],
        };
        // Each distinct missing text is asked for once.
        let mut seen = HashSet::new();
        let missing: Vec<String> = texts
            .iter()
            .zip(&out)
            .filter(|(t, v)| v.is_none() && seen.insert(t.as_str()))
            .map(|(t, _)| t.clone())
            .collect();
        let mut fetched: HashMap<String, Vec<f32>> = HashMap::with_capacity(missing.len());
        for chunk in missing.chunks(self.batch_size) {
            let vectors = call(chunk.to_vec()).await?;
            if vectors.len() != chunk.len() {
                return Err(ProviderError::Provider(format!(
                    "asked for {} embeddings, got {}",
                    chunk.len(),
                    vectors.len()
                )));
            }
            fetched.extend(chunk.iter().cloned().zip(vectors));
        }
        if let Some(cache) = &self.cache {
            let mut cache = cache.lock();
            for (t, v) in &fetched {
                cache.put((purpose, t.clone()), v.clone());
            }
        }
        for (t, slot) in texts.iter().zip(out.iter_mut()) {
            if slot.is_none() {
                *slot = fetched.get(t).cloned();
            }
        }
        out.into_iter()
            .map(|v| v.ok_or_else(|| ProviderError::Provider("a text was not embedded".into())))
            .collect()
    }
}
