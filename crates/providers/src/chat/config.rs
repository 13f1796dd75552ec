//! A chat model as configured (`[models.<name>]` in `config/agents.toml`),
//! and the factory that builds the [`ChatModel`] it names.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ChatModel;
use super::gemini::GeminiWire;
use super::openai_compat::OpenAiWire;
use super::remote::RemoteChat;
use super::scripted::{ScriptRule, ScriptedModel};
use crate::ProviderError;
use crate::google::AdcTokenSource;
use crate::retry::RetryPolicy;

/// Which provider serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatProvider {
    /// Gemini on Vertex AI (Application Default Credentials).
    Vertex,
    /// Gemini through the Gemini API (an API key).
    Gemini,
    /// Any OpenAI-compatible `chat/completions` server.
    OpenaiCompat,
    /// Rules from configuration, no network.
    Scripted,
}

/// One model's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatModelConfig {
    /// Who serves it.
    pub provider: ChatProvider,
    /// The provider's model name (`gemini-2.5-flash`, `gpt-4o-mini`, ...).
    #[serde(default)]
    pub model: String,
    /// Endpoint root: required for `openai_compat` (e.g.
    /// `http://127.0.0.1:8081/v1`); empty for Google's for `vertex` / `gemini`.
    #[serde(default)]
    pub base_url: String,
    /// Name of the environment variable holding the API key (`openai_compat`,
    /// `gemini`); keys are never written in files.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Vertex AI project.
    #[serde(default)]
    pub project: String,
    /// Vertex AI region (or `global`).
    #[serde(default = "default_location")]
    pub location: String,
    /// Service-account or user credentials file (Vertex); else ADC's chain.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Most tokens per answer.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Longest wait for one call, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries on 429 (honouring `Retry-After`), 5xx and connection errors.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First backoff in milliseconds; doubles per retry, with jitter.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Price in US dollars per million input tokens (for cost accounting).
    #[serde(default)]
    pub input_price_per_million: f64,
    /// Price in US dollars per million output tokens.
    #[serde(default)]
    pub output_price_per_million: f64,
    /// Scripted: wait before answering, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Scripted: the rules, first match wins.
    #[serde(default)]
    pub script: Vec<ScriptRule>,
}

fn default_location() -> String {
    "us-central1".into()
}
fn default_timeout_ms() -> u64 {
    60_000
}
fn default_retries() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    500
}

impl ChatModelConfig {
    /// What is missing or wrong, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        match self.provider {
            ChatProvider::Scripted => {}
            ChatProvider::OpenaiCompat => {
                if !http(&self.base_url) {
                    return Err("base_url must be an http(s) URL for provider openai_compat".into());
                }
                if self.model.is_empty() {
                    return Err("model is required for provider openai_compat".into());
                }
            }
            ChatProvider::Vertex | ChatProvider::Gemini => {
                if self.model.is_empty() {
                    return Err("model is required for Gemini models".into());
                }
                if !(self.base_url.is_empty() || http(&self.base_url)) {
                    return Err("base_url must be empty or an http(s) URL".into());
                }
                if self.provider == ChatProvider::Vertex && self.project.is_empty() {
                    return Err("project is required for provider vertex".into());
                }
                if self.provider == ChatProvider::Gemini && self.api_key_env.is_none() {
                    return Err(
                        "api_key_env (the variable holding the key) is required for provider gemini"
                            .into(),
                    );
                }
            }
        }
        if self.provider != ChatProvider::Scripted && !self.script.is_empty() {
            return Err("script is only for provider scripted".into());
        }
        for (name, price) in [
            ("input_price_per_million", self.input_price_per_million),
            ("output_price_per_million", self.output_price_per_million),
        ] {
            if !(price.is_finite() && price >= 0.0) {
                return Err(format!("{name} must be a non-negative number"));
            }
        }
        Ok(())
    }

    /// The API key from the named variable, if any.
    fn api_key(&self) -> Result<Option<String>, ProviderError> {
        match &self.api_key_env {
            None => Ok(None),
            Some(var) => match std::env::var(var) {
                Ok(k) if !k.is_empty() => Ok(Some(k)),
                _ => Err(ProviderError::Provider(format!(
                    "api_key_env names {var}, which is not set"
                ))),
            },
        }
    }
}

/// The model `config` describes, named `name` in ids for a scripted one.
pub fn from_config(
    name: &str,
    config: &ChatModelConfig,
) -> Result<Arc<dyn ChatModel>, ProviderError> {
    config.check().map_err(ProviderError::Provider)?;
    let timeout = Duration::from_millis(config.timeout_ms);
    let policy = RetryPolicy {
        max_retries: config.max_retries,
        backoff: Duration::from_millis(config.backoff_ms),
    };
    let id = |p: &str| format!("{p}:{}", config.model);
    Ok(match config.provider {
        ChatProvider::Scripted => Arc::new(ScriptedModel::new(
            name,
            config.script.clone(),
            Duration::from_millis(config.latency_ms),
        )),
        ChatProvider::OpenaiCompat => Arc::new(RemoteChat::new(
            OpenAiWire::new(&config.base_url, &config.model, config.api_key()?),
            id("openai_compat"),
            timeout,
            policy,
        )?),
        ChatProvider::Gemini => {
            let key = config.api_key()?.unwrap_or_default();
            Arc::new(RemoteChat::new(
                GeminiWire::api(&config.base_url, &config.model, key),
                id("gemini"),
                timeout,
                policy,
            )?)
        }
        ChatProvider::Vertex => {
            let mut credentials = config.credentials_file.clone();
            let mut metadata = "http://metadata.google.internal".to_owned();
            crate::google::resolve_environment(&mut credentials, &mut metadata);
            let tokens = AdcTokenSource::new(credentials.as_deref(), &metadata, timeout)?;
            Arc::new(RemoteChat::new(
                GeminiWire::vertex(
                    &config.base_url,
                    &config.project,
                    &config.location,
                    &config.model,
                    Arc::new(tokens),
                ),
                id("vertex"),
                timeout,
                policy,
            )?)
        }
    })
}
