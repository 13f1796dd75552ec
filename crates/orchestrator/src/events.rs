//! Run events: numbered, stored, announced.
//!
//! The instance running a run is the only writer of its events; it numbers
//! them from 1 and stores each before the next (so every instance reads them
//! in order, through the store). Waiters on this instance are woken at once
//! through the [`Hub`]; waiters elsewhere see the events when the store's
//! change feed brings them (they poll their replica).

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

/// Writes one run's events.
pub struct Emitter {
    records: Arc<Records>,
    hub: Hub,
    run: Uuid,
    namespace: String,
    thread: Option<Uuid>,
    /// The last number used; held across the store write so events land in order.
    seq: tokio::sync::Mutex<u64>,
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
            seq: tokio::sync::Mutex::new(last),
        }
    }

    /// Stores event `kind` with `data`; returns its number.
    pub async fn emit(&self, kind: &str, data: Value) -> Result<u64, ApiError> {
        let mut seq = self.seq.lock().await;
        let event = RunEvent {
            seq: *seq + 1,
            run_id: self.run,
            event: kind.to_owned(),
            data,
            at: OffsetDateTime::now_utc(),
        };
        self.records
            .add_events(&self.namespace, self.thread, std::slice::from_ref(&event))
            .await?;
        *seq += 1;
        self.hub.notify(self.run);
        Ok(*seq)
    }

    /// The last number used.
    pub async fn last(&self) -> u64 {
        *self.seq.lock().await
    }
}
