//! Serving until SIGTERM (Cloud Run's stop) or Ctrl-C, then a bounded drain.

use std::net::IpAddr;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// Serves `app` on `listener` until a stop signal, then lets in-flight
/// requests finish for up to `grace`; `on_signal` runs when the signal
/// arrives (e.g. to close long-lived streams that would hold the drain open).
pub async fn until_signal(
    listener: TcpListener,
    app: Router,
    grace: Duration,
    on_signal: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // No Nagle delay: a streamed response's small writes (SSE events) must
    // leave at once, not wait for the client's delayed ACK (about 40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        on_signal();
        let _ = stop_tx.send(true);
    });
    let mut stop = stop_rx.clone();
    tokio::select! {
        result = server => result?,
        // After the signal, in-flight requests get `grace` to finish.
        _ = async {
            let _ = stop.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("shutdown grace period over; dropping the remaining requests");
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; draining");
}

/// The `[server]` section of a service: listening address and shutdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind; loopback by default.
    pub host: IpAddr,
    /// TCP port (`PORT` overrides it).
    pub port: u16,
    /// Longest wait for in-flight requests after SIGTERM, in seconds.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            shutdown_grace_secs: 10,
        }
    }
}
