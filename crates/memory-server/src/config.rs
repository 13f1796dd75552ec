//! The server's configuration: one typed struct, loaded once at start.
//!
//! Layers, later wins: built-in defaults, `config/default.toml`,
//! `config/<env>.toml`, then `ORCHESTRA__SECTION__KEY` environment variables,
//! then `PORT` (Cloud Run's convention) for `server.port`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::auth::{AuthConfig, KeyConfig};
pub use crate::error::ConfigError;
use crate::model::{Fusion, SearchMode};
pub use kit::fault::TestingConfig;
pub use kit::serve::ServerConfig;
pub use kit::telemetry::{LogConfig, OtelConfig};
pub use providers::chat::ChatModelConfig;
pub use providers::embed::EmbedderConfig;
pub use vector_index::place::{StorageBackend, StorageConfig, StoreLocation};

/// Everything the server reads from its environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listening address and shutdown.
    pub server: ServerConfig,
    /// Where memories are kept.
    pub storage: StorageConfig,
    /// API keys.
    pub auth: AuthConfig,
    /// Request limits.
    pub limits: Limits,
    /// How text becomes vectors.
    pub embedder: EmbedderConfig,
    /// Logging.
    pub log: LogConfig,
    /// OpenTelemetry trace export.
    pub otel: OtelConfig,
    /// Vector index tuning.
    pub index: IndexConfig,
    /// Search modes, fusion, contextual text and keyword analysis.
    pub search: SearchConfig,
    /// The MCP endpoint (`/mcp`) and `mcp-stdio`.
    pub mcp: McpConfig,
    /// The memory policy of every namespace that has none of its own.
    pub policy: crate::model::MemoryPolicy,
    /// Chat models extraction may use, by name (`[models.<name>]`, the
    /// orchestrator's format); none by default.
    pub models: BTreeMap<String, ChatModelConfig>,
    /// The background job workers.
    pub jobs: JobsConfig,
    /// Test-only settings.
    pub testing: TestingConfig,
}

/// The background job workers of this instance (every instance runs some;
/// any may run any job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs run at once on this instance (0: this instance runs none).
    pub workers: usize,
    /// How often an idle worker looks for jobs, in milliseconds.
    pub poll_ms: u64,
    /// A running job's lease; renewed every third of it. A job whose
    /// instance died runs again once its lease has passed.
    pub lease_ms: u64,
    /// Runs before a job is dead-lettered.
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds; doubles per attempt.
    pub backoff_ms: u64,
    /// Test-only: a pause after a job saves its plan and before each
    /// decision it applies, so a test can kill the process mid-job (0: none).
    pub step_delay_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            poll_ms: 500,
            lease_ms: 30_000,
            max_attempts: 4,
            backoff_ms: 2_000,
            step_delay_ms: 0,
        }
    }
}

/// Request limits; a request over one is a 4xx that names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest memory text, in characters.
    pub max_text_chars: usize,
    /// Most memories in one batch create.
    pub max_batch: usize,
    /// Largest `top_k` / page size.
    pub max_top_k: usize,
    /// Largest metadata object, in bytes of JSON.
    pub max_metadata_bytes: usize,
    /// Most tags on one memory.
    pub max_tags: usize,
    /// Longest tag, id or namespace, in characters.
    pub max_label_chars: usize,
    /// Prior versions kept per memory.
    pub max_history: usize,
    /// Largest import body, in bytes (imports are streamed, not buffered whole).
    pub max_import_bytes: usize,
    /// Messages a session keeps by default (older ones are trimmed and counted).
    pub session_window: usize,
    /// Largest window a request may ask for.
    pub max_session_window: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 << 20,
            max_text_chars: 32_000,
            max_batch: 500,
            max_top_k: 1_000,
            max_metadata_bytes: 16 << 10,
            max_tags: 64,
            max_label_chars: 128,
            max_history: 20,
            max_import_bytes: 256 << 20,
            session_window: 50,
            max_session_window: 1_000,
        }
    }
}

