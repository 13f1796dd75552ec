//! How text becomes vectors, as configured (`[embedder]`), and the factory
//! that builds the [`Embedder`] a configuration names.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::local::{MINILM, MINILM_DIMS};
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
    /// `auto` (`local` when `model_dir` holds the model, else `builtin`;
    /// see [`EmbedderConfig::resolve`]), `builtin` (offline, no model files),
    /// `local` (all-MiniLM-L6-v2 in-process, from `model_dir`), `openai` (any
    /// OpenAI-compatible server) or `vertex` (Vertex AI).
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
            provider: "auto".into(),
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
            "auto" | "builtin" => {}
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
                    "embedder.provider `{other}` is not available; use `auto`, `builtin`, `local`, `openai` or `vertex`"
                ));
            }
        }
        Ok(())
    }
}

/// What `provider = "auto"` settled on, and why (for the start's log).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The configuration with a concrete provider.
    pub config: EmbedderConfig,
    /// Why that provider, in words.
    pub reason: String,
}

impl EmbedderConfig {
    /// Whether `model_dir` holds every file of the local model (their
    /// SHA-256 is checked when the model loads).
    pub fn local_model_present(&self) -> bool {
        MINILM
            .files
            .iter()
            .all(|(name, _)| self.model_dir.join(name).is_file())
    }

    /// Settles `auto` for a store whose namespaces are bound to the models
    /// `bound` (their ids); any other provider is kept as configured.
    ///
    /// A store keeps the model it was written with, so a model directory
    /// appearing beside existing data changes nothing: `auto` is `local`
    /// for a store with no bound namespace when `model_dir` holds the model,
    /// `builtin` when it does not, and for a store bound to one of the two,
    /// that one. A store bound to the local model whose files are gone, or
    /// bound to anything else, is an error that says what to do.
    pub fn resolve(&self, bound: &BTreeSet<String>) -> Result<Resolved, String> {
        let settle = |provider: &str, reason: String| {
            let mut config = self.clone();
            config.provider = provider.to_owned();
            Ok(Resolved { config, reason })
        };
        if self.provider != "auto" {
            return settle(&self.provider, "configured".into());
        }
        let dir = self.model_dir.display();
        let local_usable = self.dims == MINILM_DIMS && self.local_model_present();
        let builtin_id = BuiltinEmbedder::new(self.dims).model_id().to_owned();
        let fetch = format!("`memory-server models fetch minilm --dir {dir}`");
        match bound.iter().collect::<Vec<_>>().as_slice() {
            [] if local_usable => settle(
                "local",
                format!("{dir} holds all-MiniLM-L6-v2 and no namespace is bound to a model yet"),
            ),
            [] => settle(
                "builtin",
                format!("{dir} holds no model ({fetch} puts all-MiniLM-L6-v2 there)"),
            ),
            [only] if **only == builtin_id => settle(
                "builtin",
                format!("the stored namespaces were written with {builtin_id}"),
            ),
            [only] if **only == MINILM.model_id && local_usable => settle(
                "local",
                format!(
                    "the stored namespaces were written with {}",
                    MINILM.model_id
                ),
            ),
            [only] if **only == MINILM.model_id => Err(format!(
                "the stored namespaces were written with {}, but {dir} does not hold it \
                 (with embedder.dims = {MINILM_DIMS}): run {fetch}",
                MINILM.model_id
            )),
            models => Err(format!(
                "the stored namespaces were written with {}; `auto` settles only on {builtin_id} \
                 or {}: set embedder.provider and its settings to the model they were written with",
                models
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                MINILM.model_id
            )),
        }
    }
}

/// The embedder `config` names (checked with [`EmbedderConfig::check`]
/// first); `auto` is settled as for a store with no bound namespace.
pub fn from_config(config: &EmbedderConfig) -> Result<Arc<dyn Embedder>, ProviderError> {
    let resolved = config
        .resolve(&BTreeSet::new())
        .map_err(ProviderError::Provider)?;
    let e = &resolved.config;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A config of `provider` whose model directory is `dir`.
    fn config(provider: &str, dir: &std::path::Path) -> EmbedderConfig {
        EmbedderConfig {
            provider: provider.into(),
            model_dir: dir.to_path_buf(),
            ..EmbedderConfig::default()
        }
    }

    /// Stand-ins for the model's files (presence is all `auto` looks at).
    fn fill(dir: &std::path::Path) {
        for (name, _) in MINILM.files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn auto_is_local_only_for_a_fresh_store_with_the_model_and_keeps_what_a_store_was_written_with()
    {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("minilm");
        let builtin = "builtin-hash-v1-384";
        let provider = |bound: &[&str]| {
            config("auto", &dir)
                .resolve(&set(bound))
                .map(|r| r.config.provider)
        };

        // No model: the built-in embedder, whatever the store holds of it.
        assert_eq!(provider(&[]).unwrap(), "builtin");
        assert_eq!(provider(&[builtin]).unwrap(), "builtin");
        let gone = provider(&[MINILM.model_id]).unwrap_err();
        assert!(gone.contains("models fetch minilm"), "{gone}");

        // A partial directory is no model.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), b"x").unwrap();
        assert_eq!(provider(&[]).unwrap(), "builtin");

        fill(&dir);
        assert_eq!(provider(&[]).unwrap(), "local");
        assert_eq!(provider(&[MINILM.model_id]).unwrap(), "local");
        // A store written before the model came stays on the built-in embedder.
        let kept = config("auto", &dir).resolve(&set(&[builtin])).unwrap();
        assert_eq!(kept.config.provider, "builtin");
        assert!(kept.reason.contains(builtin), "{}", kept.reason);
        // Two models, or one auto cannot run: the operator decides.
        for bound in [
            &[builtin, MINILM.model_id][..],
            &["openai:nomic-embed-text:768"][..],
        ] {
            let said = provider(bound).unwrap_err();
            assert!(said.contains("set embedder.provider"), "{said}");
        }
        // The local model has 384 dimensions; another size is the built-in embedder.
        let mut wide = config("auto", &dir);
        wide.dims = 768;
        let resolved = wide.resolve(&set(&[])).unwrap();
        assert_eq!(resolved.config.provider, "builtin");
        assert_eq!(resolved.config.dims, 768);
    }

    #[test]
    fn a_configured_provider_is_kept_whatever_the_store_holds() {
        let tmp = tempfile::tempdir().unwrap();
        fill(tmp.path());
        for provider in ["builtin", "local", "openai"] {
            let resolved = config(provider, tmp.path())
                .resolve(&set(&["builtin-hash-v1-384", MINILM.model_id]))
                .unwrap();
            assert_eq!(resolved.config.provider, provider);
        }
    }
}
