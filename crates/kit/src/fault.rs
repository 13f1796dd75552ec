//! Test-only fault injection, off unless a service's `[testing]` asks
//! ([`TestingConfig`]; it warns at start when it does, [`from_config`]):
//! - `fail_every`: a share of API requests answered with 500s, so the local
//!   canary run (deploy/tests/local-canary.sh) can show the deploy gates
//!   rolling back a faulty build;
//! - `stall_every` / `stall_ms`: the whole service pauses now and then, as
//!   in a long garbage-collection or compaction pause: every request that
//!   arrives during the pause waits for its end. orchestra-bench's tests use
//!   it to show a pause in the tail latency of an open-loop run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use serde::{Deserialize, Serialize};

use crate::error::HttpError;

/// The `[testing]` section of a service; never set it in production.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestingConfig {
    /// Answer every Nth API request with a 500 (0: never). The local canary
    /// run uses it to make one build faulty.
    pub fail_every: u64,
    /// Every Nth API request starts a pause of the whole service (0: never).
    pub stall_every: u64,
    /// How long a pause lasts, in milliseconds.
    pub stall_ms: u64,
}

/// The fault injector `config` asks for, if any (with a warning).
pub fn from_config(config: &TestingConfig) -> Option<Arc<Faults>> {
    let stall = config.stall_every > 0 && config.stall_ms > 0;
    (config.fail_every > 0 || stall).then(|| {
        tracing::warn!(
            fail_every = config.fail_every,
            stall_every = config.stall_every,
            stall_ms = config.stall_ms,
            "[testing] is set: this service fails or stalls requests on purpose"
        );
        Arc::new(Faults {
            every: config.fail_every,
            seen: AtomicU64::new(0),
            stall_every: if stall { config.stall_every } else { 0 },
            stall: Duration::from_millis(config.stall_ms),
            paused_until: Mutex::new(None),
        })
    })
}

/// The error an injected fault answers with.
#[derive(Debug)]
struct InjectedFault;

impl std::fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected fault (testing.fail_every)")
    }
}

impl HttpError for InjectedFault {
    fn status(&self) -> axum::http::StatusCode {
        axum::http::StatusCode::INTERNAL_SERVER_ERROR
    }

    fn code(&self) -> &'static str {
        "internal"
    }
}

/// Fails every `every`-th request it sees; pauses the service every
/// `stall_every`-th.
#[derive(Debug)]
pub struct Faults {
    every: u64,
    seen: AtomicU64,
    stall_every: u64,
    stall: Duration,
    paused_until: Mutex<Option<Instant>>,
}

impl Faults {
    /// When the pause in force (started now by request `n`, or earlier) ends.
    fn pause_end(&self, n: u64) -> Option<Instant> {
        // Only `fail_every` set (the local canary run): no pauses, no lock.
        if self.stall_every == 0 {
            return None;
        }
        let mut until = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if n.is_multiple_of(self.stall_every) {
            *until = Some(until.map_or(now, |u| u.max(now)) + self.stall);
        }
        until.filter(|u| *u > now)
    }
}

/// Middleware: waits out a pause, then an injected 500 for every
/// `every`-th request, else the route.
pub async fn inject(State(faults): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let n = faults.seen.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(end) = faults.pause_end(n) {
        tokio::time::sleep_until(end.into()).await;
    }
    if faults.every > 0 && n.is_multiple_of(faults.every) {
        return crate::error::respond(&InjectedFault);
    }
    next.run(req).await
}