/// Vector index tuning: recall against insert and search cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Candidates considered per insert (HNSW `ef_construction`, 8..=4096):
    /// lower loads faster with a less accurate graph. Applies to new inserts.
    /// The server's default is 96, below the library's 128: with
    /// `ef_search` 112 it gives the recall@10 that 64 gave at 128 (0.992
    /// on MiniLM embeddings of text) with 12-27 % faster graph searches,
    /// for a quarter fewer inserts a second (docs/decisions.md,
    /// "`ef_construction` 96, `ef_search` 112").
    pub ef_construction: usize,
    /// Candidates considered per search (`ef`, at least `top_k`): lower
    /// searches faster with lower recall. The server's default is 112,
    /// above the library's 64: on MiniLM embeddings of text, over a graph
    /// built at `ef_construction` 96, recall@10 0.992, Chroma's own.
    pub ef_search: usize,
    /// How the graph stores vectors: `i8` (default: f16 vectors, and 8-bit
    /// codes that searches walk on before scoring their best candidates at
    /// f16: f16's graph and recall, a byte more per component, and over
    /// HTTP ~1.2x f16's QPS; docs/decisions.md, "Our graph walks on 8-bit
    /// codes"), `f16` (half f32's memory, ~1.5x faster graph inserts and
    /// searches, same recall) or `f32`. Applies when a graph is built.
    pub quantization: vector_index::Quantization,
    /// Which graph: `graph` (our own HNSW, the fastest walk; docs/decisions.md,
    /// "Our own graph layer"), `usearch` (parallel inserts) or `hnsw`
    /// (hnsw_rs, f32 only). Unset: `graph` ([`IndexConfig::backend`]). A
    /// snapshot of another backend is rebuilt from the records at start-up.
    pub backend: Option<vector_index::BackendKind>,
}

impl IndexConfig {
    /// The graph to build: as set, else ours.
    pub fn backend(&self) -> vector_index::BackendKind {
        self.backend.unwrap_or(vector_index::BackendKind::Graph)
    }
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            ef_construction: 96,
            ef_search: 112,
            quantization: vector_index::Quantization::I8,
            backend: None,
        }
    }
}

/// Weighted fusion's vector share when `search.alpha` is unset and the
/// embedder matches words, not meaning (the built-in embedder).
pub const HASHING_ALPHA: f32 = 0.5;
/// Weighted fusion's vector share when `search.alpha` is unset and the
/// embedder is a semantic model: better than 0.5 for all-MiniLM-L6-v2 on
/// both conversation benchmarks (docs/decisions.md).
pub const SEMANTIC_ALPHA: f32 = 0.7;
/// The template when `search.template` is unset and the embedder matches
/// words: the memory's text, after its speaker and date where it has a
/// speaker (a conversation turn); the turn before would cost recall@1 with
/// this embedder (docs/decisions.md).
pub const HASHING_TEMPLATE: &str = "{?{metadata.speaker} ({created_at:human}): }{text}";
/// The template when `search.template` is unset and the embedder is a
/// semantic model: `chat`, the text and the turn before (`turns`), and a
/// turn's speaker and date where it has a speaker (docs/decisions.md).
pub const SEMANTIC_TEMPLATE: &str = "chat";

/// Search defaults for every namespace, and per-namespace overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Mode of a search that gives `query` text and no `mode`.
    pub mode: SearchMode,
    /// How hybrid search fuses the two rankings.
    pub fusion: Fusion,
    /// Weighted fusion: the vector side's share, in `[0, 1]`; unset, it
    /// follows the embedder ([`SearchConfig::settle`]).
    pub alpha: Option<f32>,
    /// Reciprocal rank fusion's rank constant (>= 1).
    pub rrf_k: u32,
    /// What is embedded and keyword-indexed for a memory, e.g.
    /// `{user_id} ({created_at:date}): {text}`; must contain `{text}`.
    /// Changing it re-indexes the affected memories in the background at
    /// start. Unset, it follows the embedder ([`SearchConfig::settle`]).
    pub template: Option<String>,
    /// Language of keyword search: stemming and stop words.
    pub language: vector_index::Language,
    /// Keyword search reduces words to their stems.
    pub stemming: bool,
    /// Keyword search ignores the language's stop words.
    pub stop_words: bool,
    /// BM25 term-frequency saturation (`k1`, 0 to 3).
    pub bm25_k1: f32,
    /// BM25 length normalisation (`b`, 0 to 1).
    pub bm25_b: f32,
    /// Overrides by namespace (`[search.namespaces.<name>]`), or by pattern
    /// (`[search.namespaces."support-*"]`: every namespace starting so; an
    /// exact name beats a pattern, a longer pattern a shorter one).
    pub namespaces: BTreeMap<String, SearchOverrides>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            mode: SearchMode::Hybrid,
            // Better than rrf on every configuration of the quality set
            // (docs/benchmarks.md, "Fusion").
            fusion: Fusion::Weighted,
            alpha: None,
            rrf_k: 60,
            template: None,
            language: vector_index::Language::English,
            stemming: true,
            stop_words: true,
            bm25_k1: vector_index::Bm25::default().k1,
            bm25_b: vector_index::Bm25::default().b,
            namespaces: BTreeMap::new(),
        }
    }
}

