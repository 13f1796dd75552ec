//! What every HTTP embedding provider shares: a timeout per call, retries
//! with backoff on 429 / 5xx / connection failures (the retries are
//! [`crate::retry`]'s), answer checks, and the cache and batching every
//! embedder shares ([`super::batch`]). A provider only says how to phrase a
//! request and read an answer ([`Wire`]).

use std::future::Future;
use std::time::Duration;

use super::batch::Batcher;
use super::{EmbedFuture, Embedder, Purpose};
use crate::ProviderError;
use crate::retry::RetryPolicy;

/// Settings shared by HTTP providers.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSettings {
    /// Vector length the model returns (checked on every answer).
    pub dims: usize,
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

/// One provider's request and answer format.
pub trait Wire: Send + Sync + 'static {
    /// The URL requests go to (for error messages).
    fn endpoint(&self) -> &str;
    /// The request embedding `texts` (at most `batch_size`) for `purpose`.
    fn request(
        &self,
        http: &reqwest::Client,
        texts: &[String],
        purpose: Purpose,
    ) -> impl Future<Output = Result<reqwest::RequestBuilder, ProviderError>> + Send;
    /// The JSON body of a successful answer.
    type Answer: serde::de::DeserializeOwned;
    /// The answer's vectors, in input order (count, length and values are
    /// checked by the caller).
    fn vectors(
        &self,
        answer: Self::Answer,
        expected: usize,
    ) -> Result<Vec<Vec<f32>>, ProviderError>;
    /// The provider answered 401: drop cached credentials. Returns whether a
    /// retry with fresh ones may succeed (a fixed API key would not).
    fn unauthorized(&self) -> bool {
        false
    }
}

/// An embedder that calls a provider over HTTP(S).
pub struct RemoteEmbedder<W> {
    http: reqwest::Client,
    wire: W,
    settings: RemoteSettings,
    model_id: String,
    batcher: Batcher,
}

impl<W: Wire> std::fmt::Debug for RemoteEmbedder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEmbedder")
            .field("endpoint", &self.wire.endpoint())
            .field("model_id", &self.model_id)
            .finish()
    }
}

impl<W: Wire> RemoteEmbedder<W> {
    /// An embedder of model `model_id` speaking `wire`.
    pub fn new(wire: W, model_id: String, settings: RemoteSettings) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| ProviderError::Provider(format!("HTTP client: {e}")))?;
        let batcher = Batcher::new(settings.batch_size, settings.cache_entries);
        Ok(Self {
            http,
            wire,
            settings,
            model_id,
            batcher,
        })
    }

    /// One request for `texts`, with retries.
    async fn call(
        &self,
        texts: &[String],
        purpose: Purpose,
    ) -> Result<Vec<Vec<f32>>, ProviderError> {
        let policy = RetryPolicy {
            max_retries: self.settings.max_retries,
            backoff: self.settings.backoff,
        };
        let response = crate::retry::send(
            policy,
            self.wire.endpoint(),
            || self.wire.request(&self.http, texts, purpose),
            || self.wire.unauthorized(),
        )
        .await?;
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("answer cut short: {e}")))?;
        let answer = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Provider(format!("unreadable answer: {e}")))?;
        let vectors = self.wire.vectors(answer, texts.len())?;
        self.check(vectors, texts.len())
    }

    /// Refuses answers of the wrong count, length or with non-finite numbers.
    fn check(
        &self,
        vectors: Vec<Vec<f32>>,
        expected: usize,
    ) -> Result<Vec<Vec<f32>>, ProviderError> {
        if vectors.len() != expected {
            return Err(ProviderError::Provider(format!(
                "asked for {expected} embeddings, got {}",
                vectors.len()
            )));
        }
        for v in &vectors {
            if v.len() != self.settings.dims {
                return Err(ProviderError::Provider(format!(
                    "model returned {} dimensions; embedder.dims is {}",
                    v.len(),
                    self.settings.dims
                )));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(ProviderError::Provider(
                    "model returned a non-finite number".into(),
                ));
            }
        }
        Ok(vectors)
    }

    async fn embed_all(
        &self,
        texts: &[String],
        purpose: Purpose,
    ) -> Result<Vec<Vec<f32>>, ProviderError> {
        self.batcher
            .embed(texts, purpose, |chunk| async move {
                self.call(&chunk, purpose).await
            })
            .await
    }
}

impl<W: Wire> Embedder for RemoteEmbedder<W> {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dims(&self) -> usize {
        self.settings.dims
    }

    fn embed<'a>(&'a self, texts: &'a [String], purpose: Purpose) -> EmbedFuture<'a> {
        Box::pin(self.embed_all(texts, purpose))
    }
}
