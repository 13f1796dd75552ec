//! The memory operations, independent of transport (REST in [`crate::http`],
//! MCP in [`crate::mcp`]).
//!
//! A memory is one point of a [`DurableCollection`]: its vector, a payload the
//! index filters on, and a JSON document (text, metadata, history) stored beside
//! it in the same atomic record. Writes go through the collection, so an
//! acknowledged memory is already readable and searchable on this instance and
//! reaches the others through the change stream.

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use vector_index::IndexError;
use vector_index::durable::DurableCollection;
use vector_index::store::AnyStore;

use crate::config::Limits;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use providers::ProviderError;
use providers::embed::{Embedder, Purpose};

mod consolidate;
mod context;
mod conversation;
mod create;
mod entities;
mod extract;
mod feedback;
mod indexed;
mod list;
mod merge;
mod model_binding;
mod neighbors;
mod policy;
mod portable;
mod prompts;
mod query_time;
mod record;
mod reindex;
mod search;
mod sessions;
mod settings;
mod summarize;
mod supersede;
mod template;
mod update;

use self::create::CREATE_LOCKS;
pub(crate) use self::record::derived_id;
pub use self::record::shared_attribute;
use self::record::{Doc, from_millis, millis};
pub use extract::{ChatModelEntry, Maintenance};
pub use model_binding::{ModelBindings, REGISTRY_NAME, bound_models};
pub use policy::{POLICIES_NAME, Policies};
pub use settings::{POLL as SETTINGS_POLL, SETTINGS_NAME, SearchSettings};
pub use template::Template;

/// Prefixes a 400 with where in a batch it happened (`memories[3]`, `line 7`).
fn located(e: ApiError, label: String, key: &str, at: usize) -> ApiError {
    match e {
        ApiError::BadRequest { message, details } => ApiError::BadRequest {
            message: format!("{label}: {message}"),
            details: serde_json::json!({ key: at, "field": details.get("field") }),
        },
        other => other,
    }
}

fn embed_error(e: ProviderError) -> ApiError {
    match e {
        ProviderError::Unavailable(m) => ApiError::Unavailable(m),
        ProviderError::Provider(m) => ApiError::BadGateway(format!("embedding provider: {m}")),
    }
}

/// The memory operations over one durable collection.
pub struct MemoryService {
    collection: Arc<DurableCollection<AnyStore>>,
    embedder: Arc<dyn Embedder>,
    limits: Limits,
    metrics: Arc<Metrics>,
    create_locks: Vec<tokio::sync::Mutex<()>>,
    models: ModelBindings,
    policies: Policies,
    jobs: Arc<crate::jobs::JobQueue>,
    chat_models: std::collections::BTreeMap<String, ChatModelEntry>,
    search: SearchSettings,
}

impl MemoryService {
    /// A service over `collection`, embedding with `embedder`; `registry`
    /// holds which model each namespace is bound to; `maintenance` the
    /// policies, jobs and chat models of memory that maintains itself.
    pub fn new(
        collection: Arc<DurableCollection<AnyStore>>,
        registry: Arc<DurableCollection<AnyStore>>,
        embedder: Arc<dyn Embedder>,
        maintenance: Maintenance,
        limits: Limits,
        metrics: Arc<Metrics>,
        search: SearchSettings,
    ) -> Self {
        let Maintenance {
            policies,
            jobs,
            models: chat_models,
        } = maintenance;
        Self {
            search,
            policies,
            jobs,
            chat_models,
            models: ModelBindings::new(registry, embedder.model_id(), embedder.dims()),
            collection,
            embedder,
            limits,
            metrics,
            create_locks: (0..CREATE_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The collection (for readiness and metrics).
    pub fn collection(&self) -> &Arc<DurableCollection<AnyStore>> {
        &self.collection
    }

    /// The namespace → model registry.
    pub fn models(&self) -> &ModelBindings {
        &self.models
    }

    /// The namespace policies.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The namespaces' search settings.
    pub fn search_settings(&self) -> &SearchSettings {
        &self.search
    }

    /// The metrics it records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The embedding model's id.
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    /// The embedder (for what `/readyz` says of it).
    pub fn embedder(&self) -> &dyn Embedder {
        self.embedder.as_ref()
    }

    async fn embed(&self, texts: Vec<String>, purpose: Purpose) -> ApiResult<Vec<Vec<f32>>> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "embed",
            model = self.embedder.model_id(),
            texts = texts.len()
        );
        let result =
            tracing::Instrument::instrument(self.embedder.embed(&texts, purpose), span).await;
        self.metrics.embed(started, result.is_ok());
        let vectors = result.map_err(embed_error)?;
        if vectors.len() != texts.len() || vectors.iter().any(|v| v.len() != self.embedder.dims()) {
            return Err(ApiError::Internal(
                "embedder returned the wrong number or size of vectors".into(),
            ));
        }
        Ok(vectors)
    }

    /// Runs a store operation, recording its latency and (real) failures.
    async fn timed<T>(
        &self,
        op: &str,
        operation: impl std::future::Future<Output = Result<T, IndexError>>,
    ) -> Result<T, IndexError> {
        let started = Instant::now();
        let span = tracing::info_span!("store", otel.name = %format!("store {op}"), op);
        let result = tracing::Instrument::instrument(operation, span).await;
        let failed = matches!(
            result,
            Err(IndexError::Unavailable(_) | IndexError::Storage(_))
        );
        self.metrics.store_op(op, started, !failed);
        result
    }

    fn lock_index(&self, key: &str) -> usize {
        let h = Sha256::digest(key.as_bytes());
        usize::from(h[0]) % self.create_locks.len()
    }
}
