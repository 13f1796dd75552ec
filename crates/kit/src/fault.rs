//! Test-only fault injection: makes a service answer a share of its API
//! requests with 500s, so the local canary run (deploy/tests/local-canary.sh)
//! can show the deploy gates rolling back a faulty build. Off unless a
//! service's `testing.fail_every` is set ([`TestingConfig`]); it warns at
//! start when it is ([`from_config`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
}

/// The fault injector `config` asks for, if any (with a warning).
pub fn from_config(config: &TestingConfig) -> Option<Arc<Faults>> {
    (config.fail_every > 0).then(|| {
        tracing::warn!(
            every = config.fail_every,
            "testing.fail_every is set: this service fails requests on purpose"
        );
        Faults::every(config.fail_every)
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

/// Fails every `every`-th request it sees.
#[derive(Debug)]
pub struct Faults {
    every: u64,
    seen: AtomicU64,
}

impl Faults {
    /// Fails one request in `every` (which must be at least 1).
    pub fn every(every: u64) -> Arc<Self> {
        Arc::new(Self {
            every: every.max(1),
            seen: AtomicU64::new(0),
        })
    }
}

/// Middleware: an injected 500 for every `every`-th request, else the route.
pub async fn inject(State(faults): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let n = faults.seen.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_multiple_of(faults.every) {
        return crate::error::respond(&InjectedFault);
    }
    next.run(req).await
}