/// A namespace's departures from the [`SearchConfig`] defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchOverrides {
    /// See [`SearchConfig::mode`].
    pub mode: Option<SearchMode>,
    /// See [`SearchConfig::fusion`].
    pub fusion: Option<Fusion>,
    /// See [`SearchConfig::alpha`].
    pub alpha: Option<f32>,
    /// See [`SearchConfig::rrf_k`].
    pub rrf_k: Option<u32>,
    /// See [`SearchConfig::template`].
    pub template: Option<String>,
    /// See [`SearchConfig::language`].
    pub language: Option<vector_index::Language>,
    /// See [`SearchConfig::stemming`].
    pub stemming: Option<bool>,
    /// See [`SearchConfig::stop_words`].
    pub stop_words: Option<bool>,
    /// See [`SearchConfig::bm25_k1`].
    pub bm25_k1: Option<f32>,
    /// See [`SearchConfig::bm25_b`].
    pub bm25_b: Option<f32>,
}

/// One namespace's search settings, defaults and overrides combined.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceSearch {
    /// Default mode for text queries.
    pub mode: SearchMode,
    /// Default fusion.
    pub fusion: Fusion,
    /// Default weighted-fusion alpha.
    pub alpha: f32,
    /// Default RRF constant.
    pub rrf_k: u32,
    /// The contextual-text template.
    pub template: String,
    /// Keyword analysis.
    pub analyzer: vector_index::AnalyzerSettings,
    /// Keyword scoring.
    pub bm25: vector_index::Bm25,
}

impl NamespaceSearch {
    /// The first setting out of its range, and what its range is.
    pub fn out_of_range(&self) -> Option<(&'static str, String)> {
        if !(0.0..=1.0).contains(&self.alpha) {
            return Some((
                "alpha",
                format!("must be between 0 and 1, got {}", self.alpha),
            ));
        }
        if self.rrf_k == 0 {
            return Some(("rrf_k", "must be at least 1".into()));
        }
        self.bm25.out_of_range().map(|(name, range, value)| {
            let field = if name == "k1" { "bm25_k1" } else { "bm25_b" };
            (field, format!("must be {range}, got {value}"))
        })
    }
}

impl SearchConfig {
    /// The settings of `namespace`.
    pub fn namespace(&self, namespace: &str) -> NamespaceSearch {
        match vector_index::text::by_namespace(&self.namespaces, namespace) {
            Some((_, o)) => self.resolve(o.clone()),
            None => self.resolve(SearchOverrides::default()),
        }
    }

    /// The settings of a namespace without overrides.
    pub fn namespace_defaults(&self) -> NamespaceSearch {
        self.resolve(SearchOverrides::default())
    }

    fn resolve(&self, o: SearchOverrides) -> NamespaceSearch {
        NamespaceSearch {
            mode: o.mode.unwrap_or(self.mode),
            fusion: o.fusion.unwrap_or(self.fusion),
            alpha: o.alpha.or(self.alpha).unwrap_or(HASHING_ALPHA),
            rrf_k: o.rrf_k.unwrap_or(self.rrf_k),
            template: o
                .template
                .or_else(|| self.template.clone())
                .unwrap_or_else(|| HASHING_TEMPLATE.to_owned()),
            analyzer: vector_index::AnalyzerSettings {
                language: o.language.unwrap_or(self.language),
                stemming: o.stemming.unwrap_or(self.stemming),
                stop_words: o.stop_words.unwrap_or(self.stop_words),
            },
            bm25: vector_index::Bm25 {
                k1: o.bm25_k1.unwrap_or(self.bm25_k1),
                b: o.bm25_b.unwrap_or(self.bm25_b),
            },
        }
    }

