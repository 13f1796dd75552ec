//! OpenAI-compatible embeddings: `POST {base_url}/embeddings`.
//!
//! The same wire format is served by OpenAI, Ollama (`/v1`), Hugging Face TEI,
//! vLLM and llama.cpp's server. Batching, retries and the cache are
//! [`RemoteEmbedder`]'s.

use serde::{Deserialize, Serialize};

use super::Purpose;
use super::remote::{RemoteEmbedder, RemoteSettings, Wire};
use crate::ProviderError;

/// Settings of an OpenAI-compatible provider.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiSettings {
    /// Base URL up to and including the version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name sent in each request.
    pub model: String,
    /// Bearer token, if the provider needs one.
    pub api_key: Option<String>,
    /// Send `dimensions` in the request (OpenAI `text-embedding-3-*` can shorten vectors).
    pub send_dimensions: bool,
    /// Batching, timeout, retries and cache.
    pub remote: RemoteSettings,
}

/// An OpenAI-compatible embedding provider.
pub type OpenAiEmbedder = RemoteEmbedder<OpenAiWire>;

impl OpenAiEmbedder {
    /// A provider with `settings`; its model id is `openai:<model>:<dims>`.
    pub fn from_settings(settings: OpenAiSettings) -> Result<Self, ProviderError> {
        let dims = settings.remote.dims;
        let model_id = format!("openai:{}:{dims}", settings.model);
        let wire = OpenAiWire {
            url: format!("{}/embeddings", settings.base_url.trim_end_matches('/')),
            model: settings.model,
            api_key: settings.api_key,
            dimensions: settings.send_dimensions.then_some(dims),
        };
        RemoteEmbedder::new(wire, model_id, settings.remote)
    }
}

/// The OpenAI request and answer format.
pub struct OpenAiWire {
    url: String,
    model: String,
    api_key: Option<String>,
    dimensions: Option<usize>,
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
    encoding_format: &'static str,
}

/// An `/embeddings` answer.
#[derive(Deserialize)]
pub struct Response {
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct Datum {
    index: usize,
    embedding: Vec<f32>,
}

impl Wire for OpenAiWire {
    fn endpoint(&self) -> &str {
        &self.url
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        texts: &[String],
        // The format has no query / document distinction.
        _purpose: Purpose,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let body = Request {
            model: &self.model,
            input: texts,
            dimensions: self.dimensions,
            encoding_format: "float",
        };
        let mut req = http.post(&self.url).json(&body);
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        Ok(req)
    }

    type Answer = Response;

    /// Puts the answer's items in input order by their `index`.
    fn vectors(&self, r: Response, expected: usize) -> Result<Vec<Vec<f32>>, ProviderError> {
        if r.data.len() != expected {
            return Err(ProviderError::Provider(format!(
                "asked for {expected} embeddings, got {}",
                r.data.len()
            )));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; expected];
        for d in r.data {
            match out.get_mut(d.index) {
                Some(slot @ None) => *slot = Some(d.embedding),
                _ => {
                    return Err(ProviderError::Provider(format!(
                        "answer has a bad or repeated index {}",
                        d.index
                    )));
                }
            }
        }
        out.into_iter()
            .map(|v| v.ok_or_else(|| ProviderError::Provider("answer misses an index".into())))
            .collect()
    }
}
