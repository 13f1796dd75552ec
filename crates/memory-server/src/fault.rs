//! Test-only fault injection: makes a server answer a share of its API
//! requests with 500s, so the local canary run (deploy/tests/local-canary.sh)
//! can show the deploy gates rolling back a faulty build. Off unless
//! `testing.fail_every` is set; the server warns at start when it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

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
        return ApiError::Internal("injected fault (testing.fail_every)".into()).into_response();
    }
    next.run(req).await
}