    /// The keyword analyzers the collection is built with.
    pub fn text_config(&self) -> vector_index::TextConfig {
        vector_index::TextConfig {
            default: self.resolve(SearchOverrides::default()).analyzer,
            namespaces: self
                .namespaces
                .keys()
                .map(|ns| (ns.clone(), self.namespace(ns).analyzer))
                .collect(),
        }
    }

    /// Fills an unset `alpha` and `template` for the embedder this server
    /// runs: a semantic model's similarities deserve more weight than
    /// shared-word hashing's, and carry the turn before without drowning
    /// the turn's own words.
    pub fn settle(&mut self, semantic: bool) {
        let (alpha, template) = if semantic {
            (SEMANTIC_ALPHA, SEMANTIC_TEMPLATE)
        } else {
            (HASHING_ALPHA, HASHING_TEMPLATE)
        };
        self.alpha.get_or_insert(alpha);
        self.template.get_or_insert_with(|| template.to_owned());
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(bad) = self
            .namespaces
            .keys()
            .find(|k| k.find('*').is_some_and(|i| i + 1 != k.len()))
        {
            return Err(ConfigError(format!(
                "search.namespaces.{bad:?}: `*` may only end a pattern (e.g. \"support-*\")"
            )));
        }
        let all = std::iter::once((None, SearchOverrides::default()))
            .chain(self.namespaces.iter().map(|(ns, o)| (Some(ns), o.clone())));
        for (ns, overrides) in all {
            let s = self.resolve(overrides);
            let at = |key: &str| match ns {
                Some(ns) => format!("search.namespaces.{ns}.{key}"),
                None => format!("search.{key}"),
            };
            if let Some((field, problem)) = s.out_of_range() {
                return Err(ConfigError(format!("{} {problem}", at(field))));
            }
            // Templates are parsed once, where they are used
            // (`service::SearchSettings::new`, at start), and named there.
        }
        Ok(())
    }
}

/// The Model Context Protocol endpoint and the stdio transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// Serve MCP at `/mcp`.
    pub enabled: bool,
    /// `Host` header values accepted at `/mcp` (DNS-rebinding guard); empty
    /// means loopback names only. Required when `server.host` is not loopback.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted at `/mcp` (`scheme://host:port`, `:*` for any
    /// port); empty means loopback origins only. A request carrying any other
    /// `Origin` is refused; clients that send none (SDKs, CLIs) are unaffected.
    pub allowed_origins: Vec<String>,
    /// The API key `mcp-stdio` acts with when auth is on.
    pub stdio_key: Option<String>,
    /// How long an idle 2025-11-25 MCP session is remembered, in seconds.
    pub session_ttl_secs: u64,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            stdio_key: None,
            session_ttl_secs: 24 * 3600,
        }
    }
}

impl Config {
    /// Loads defaults, `<dir>/default.toml`, `<dir>/<env>.toml` (when `env` is
    /// given), `ORCHESTRA__*` variables and `PORT`, then checks the result.
    pub fn load(dir: &Path, env: Option<&str>) -> Result<Self, ConfigError> {
        let mut config = kit::config::load(Config::default(), dir, env, "ORCHESTRA")?;
        config.embedder.apply_google_environment();
        config.check()?;
        Ok(config)
    }

