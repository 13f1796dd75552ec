//! How text becomes vectors, as configured (`[embedder]`), and the factory
//! that builds the [`Embedder`] a configuration names.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    BuiltinEmbedder, Embedder, LocalEmbedder, LocalSettings, OpenAiEmbedder, OpenAiSettings,
    RemoteSettings, VertexEmbedder, VertexSettings,
};
use crate::ProviderError;
use crate::google::AdcTokenSource;

/// How text becomes vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedderConfig {
    /// `builtin` (offline, no model files), `local` (all-MiniLM-L6-v2
    /// in-process, from `model_dir`), `openai` (any OpenAI-compatible server)
    /// or `vertex` (Vertex AI).
    pub provider: String,
    /// Vector dimension (the built-in embedder's size, or what the model returns).
    pub dims: usize,
    /// `openai`: base URL including the version, e.g. `http://127.0.0.1:11434/v1`;
    /// `vertex`: endpoint root, empty for `https://<location>-aiplatform.googleapis.com`.
    pub base_url: String,
    /// Model name (`openai`, `vertex`).
    pub model: String,
    /// `vertex`: Google Cloud project id.
    pub project: String,
    /// `vertex`: region, e.g. `us-central1`.
    pub location: String,
    /// `vertex`: Application Default Credentials file (service-account key or
    /// gcloud user credentials). When unset: `GOOGLE_APPLICATION_CREDENTIALS`,
    /// then gcloud's well-known file, then the metadata server.
    pub credentials_file: Option<PathBuf>,
    /// `vertex`: metadata server root (`GCE_METADATA_HOST` overrides the host).
    pub metadata_url: String,
    /// `openai`: bearer token (set it through `ORCHESTRA__EMBEDDER__API_KEY`).
    pub api_key: Option<String>,
    /// `openai`: send `dimensions` (OpenAI `text-embedding-3-*` only).
    pub send_dimensions: bool,
    /// Timeout of one provider call, in milliseconds.
    pub timeout_ms: u64,
    /// Retries after the first attempt (429, 5xx, connection errors).
    pub max_retries: u32,
    /// First backoff in milliseconds (doubles per retry).
    pub backoff_ms: u64,
    /// Texts per request (`gemini-embedding-*` on Vertex takes one).
    pub batch_size: usize,
    /// Texts whose vectors are cached (0 = no cache).
    pub cache_entries: usize,
    /// `local`: directory of the model files (`memory-server models fetch minilm` fills it).
    pub model_dir: PathBuf,
    /// `local`: inference threads (0 = one per core).
    pub threads: usize,
}

impl Default for EmbedderConfig {
    fn default() -> Self {
        Self {
            provider: "builtin".into(),
            dims: 384,
            base_url: String::new(),
            model: String::new(),
            project: String::new(),
            location: "us-central1".into(),
            credentials_file: None,
            metadata_url: "http://metadata.google.internal".into(),
            api_key: None,
            send_dimensions: false,
            timeout_ms: 10_000,
            max_retries: 4,
            backoff_ms: 200,
            batch_size: 96,
            cache_entries: 10_000,
            model_dir: PathBuf::from("models/all-MiniLM-L6-v2"),
            threads: 0,
        }
    }
}

impl EmbedderConfig {
    /// Honours Google's standard variables the way its client libraries do:
    /// `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's well-known credentials file
    /// (under `CLOUDSDK_CONFIG` or `~/.config/gcloud`) and `GCE_METADATA_HOST`.
    pub fn apply_google_environment(&mut self) {
        crate::google::resolve_environment(&mut self.credentials_file, &mut self.metadata_url);
    }
}

impl EmbedderConfig {
    /// Refuses a provider that is unknown or misses what it needs; the
    /// message names the setting (`embedder.<key>`).
    pub fn check(&self) -> Result<(), String> {
        let http = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        match self.provider.as_str() {
            "builtin" => {}
            "local" => {
                if self.dims != super::local::MINILM_DIMS {
                    return Err(format!(
                        "embedder.dims must be {} for provider `local` (all-MiniLM-L6-v2)",
                        super::local::MINILM_DIMS
                    ));
                }
            }
            "openai" => {
                if !http(&self.base_url) {
                    return Err(
                        "embedder.base_url must be an http(s) URL for provider `openai`".into(),
                    );
                }
                if self.model.is_empty() {
                    return Err("embedder.model is required for provider `openai`".into());
                }
            }
            "vertex" => {
                for (name, value) in [
                    ("project", &self.project),
                    ("location", &self.location),
                    ("model", &self.model),
                ] {
                    if value.is_empty() {
                        return Err(format!("embedder.{name} is required for provider `vertex`"));
                    }
                }
                if !(self.base_url.is_empty() || http(&self.base_url)) {
                    return Err(
                        "embedder.base_url must be empty or an http(s) URL for provider `vertex`"
                            .into(),
                    );
                }
            }
            other => {
                return Err(format!(
                    "embedder.provider `{other}` is not available; use `builtin`, `local`, `openai` or `vertex`"
                ));
            }
        }
        Ok(())
    }
}

/// The embedder `config` names (checked with [`EmbedderConfig::check`] first).
pub fn from_config(config: &EmbedderConfig) -> Result<Arc<dyn Embedder>, ProviderError> {
    let e = config;
    let remote = RemoteSettings {
        dims: e.dims,
        timeout: Duration::from_millis(e.timeout_ms),
        max_retries: e.max_retries,
        backoff: Duration::from_millis(e.backoff_ms),
        batch_size: e.batch_size,
        cache_entries: e.cache_entries,
    };
    Ok(match e.provider.as_str() {
        "local" => {
            let embedder = LocalEmbedder::load(&LocalSettings {
                model_dir: e.model_dir.clone(),
                threads: e.threads,
                batch_size: e.batch_size,
                cache_entries: e.cache_entries,
            })?;
            tracing::info!(?embedder, dir = %e.model_dir.display(), "local embedder loaded");
            Arc::new(embedder)
        }
        "openai" => Arc::new(OpenAiEmbedder::from_settings(OpenAiSettings {
            base_url: e.base_url.clone(),
            model: e.model.clone(),
            api_key: e.api_key.clone().filter(|k| !k.is_empty()),
            send_dimensions: e.send_dimensions,
            remote,
        })?),
        "vertex" => {
            let tokens = AdcTokenSource::new(
                e.credentials_file.as_deref(),
                &e.metadata_url,
                Duration::from_millis(e.timeout_ms),
            )?;
            tracing::info!(credentials = ?tokens, "Vertex AI embeddings");
            let mut remote = remote;
            // Gemini embedding models take one text per request.
            if e.model.starts_with("gemini-embedding") {
                remote.batch_size = 1;
            }
            Arc::new(VertexEmbedder::from_settings(
                VertexSettings {
                    base_url: e.base_url.clone(),
                    project: e.project.clone(),
                    location: e.location.clone(),
                    model: e.model.clone(),
                    remote,
                },
                Arc::new(tokens),
            )?)
        }
        _ => Arc::new(BuiltinEmbedder::new(e.dims)),
    })
}
