//! OpenAI-compatible embeddings: `POST {base_url}/embeddings`.
//!
//! The same wire format is served by OpenAI, Ollama (`/v1`), Hugging Face TEI,
//! vLLM and llama.cpp's server. Requests are batched, bounded by a timeout,
//! retried with exponential backoff (and `Retry-After`) on 429, 5xx and
//! connection failures, and answers are cached by text.

use std::num::NonZeroUsize;
use std::time::Duration;

use lru::LruCache;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{EmbedError, EmbedFuture, Embedder};

/// Settings of an OpenAI-compatible provider.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiSettings {
    /// Base URL up to and including the version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name sent in each request.
    pub model: String,
    /// Vector length the model returns (checked on every answer).
    pub dims: usize,
    /// Bearer token, if the provider needs one.
    pub api_key: Option<String>,
    /// Send `dimensions` in the request (OpenAI `text-embedding-3-*` can shorten vectors).
    pub send_dimensions: bool,
    /// Longest wait for one HTTP call.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubles per retry, capped at 8 s.
    pub backoff: Duration,
    /// Texts per request.
    pub batch_size: usize,
    /// Texts whose vectors are kept (0 disables the cache).
    pub cache_entries: usize,
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
    encoding_format: &'static str,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct Datum {
    index: usize,
    embedding: Vec<f32>,
}

/// An OpenAI-compatible embedding provider.
pub struct OpenAiEmbedder {
    http: reqwest::Client,
    settings: OpenAiSettings,
    model_id: String,
    cache: Option<Mutex<LruCache<String, Vec<f32>>>>,
}

impl std::fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("base_url", &self.settings.base_url)
            .field("model", &self.settings.model)
            .finish()
    }
}

impl OpenAiEmbedder {
    /// A provider with `settings`.
    pub fn new(settings: OpenAiSettings) -> Result<Self, EmbedError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| EmbedError::Provider(format!("HTTP client: {e}")))?;
        let cache = NonZeroUsize::new(settings.cache_entries).map(|n| Mutex::new(LruCache::new(n)));
        Ok(Self {
            http,
            model_id: format!("openai:{}:{}", settings.model, settings.dims),
            settings,
            cache,
        })
    }

    /// One request for `texts` (at most `batch_size`), with retries.
    async fn call(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let s = &self.settings;
        let url = format!("{}/embeddings", s.base_url.trim_end_matches('/'));
        let body = Request {
            model: &s.model,
            input: texts,
            dimensions: s.send_dimensions.then_some(s.dims),
            encoding_format: "float",
        };
        let mut attempt = 0;
        loop {
            let mut req = self.http.post(&url).json(&body);
            if let Some(k) = &s.api_key {
                req = req.bearer_auth(k);
            }
            let (retryable, wait, error) = match req.send().await {
                Ok(r) if r.status().is_success() => {
                    let parsed: Response = r
                        .json()
                        .await
                        .map_err(|e| EmbedError::Provider(format!("unreadable answer: {e}")))?;
                    return self.order(parsed, texts.len());
                }
                Ok(r) => {
                    let status = r.status();
                    let retry_after = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = r.text().await.unwrap_or_default();
                    let message =
                        format!("{status}: {}", text.chars().take(300).collect::<String>());
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    (retryable, retry_after, message)
                }
                Err(e) => (true, None, e.to_string()),
            };
            if !retryable {
                return Err(EmbedError::Provider(error));
            }
            if attempt >= s.max_retries {
                return Err(EmbedError::Unavailable(format!(
                    "{url} failed {} times, last: {error}",
                    attempt + 1
                )));
            }
            let backoff = s
                .backoff
                .saturating_mul(2u32.saturating_pow(attempt))
                .min(Duration::from_secs(8));
            // Up to 25% jitter so retrying instances do not stampede together.
            let jitter = backoff.mul_f64(rand::random::<f64>() * 0.25);
            tokio::time::sleep(
                wait.unwrap_or(backoff + jitter)
                    .min(Duration::from_secs(30)),
            )
            .await;
            attempt += 1;
        }
    }

    /// Puts the answer in input order and checks it.
    fn order(&self, r: Response, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        if r.data.len() != expected {
            return Err(EmbedError::Provider(format!(
                "asked for {expected} embeddings, got {}",
                r.data.len()
            )));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; expected];
        for d in r.data {
            if d.embedding.len() != self.settings.dims {
                return Err(EmbedError::Provider(format!(
                    "model returned {} dimensions; embedder.dims is {}",
                    d.embedding.len(),
                    self.settings.dims
                )));
            }
            if d.embedding.iter().any(|x| !x.is_finite()) {
                return Err(EmbedError::Provider(
                    "model returned a non-finite number".into(),
                ));
            }
            match out.get_mut(d.index) {
                Some(slot @ None) => *slot = Some(d.embedding),
                _ => {
                    return Err(EmbedError::Provider(format!(
                        "answer has a bad or repeated index {}",
                        d.index
                    )));
                }
            }
        }
        out.into_iter()
            .map(|v| v.ok_or_else(|| EmbedError::Provider("answer misses an index".into())))
            .collect()
    }

    async fn embed_all(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out: Vec<Option<Vec<f32>>> = match &self.cache {
            Some(cache) => {
                let mut cache = cache.lock();
                texts.iter().map(|t| cache.get(t).cloned()).collect()
            }
            None => vec![None; texts.len()],
        };
        // Each distinct missing text is asked for once.
        let mut missing: Vec<String> = Vec::new();
        for (t, v) in texts.iter().zip(&out) {
            if v.is_none() && !missing.contains(t) {
                missing.push(t.clone());
            }
        }
        let mut fetched: Vec<(String, Vec<f32>)> = Vec::with_capacity(missing.len());
        for chunk in missing.chunks(self.settings.batch_size.max(1)) {
            let vectors = self.call(chunk).await?;
            fetched.extend(chunk.iter().cloned().zip(vectors));
        }
        if let Some(cache) = &self.cache {
            let mut cache = cache.lock();
            for (t, v) in &fetched {
                cache.put(t.clone(), v.clone());
            }
        }
        for (t, slot) in texts.iter().zip(out.iter_mut()) {
            if slot.is_none() {
                *slot = fetched.iter().find(|(f, _)| f == t).map(|(_, v)| v.clone());
            }
        }
        out.into_iter()
            .map(|v| v.ok_or_else(|| EmbedError::Provider("a text was not embedded".into())))
            .collect()
    }
}

impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dims(&self) -> usize {
        self.settings.dims
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(self.embed_all(texts))
    }
}
