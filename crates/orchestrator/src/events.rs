//! Run events: numbered, stored, announced.
//!
//! The instance running a run is the only writer of its events; it numbers
//! them from 1 and stores them in order (so every instance reads them in
//! order, through the store). Events that mark progress a caller waits for
//! (`run.started`, text deltas, the end) are stored at once; the others are
//! held and stored with the next of those, when the engine is about to wait
//! on a model or a tool ([`Emitter::flush`]), or with the run's outcome
//! ([`Emitter::take_held`]): one store write, and one record, per burst
//! instead of one per event. Waiters on this instance are woken through the
//! [`Hub`]; waiters elsewhere see the events when the store's change feed
//! brings them (they poll their replica).

use std::sync::Arc;

use orchestrator_api::RunEvent;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::Records;

/// Tells this instance's waiters that a run has news (events or status).
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Uuid>,
}

impl Default for Hub {
    fn default() -> Self {
        // Waiters only need "something changed": a lagging receiver re-reads.
        let (tx, _) = broadcast::channel(1024);
        Self { tx }
    }
}

impl Hub {
    /// Wakes the waiters of `run`.
    pub fn notify(&self, run: Uuid) {
        let _ = self.tx.send(run);
    }

    /// A receiver of every run's news.
    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.tx.subscribe()
    }
}

/// Waits on `news` (from [`Hub::subscribe`]) until `run` has news, news
/// may have been missed (a lagging receiver), or `until`: whichever is
/// first. Waiters re-read the store either way, so a missed wake-up costs
/// only the wait.
pub async fn news_of(news: &mut broadcast::Receiver<Uuid>, run: Uuid, until: tokio::time::Instant) {
    let _ = tokio::time::timeout_at(until, async {
        loop {
            match news.recv().await {
                Ok(r) if r == run => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                // The hub lives as long as the service: only the deadline ends this.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    })
    .await;
}

/// Writes one run's events.
pub struct Emitter {
    records: Arc<Records>,
    hub: Hub,
    run: Uuid,
    namespace: String,
    thread: Option<Uuid>,
    /// The last number used, and the events not stored yet; held across the
    /// store write so events land in order.
    state: tokio::sync::Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    seq: u64,
    held: Vec<RunEvent>,
}

/// Whether an event is stored at once rather than held for the next write.
fn urgent(kind: &str) -> bool {
    kind == orchestrator_api::event::RUN_STARTED
        || kind == orchestrator_api::event::MESSAGE_DELTA
        || orchestrator_api::event::ends_stream(kind)
}

impl Emitter {
    /// An emitter for `run`, whose last stored event is `last`.
    pub fn new(
        records: Arc<Records>,
        hub: Hub,
        run: Uuid,
        namespace: String,
        thread: Option<Uuid>,
        last: u64,
    ) -> Self {
        Self {
            records,
            hub,
            run,
            namespace,
            thread,
            state: tokio::sync::Mutex::new(Pending {
                seq: last,
                held: Vec::new(),
            }),
        }
    }

    /// Numbers event `kind` with `data`; stores it (with any held before it)
    /// at once if it is urgent, else holds it. Returns its number.
    pub async fn emit(&self, kind: &str, data: Value) -> Result<u64, ApiError> {
        let mut state = self.state.lock().await;
        let seq = self.push(&mut state, kind, data);
        if urgent(kind) {
            self.store(&mut state).await?;
        }
        Ok(seq)
    }

    /// Numbers event `kind` with `data` and holds it for the next write,
    /// whatever its kind (the caller knows a write follows soon).
    pub async fn hold(&self, kind: &str, data: Value) -> u64 {
        let mut state = self.state.lock().await;
        self.push(&mut state, kind, data)
    }

    fn push(&self, state: &mut Pending, kind: &str, data: Value) -> u64 {
        let seq = state.seq + 1;
        state.held.push(RunEvent {
            seq,
            run_id: self.run,
            event: kind.to_owned(),
            data,
            at: OffsetDateTime::now_utc(),
        });
        state.seq = seq;
        seq
    }

    /// Stores the held events (before waiting on a model or a tool, so
    /// watchers see how far the run got).
    pub async fn flush(&self) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        self.store(&mut state).await
    }

    async fn store(&self, state: &mut Pending) -> Result<(), ApiError> {
        if state.held.is_empty() {
            return Ok(());
        }
        self.records
            .add_events(&self.namespace, self.thread, self.run, &state.held)
            .await?;
        state.held.clear();
        self.hub.notify(self.run);
        Ok(())
    }

    /// At a run's end: the events still held (the caller stores them with
    /// the run's outcome, in the same write) and the last number used.
    pub async fn take_held(&self) -> (Vec<RunEvent>, u64) {
        let mut state = self.state.lock().await;
        (std::mem::take(&mut state.held), state.seq)
    }
}
