//! Wiring: load the stores and the embedder, build the router ([`crate::http`]),
//! serve until SIGTERM, drain.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vector_index::CollectionConfig;
use vector_index::durable::DurableCollection;
use vector_index::place::{StorageBackend, StorePlace};
use vector_index::store::AnyStore;

use crate::auth::KeyRing;
use crate::config::Config;
use crate::http::{AppState, McpEndpoint, router};
use crate::jobs::{JOBS_NAME, JobQueue};
use crate::mcp::MemoryMcp;
use crate::mcp::protocol_sessions::{ProtocolSessions, SESSIONS_NAME};
use crate::metrics::Metrics;
use crate::service::{
    ChatModelEntry, Maintenance, MemoryService, POLICIES_NAME, Policies, REGISTRY_NAME,
    SETTINGS_NAME, SETTINGS_POLL, SearchSettings,
};
use providers::embed::Embedder;

/// How much deeper than `max_top_k` a search may look (recency re-ranking).
const SEARCH_DEPTH_FACTOR: usize = 5;

/// A failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] vector_index::IndexError),
    /// The embedded store is held by another process.
    #[error(
        "the embedded store {0} is open in another memory-server: stop that one, give this one \
         its own directory (ORCHESTRA__STORAGE__PATH), or let both share Redis \
         (ORCHESTRA__STORAGE__BACKEND=redis, ORCHESTRA__STORAGE__REDIS_URL=redis://...)"
    )]
    StoreInUse(String),
    /// The listening address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (another process on that port? set PORT or server.port)"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
}

/// The collection name for an embedding model: one collection per model, so
/// vectors of different models never mix.
fn collection_name(model_id: &str) -> String {
    let safe: String = model_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("memories-{safe}")
}

/// MCP protocol session state: a record collection (no vectors), one record per session.
fn sessions_config() -> CollectionConfig {
    CollectionConfig::records()
}

/// The namespace → model registry and the namespace policies: record
/// collections, one record per namespace.
fn registry_config() -> CollectionConfig {
    CollectionConfig::records()
}

/// How the server talks to its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// REST and MCP over HTTP until SIGTERM / Ctrl-C.
    Http,
    /// MCP over stdin/stdout until stdin closes.
    Stdio,
}

/// Runs the server described by `config` until SIGTERM / Ctrl-C.
pub async fn run(config: Config) -> Result<(), StartError> {
    run_as(config, Mode::Http).await
}

/// Runs the server described by `config` in `mode`.
pub async fn run_as(config: Config, mode: Mode) -> Result<(), StartError> {
    config.check()?;
    let keys =
        Arc::new(KeyRing::from_config(&config.auth).map_err(crate::config::ConfigError::from)?);
    let place = StorePlace::of(&config.storage)?;
    let registry = open(&place, REGISTRY_NAME, registry_config()).await?;
    let (embedder, choice) = embedder(&config, &registry).await?;
    let mut index_config = CollectionConfig::new(embedder.dims());
    index_config.max_k = config.limits.max_top_k * SEARCH_DEPTH_FACTOR;
    index_config.graph.ef_construction = config.index.ef_construction;
    index_config.ef_search = config.index.ef_search;
    index_config.graph.quantization = config.index.quantization;
    index_config.backend = config.index.backend();
    index_config.text = config.search.text_config();
    // Keyword statistics come from shared memories only: every reader of a
    // namespace sees those, so a private memory cannot move anyone's scores.
    index_config.keyword_statistics = Some(crate::service::shared_attribute());
    let name = collection_name(embedder.model_id());
    let embedded = config.storage.backend == StorageBackend::Embedded;
    let stores = Stores {
        collection: open(&place, &name, index_config).await?,
        registry,
        policies: open(&place, POLICIES_NAME, registry_config()).await?,
        settings: open(&place, SETTINGS_NAME, registry_config()).await?,
        jobs: open(&place, JOBS_NAME, registry_config()).await?,
        sessions: open(&place, SESSIONS_NAME, sessions_config()).await?,
        // Embedded stores snapshot at exit; Redis instances share the
        // periodic snapshotter's snapshots.
        snapshot_on_exit: embedded,
    };
    serve(config, stores, (embedder, choice), keys, mode).await
}

/// The embedder of `[embedder]`, and why it runs; `auto` settles on the
/// model the stored namespaces were written with, or for a store with none,
/// on the local model when its files are there (`EmbedderConfig::resolve`).
async fn embedder(
    config: &Config,
    registry: &DurableCollection<AnyStore>,
) -> Result<(Arc<dyn Embedder>, String), StartError> {
    let bound = if config.embedder.provider == "auto" {
        crate::service::bound_models(registry).await?
    } else {
        std::collections::BTreeSet::new()
    };
    let resolved = config
        .embedder
        .resolve(&bound)
        .map_err(|e| crate::config::ConfigError(format!("embedder.provider = \"auto\": {e}")))?;
    tracing::info!(
        configured = %config.embedder.provider,
        provider = %resolved.config.provider,
        reason = %resolved.reason,
        "embedder chosen"
    );
    let embedder = providers::embed::from_config(&resolved.config)
        .map_err(|e| crate::config::ConfigError(e.to_string()))?;
    let choice = if config.embedder.provider == "auto" {
        format!("auto: {}", resolved.reason)
    } else {
        "configured".to_owned()
    };
    Ok((embedder, choice))
}

/// The chat models of `[models]`, built once.
fn chat_models(config: &Config) -> Result<BTreeMap<String, ChatModelEntry>, StartError> {
    config
        .models
        .iter()
        .map(|(name, c)| {
            let model = providers::chat::config::from_config(name, c)
                .map_err(|e| crate::config::ConfigError(format!("[models.{name}] {e}")))?;
            Ok((
                name.clone(),
                ChatModelEntry {
                    model,
                    config: c.clone(),
                },
            ))
        })
        .collect()
}

