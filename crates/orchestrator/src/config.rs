//! The orchestrator's configuration: one typed struct, loaded once at start.
//!
//! Layers, later wins: built-in defaults, `config/orchestrator.toml`,
//! `config/orchestrator.<env>.toml`, then `ORCHESTRA__SECTION__KEY`
//! environment variables, then `PORT`. The agents themselves are in their
//! own file (`agents.file`, default `config/agents.toml`; see [`crate::agents`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use kit::auth::{AuthConfig, KeyConfig};
pub use kit::fault::TestingConfig;
pub use kit::serve::ServerConfig;
pub use kit::telemetry::{LogConfig, OtelConfig};
pub use providers::embed::EmbedderConfig;
pub use vector_index::place::{StorageBackend, StorageConfig};

use crate::error::ConfigError;

/// Everything the orchestrator reads from its environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listening address and shutdown.
    pub server: ServerConfig,
    /// Where threads, runs and events are kept.
    pub storage: StorageConfig,
    /// API keys of callers.
    pub auth: AuthConfig,
    /// The memory server.
    pub memory: MemoryConfig,
    /// Runs: waits, leases, limits.
    pub runs: RunsConfig,
    /// The agents file.
    pub agents: AgentsConfig,
    /// Embeddings for routers without a model (route descriptions vs input).
    pub embedder: EmbedderConfig,
    /// Logging.
    pub log: LogConfig,
    /// OpenTelemetry trace export.
    pub otel: OtelConfig,
    /// Test-only settings.
    pub testing: TestingConfig,
}

/// Where the memory server is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Its base URL; empty runs agents without memory (nothing recalled or stored).
    pub url: String,
    /// The orchestrator's own API key for it; set it through
    /// `ORCHESTRA__MEMORY__API_KEY` (Secret Manager on Cloud Run), never in a file.
    pub api_key: Option<String>,
    /// Longest wait for one memory call, in milliseconds.
    pub timeout_ms: u64,
    /// Tries per memory call (on connection errors, 429 and 5xx).
    pub attempts: u32,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            api_key: None,
            timeout_ms: 5_000,
            attempts: 3,
        }
    }
}

/// Runs: how long callers wait, leases, limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunsConfig {
    /// Longest a blocking run request waits before answering with the run to poll.
    pub max_wait_ms: u64,
    /// Longest a run may take in all (inside Cloud Run's request timeout).
    pub max_run_ms: u64,
    /// A run's lease: another instance fails a run whose lease is this old.
    pub lease_ms: u64,
    /// How often the running instance renews the lease (and sees cancels
    /// asked on other instances).
    pub heartbeat_ms: u64,
    /// Characters of input per message, at most (more is a 413).
    pub max_input_chars: usize,
    /// Request body size, at most.
    pub max_body_bytes: usize,
    /// Most messages of a thread put in front of a model.
    pub history_messages: usize,
}

impl Default for RunsConfig {
    fn default() -> Self {
        Self {
            max_wait_ms: 30_000,
            max_run_ms: 300_000,
            lease_ms: 15_000,
            heartbeat_ms: 3_000,
            max_input_chars: 32_000,
            max_body_bytes: 262_144,
            history_messages: 20,
        }
    }
}

/// Where the agents are declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// The agents file; relative paths are from the configuration directory.
    pub file: PathBuf,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        Self {
            file: PathBuf::from("agents.toml"),
        }
    }
}

impl Config {
    /// Loads the layers from `dir` (with `env`'s file when given).
    pub fn load(dir: &Path, env: Option<&str>) -> Result<Self, ConfigError> {
        let mut config: Self =
            kit::config::load_named(Self::default(), dir, "orchestrator", env, "ORCHESTRA")?;
        if config.agents.file.is_relative() {
            config.agents.file = dir.join(&config.agents.file);
        }
        config.embedder.apply_google_environment();
        Ok(config)
    }

    /// Refuses settings that cannot work, naming the setting.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !self.server.host.is_loopback() && !self.auth.enabled {
            return Err(ConfigError(format!(
                "server.host is {} but auth.enabled is false: enable auth (with keys) or bind loopback",
                self.server.host
            )));
        }
        if self.auth.enabled && self.auth.keys.is_empty() {
            return Err(ConfigError(
                "auth.enabled is true but auth.keys is empty".into(),
            ));
        }
        let url = &self.memory.url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError(format!(
                "memory.url `{url}` must be empty or an http(s) URL"
            )));
        }
        let r = &self.runs;
        if r.heartbeat_ms == 0 || r.lease_ms < 2 * r.heartbeat_ms {
            return Err(ConfigError(
                "runs.lease_ms must be at least twice runs.heartbeat_ms (and heartbeat_ms > 0)"
                    .into(),
            ));
        }
        self.embedder
            .check()
            .map_err(|e| ConfigError(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_sets_only_known_settings() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let config = Config::load(&dir, None).unwrap();
        assert!(config.agents.file.ends_with("agents.toml"));
        config.check().unwrap();
    }

    #[test]
    fn a_public_bind_without_auth_is_refused() {
        let mut c = Config::default();
        c.server.host = [0, 0, 0, 0].into();
        assert!(c.check().unwrap_err().to_string().contains("auth.enabled"));
    }
}
