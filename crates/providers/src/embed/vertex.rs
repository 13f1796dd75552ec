//! Vertex AI text embeddings (`text-embedding-005`,
//! `text-multilingual-embedding-002`, `gemini-embedding-001`) through the
//! `predict` method:
//! `POST {base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:predict`.
//!
//! Memories are embedded as `RETRIEVAL_DOCUMENT` and search queries as
//! `RETRIEVAL_QUERY`, the asymmetric pair these models are trained for.
//! Batching, retries and the cache are [`RemoteEmbedder`]'s; the bearer token
//! comes from a [`TokenSource`] (Application Default Credentials in the server).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Purpose;
use super::remote::{RemoteEmbedder, RemoteSettings, Wire};
use crate::ProviderError;
use crate::google::TokenSource;

/// Settings of the Vertex AI provider.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexSettings {
    /// Endpoint root; empty for `https://{location}-aiplatform.googleapis.com`.
    pub base_url: String,
    /// Google Cloud project id.
    pub project: String,
    /// Region, e.g. `us-central1` (or `global`).
    pub location: String,
    /// Model, e.g. `text-embedding-005`.
    pub model: String,
    /// Batching, timeout, retries and cache; `dims` is sent as `outputDimensionality`.
    pub remote: RemoteSettings,
}

/// The Vertex AI embedding provider.
pub type VertexEmbedder = RemoteEmbedder<VertexWire>;

impl VertexEmbedder {
    /// A provider with `settings` whose requests carry tokens from `tokens`;
    /// its model id is `vertex:<model>:<dims>`.
    pub fn from_settings(
        settings: VertexSettings,
        tokens: Arc<dyn TokenSource>,
    ) -> Result<Self, ProviderError> {
        let base = if settings.base_url.is_empty() {
            match settings.location.as_str() {
                "global" => "https://aiplatform.googleapis.com".to_owned(),
                region => format!("https://{region}-aiplatform.googleapis.com"),
            }
        } else {
            settings.base_url.trim_end_matches('/').to_owned()
        };
        let url = format!(
            "{base}/v1/projects/{}/locations/{}/publishers/google/models/{}:predict",
            settings.project, settings.location, settings.model
        );
        let dims = settings.remote.dims;
        let model_id = format!("vertex:{}:{dims}", settings.model);
        let wire = VertexWire { url, tokens, dims };
        RemoteEmbedder::new(wire, model_id, settings.remote)
    }
}

/// The Vertex AI `predict` request and answer format.
pub struct VertexWire {
    url: String,
    tokens: Arc<dyn TokenSource>,
    dims: usize,
}

#[derive(Serialize)]
struct Request<'a> {
    instances: Vec<Instance<'a>>,
    parameters: Parameters,
}

#[derive(Serialize)]
struct Instance<'a> {
    content: &'a str,
    task_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Parameters {
    output_dimensionality: usize,
    /// Long memories are cut to the model's input limit rather than refused.
    auto_truncate: bool,
}

/// A `predict` answer.
#[derive(Deserialize)]
pub struct Response {
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    embeddings: Embedding,
}

#[derive(Deserialize)]
struct Embedding {
    values: Vec<f32>,
}

impl Wire for VertexWire {
    fn endpoint(&self) -> &str {
        &self.url
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        texts: &[String],
        purpose: Purpose,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let task_type = match purpose {
            Purpose::Document => "RETRIEVAL_DOCUMENT",
            Purpose::Query => "RETRIEVAL_QUERY",
        };
        let body = Request {
            instances: texts
                .iter()
                .map(|t| Instance {
                    content: t,
                    task_type,
                })
                .collect(),
            parameters: Parameters {
                output_dimensionality: self.dims,
                auto_truncate: true,
            },
        };
        let token = self.tokens.token().await?;
        Ok(http.post(&self.url).bearer_auth(token).json(&body))
    }

    fn unauthorized(&self) -> bool {
        self.tokens.invalidate()
    }

    type Answer = Response;

    /// Predictions come back in instance order.
    fn vectors(&self, r: Response, _expected: usize) -> Result<Vec<Vec<f32>>, ProviderError> {
        Ok(r.predictions
            .into_iter()
            .map(|p| p.embeddings.values)
            .collect())
    }
}
