//! Wiring: the store, the agents, the memory link, the run service and the
//! router; serving until SIGTERM, then draining runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vector_index::CollectionConfig;
use vector_index::place::StorePlace;

use crate::agents::{Agents, AgentsError};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::ConfigError;
use crate::events::Hub;
use crate::http::{AppState, router};
use crate::memory::MemoryLink;
use crate::metrics::Metrics;
use crate::runs::Runs;
use crate::store::{COLLECTION, Records};

/// A failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A bad agents file.
    #[error(transparent)]
    Agents(#[from] AgentsError),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] vector_index::IndexError),
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

/// Runs the orchestrator described by `config` until SIGTERM / Ctrl-C.
pub async fn run(config: Config) -> Result<(), StartError> {
    config.check()?;
    let keys = Arc::new(kit::auth::KeyRing::from_config(&config.auth).map_err(ConfigError::from)?);
    let agents = Arc::new(Agents::load(&config.agents.file)?);
    let embedder = providers::embed::from_config(&config.embedder)
        .map_err(|e| ConfigError(format!("embedder: {e}")))?;
    let memory = MemoryLink::from_config(&config.memory)
        .map_err(|e| ConfigError(format!("memory.url: {e}")))?
        .map(Arc::new);
    if memory.is_none() {
        tracing::warn!("memory.url is empty: agents run without memory");
    }
    let place = StorePlace::of(&config.storage)?;
    let collection = place.open(COLLECTION, CollectionConfig::records()).await?;
    let records = Arc::new(Records::new(collection));
    let metrics = Arc::new(Metrics::new());
    let engine = Arc::new(Engine {
        agents: Arc::clone(&agents),
        memory: memory.clone(),
        embedder,
        metrics: Arc::clone(&metrics),
    });
    let stop = CancellationToken::new();
    let runs = Arc::new(Runs::new(
        Arc::clone(&records),
        engine,
        Hub::default(),
        Arc::clone(&metrics),
        config.runs.clone(),
        stop.clone(),
    ));
    let _sweeper = runs.spawn_sweeper();
    let addr = SocketAddr::new(config.server.host, config.server.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    tracing::info!(
        addr = %listener.local_addr()?,
        store = ?config.storage.location(),
        agents = agents.describe().len(),
        memory = %config.memory.url,
        "orchestrator listening"
    );
    let state = AppState {
        runs: Arc::clone(&runs),
        agents,
        keys,
        metrics,
        memory,
        config: Arc::new(config),
    };
    let faults = kit::fault::from_config(&state.config.testing);
    let stop_runs = stop.clone();
    kit::serve::until_signal(listener, router(state, faults), grace, move || {
        stop_runs.cancel()
    })
    .await?;
    // Runs stopped by the shutdown are failed `instance_stopped`; give them
    // a moment to store that.
    runs.drain(Duration::from_secs(2)).await;
    Ok(())
}