/// Opens collection `name` in `place`, naming a held embedded file.
async fn open(
    place: &StorePlace<'_>,
    name: &str,
    index: CollectionConfig,
) -> Result<Arc<DurableCollection<AnyStore>>, StartError> {
    place.open(name, index).await.map_err(|e| match e {
        vector_index::IndexError::InUse(file) => StartError::StoreInUse(file),
        e => StartError::Store(e),
    })
}

/// Re-indexes, in the background, the memories whose contextual text no
/// longer matches their namespace's template (after a template change).
fn spawn_reindex(service: Arc<MemoryService>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match service.reindex().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(memories = n, "re-indexed for the current templates"),
            Err(e) => {
                tracing::warn!(error = %e, "re-indexing stopped; it runs again at the next start")
            }
        }
    })
}

/// Applies, every [`SETTINGS_POLL`], the namespace settings other instances changed.
fn spawn_settings_watcher(service: Arc<MemoryService>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SETTINGS_POLL).await;
            if let Err(e) = service.refresh_settings().await {
                tracing::warn!(error = %e, "namespace settings not refreshed");
            }
        }
    })
}

/// The opened collections.
struct Stores {
    collection: Arc<DurableCollection<AnyStore>>,
    registry: Arc<DurableCollection<AnyStore>>,
    policies: Arc<DurableCollection<AnyStore>>,
    settings: Arc<DurableCollection<AnyStore>>,
    jobs: Arc<DurableCollection<AnyStore>>,
    sessions: Arc<DurableCollection<AnyStore>>,
    /// Whether to snapshot the memories at exit.
    snapshot_on_exit: bool,
}

async fn serve(
    config: Config,
    stores: Stores,
    (embedder, choice): (Arc<dyn Embedder>, String),
    keys: Arc<KeyRing>,
    mode: Mode,
) -> Result<(), StartError> {
    let Stores {
        collection,
        registry,
        policies,
        settings,
        jobs,
        sessions,
        snapshot_on_exit,
    } = stores;
    let sweep_every = Duration::from_secs(config.storage.sweep_every_secs.max(1));
    let _sweeper = collection.spawn_sweeper(sweep_every);
    let _session_sweeper = sessions.spawn_sweeper(sweep_every);
    let _job_sweeper = jobs.spawn_sweeper(sweep_every);
    let _snapshotter = (config.storage.snapshot_every_secs > 0).then(|| {
        collection.spawn_snapshotter(Duration::from_secs(config.storage.snapshot_every_secs))
    });
    let mut search = config.search.clone();
    search.settle(embedder.semantic());
    let service = Arc::new(MemoryService::new(
        Arc::clone(&collection),
        registry,
        embedder,
        Maintenance {
            policies: Policies::new(policies, config.policy.clone()),
            jobs: Arc::new(JobQueue::new(jobs)),
            models: chat_models(&config)?,
        },
        config.limits.clone(),
        Arc::new(Metrics::new()),
        SearchSettings::new(&search, settings)?,
    ));
    // Settings set through the API apply before the first request and the
    // start's re-index; later changes by other instances as they come.
    if let Err(e) = service.refresh_settings().await {
        tracing::warn!(error = %e, "namespace settings not loaded; retrying in the background");
    }
    let _settings_watcher = spawn_settings_watcher(Arc::clone(&service));
    let _reindexer = spawn_reindex(Arc::clone(&service));
    let stop = CancellationToken::new();
    let _workers = crate::worker::spawn(
        Arc::clone(&service),
        config.jobs.clone(),
        uuid::Uuid::new_v4().to_string(),
        stop.clone(),
    );
    if mode == Mode::Stdio {
        let who = keys
            .authenticate(config.mcp.stdio_key.as_deref())
            .map_err(|e| {
                crate::config::ConfigError(format!(
                    "mcp-stdio: {e}; with auth on, set mcp.stdio_key (ORCHESTRA__MCP__STDIO_KEY) \
                 to the API key stdio callers act with"
                ))
            })?;
        crate::mcp::stdio::serve(MemoryMcp::new(service, Some(who))).await?;
        if snapshot_on_exit && let Err(e) = collection.snapshot().await {
            tracing::warn!(error = %e, "no snapshot at exit");
        }
        return Ok(());
    }
    let mcp = config.mcp.enabled.then(|| McpEndpoint {
        settings: config.mcp.clone(),
        sessions: Arc::new(ProtocolSessions::new(
            sessions,
            Duration::from_secs(config.mcp.session_ttl_secs),
        )),
        stop: stop.clone(),
    });
    let faults = kit::fault::from_config(&config.testing);
    let store = Arc::new(config.storage.location());
    let app = router(
        AppState {
            service,
            keys,
            store: Arc::clone(&store),
            embedder_choice: choice.into(),
        },
        config.limits.max_body_bytes,
        mcp,
        faults,
    );
    let addr = SocketAddr::new(config.server.host, config.server.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    tracing::info!(
        address = %listener.local_addr()?,
        storage = ?store.backend,
        store = %store.location,
        auth = config.auth.enabled,
        memories = collection.index().len(),
        "memory-server listening"
    );
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    // Open MCP streams would hold the drain open until the grace ends.
    kit::serve::until_signal(listener, app, grace, move || stop.cancel()).await?;
    // A snapshot at shutdown makes the next start fast (best effort).
    if snapshot_on_exit && let Err(e) = collection.snapshot().await {
        tracing::warn!(error = %e, "no snapshot at shutdown");
    }
    tracing::info!("memory-server stopped");
    Ok(())
}