    /// Refuses settings that would be unsafe or cannot work.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !self.auth.enabled && !self.server.host.is_loopback() {
            return Err(ConfigError(format!(
                "auth.enabled is false but server.host is {}: without API keys the server \
                 only binds to loopback (127.0.0.1 or ::1). Enable auth and configure \
                 auth.keys, or bind to loopback",
                self.server.host
            )));
        }
        if self.auth.enabled && self.auth.keys.is_empty() {
            return Err(ConfigError(
                "auth.enabled is true but auth.keys is empty: no request could succeed".into(),
            ));
        }
        for k in &self.auth.keys {
            if k.agent_id
                .as_deref()
                .is_some_and(|a| a.trim() == crate::auth::EVERY_AGENT)
            {
                return Err(ConfigError(format!(
                    "API key `{}`: agent_id `*` is reserved (it stands for every agent); \
                     name one agent or leave it out",
                    k.name
                )));
            }
            if k.sha256.is_some() == k.key.is_some() {
                return Err(ConfigError(format!(
                    "API key `{}` needs exactly one of `sha256` (preferred) or `key`",
                    k.name
                )));
            }
        }
        self.embedder.check().map_err(ConfigError)?;
        if !(8..=4096).contains(&self.index.ef_construction) {
            return Err(ConfigError(format!(
                "index.ef_construction must be between 8 and 4096, got {}",
                self.index.ef_construction
            )));
        }
        if !(1..=4096).contains(&self.index.ef_search) {
            return Err(ConfigError(format!(
                "index.ef_search must be between 1 and 4096, got {}",
                self.index.ef_search
            )));
        }
        let graph = vector_index::GraphParams {
            quantization: self.index.quantization,
            ..Default::default()
        };
        let backend = self.index.backend();
        vector_index::backend::check(backend, &graph)
            .map_err(|e| ConfigError(format!("index.backend = \"{backend}\": {e}")))?;
        if self.mcp.enabled && !self.server.host.is_loopback() && self.mcp.allowed_hosts.is_empty()
        {
            return Err(ConfigError(format!(
                "server.host is {} (not loopback), so mcp.allowed_hosts must list the host \
                 names MCP clients use (e.g. the service URL's host), or set mcp.enabled = false",
                self.server.host
            )));
        }
        self.search.check()?;
        if let Some((field, message)) = self.policy.problem() {
            return Err(ConfigError(format!("[policy] {field}: {message}")));
        }
        for (name, model) in &self.models {
            model
                .check()
                .map_err(|e| ConfigError(format!("[models.{name}] {e}")))?;
        }
        let named = [
            (
                "extraction.model",
                self.policy.extracting().map(|e| &e.model),
            ),
            (
                "summary.model",
                self.policy.summary.as_ref().map(|s| &s.model),
            ),
            ("merge_model", self.policy.merge_model.as_ref()),
        ];
        for (field, model) in named {
            if let Some(m) = model
                && !self.models.contains_key(m)
            {
                return Err(ConfigError(format!(
                    "[policy] {field}: `{m}` is not one of [models] ({})",
                    self.models.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let j = &self.jobs;
        if j.poll_ms == 0 || j.lease_ms < 1_000 || j.max_attempts == 0 {
            return Err(ConfigError(
                "[jobs] poll_ms must be at least 1, lease_ms at least 1000 and max_attempts \
                 at least 1"
                    .into(),
            ));
        }
        if self.mcp.session_ttl_secs == 0 {
            return Err(ConfigError(
                "mcp.session_ttl_secs must be at least 1".into(),
            ));
        }
        let o = &self.otel;
        if !(o.endpoint.is_empty()
            || o.endpoint.starts_with("http://")
            || o.endpoint.starts_with("https://"))
        {
            return Err(ConfigError(
                "otel.endpoint must be empty (no export) or an http(s) URL".into(),
            ));
        }
        if !(0.0..=1.0).contains(&o.sample_ratio) {
            return Err(ConfigError(format!(
                "otel.sample_ratio must be between 0.0 and 1.0, got {}",
                o.sample_ratio
            )));
        }
        if !(8..=4096).contains(&self.embedder.dims) {
            return Err(ConfigError(format!(
                "embedder.dims must be between 8 and 4096, got {}",
                self.embedder.dims
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use figment::Figment;
    use figment::providers::{Format, Toml};
    use std::net::IpAddr;

    #[test]
    fn out_of_range_settings_say_which_and_why() {
        let refused = |change: fn(&mut Config), says: &str| {
            let mut c = Config::default();
            change(&mut c);
            let err = c.check().unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        };
        refused(|c| c.index.ef_construction = 4, "index.ef_construction");
        refused(|c| c.index.ef_search = 0, "index.ef_search");
        refused(
            |c| {
                c.index.backend = Some(vector_index::BackendKind::Hnsw);
                c.index.quantization = vector_index::Quantization::I8;
            },
            "index.backend = \"hnsw\": invalid parameter `quantization`: the hnsw backend stores f32",
        );
        refused(
            |c| c.otel.endpoint = "collector:4318".into(),
            "otel.endpoint",
        );
        refused(|c| c.otel.sample_ratio = 1.5, "otel.sample_ratio");
        refused(
            |c| {
                c.embedder.provider = "vertex".into();
                c.embedder.model = "text-embedding-005".into();
            },
            "embedder.project",
        );
        refused(|c| c.embedder.provider = "cohere".into(), "`vertex`");
        refused(
            |c| {
                c.search
                    .namespaces
                    .insert("sup*port".into(), SearchOverrides::default());
            },
            "`*` may only end a pattern",
        );
        refused(
            |c| c.search.bm25_k1 = 4.0,
            "search.bm25_k1 must be between 0 and 3, got 4",
        );
    }

    #[test]
    fn an_unset_alpha_and_template_follow_the_embedder_and_set_ones_stay() {
        let mut s = SearchConfig::default();
        assert_eq!(s.namespace_defaults().alpha, HASHING_ALPHA);
        assert_eq!(s.namespace_defaults().template, HASHING_TEMPLATE);
        s.settle(true);
        assert_eq!(s.namespace_defaults().alpha, SEMANTIC_ALPHA);
        assert_eq!(s.namespace_defaults().template, SEMANTIC_TEMPLATE);
        let mut set = SearchConfig {
            alpha: Some(0.3),
            template: Some("chat".into()),
            ..SearchConfig::default()
        };
        set.settle(true);
        assert_eq!(set.namespace_defaults().alpha, 0.3);
        assert_eq!(set.namespace_defaults().template, "chat");
        let mut hashing = SearchConfig::default();
        hashing.settle(false);
        assert_eq!(hashing.namespace_defaults().alpha, HASHING_ALPHA);
        assert_eq!(hashing.namespace_defaults().template, HASHING_TEMPLATE);
        // A namespace's own alpha wins over the settled default.
        s.namespaces.insert(
            "team".into(),
            SearchOverrides {
                alpha: Some(0.9),
                ..SearchOverrides::default()
            },
        );
        assert_eq!(s.namespace("team").alpha, 0.9);
    }

    /// `config/default.toml` documents every setting: loaded alone it gives
    /// exactly the built-in defaults, and every key of [`Config`] appears in
    /// it, set or (for settings without a default value) as a comment.
    #[test]
    fn an_unset_backend_is_our_graph_at_every_precision() {
        use vector_index::{BackendKind, Quantization};
        let mut c = Config::default();
        assert_eq!(c.index.backend(), BackendKind::Graph);
        c.index.quantization = Quantization::I8;
        assert_eq!(c.index.backend(), BackendKind::Graph);
        assert!(c.check().is_ok(), "our graph takes i8");
        c.index.quantization = Quantization::F32;
        c.index.backend = Some(BackendKind::Usearch);
        assert_eq!(c.index.backend(), BackendKind::Usearch);
    }

    #[test]
    fn default_toml_names_every_setting_with_the_built_in_value() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let from_file: Config = Figment::from(Toml::string(&text)).extract().unwrap();
        assert_eq!(
            from_file,
            Config::default(),
            "default.toml and Config::default() differ"
        );

        let set: serde_json::Value = Figment::from(Toml::string(&text)).extract().unwrap();
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let mut missing = Vec::new();
        for (section, keys) in defaults.as_object().unwrap() {
            for (key, value) in keys.as_object().unwrap() {
                let unset = value.is_null() || value.as_object().is_some_and(|m| m.is_empty());
                let present = if unset {
                    text.contains(&format!("# {key} "))
                        || text.contains(&format!("# {key}:"))
                        || text.contains(&format!("# [{section}.{key}."))
                } else {
                    set.get(section).and_then(|s| s.get(key)).is_some()
                };
                if !present {
                    missing.push(format!("{section}.{key}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "not in config/default.toml: {missing:?}"
        );
    }

    #[test]
    fn public_bind_without_auth_is_refused_with_the_reason() {
        let mut c = Config::default();
        assert!(c.check().is_ok());
        c.server.host = IpAddr::from([0, 0, 0, 0]);
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("auth.enabled is false"), "{err}");
        c.auth.enabled = true;
        assert!(c.check().is_err(), "auth on without keys");
        c.auth.keys.push(KeyConfig {
            name: "k".into(),
            sha256: None,
            key: Some("secret".into()),
            role: Role::Read,
            namespaces: vec!["*".into()],
            agent_id: None,
        });
        // MCP off loopback needs the host names its clients use.
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("mcp.allowed_hosts"), "{err}");
        c.mcp.allowed_hosts = vec!["memory.example.com".into()];
        assert!(c.check().is_ok());
        c.mcp.allowed_hosts.clear();
        c.mcp.enabled = false;
        assert!(c.check().is_ok());
    }
}
