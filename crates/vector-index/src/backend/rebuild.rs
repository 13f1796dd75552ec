//! The background rebuild the two tombstoning backends (hnsw_rs and our
//! graph) share: when to start one, the log of writes made while it runs,
//! its worker thread, and the count of those finished.
//!
//! A rebuild turns the log on, copies the live vectors and builds a fresh
//! graph on its own thread; it then replays the log beside the searches
//! until [`REPLAY_TAIL`] writes are left, and those, with the swap, under
//! the backend's exclusive section ([`Rebuilds::finish`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::Key;

/// Fewer points than this never trigger a rebuild (too small to matter).
const MIN_POINTS_FOR_REBUILD: usize = 64;
/// A rebuild replays its log beside the searches until it is this short.
pub(crate) const REPLAY_TAIL: usize = 64;

/// A write made while a rebuild runs, to replay onto the fresh graph.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Insert(Key),
    Remove(Key),
}

/// Whether `dead` of `points` (tombstoned or not) passes `ratio`.
pub(crate) fn due(dead: usize, points: usize, ratio: f64) -> bool {
    points >= MIN_POINTS_FOR_REBUILD && dead as f64 > ratio * points as f64
}

/// The log, the worker and the count.
#[derive(Default)]
pub(crate) struct Rebuilds {
    /// `Some` while a rebuild runs: the writes it must replay.
    log: Mutex<Option<Vec<Op>>>,
    completed: AtomicU64,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Rebuilds {
    /// Logs `op` if a rebuild runs.
    pub(crate) fn log(&self, op: Op) {
        if let Some(log) = self.log.lock().as_mut() {
            log.push(op);
        }
    }

    /// Turns the log on and runs `work` on a thread named `name`, unless a
    /// rebuild runs already. With no thread to spare it does nothing: the
    /// tombstones stay, and a later removal tries again.
    pub(crate) fn start(&self, name: &str, work: impl FnOnce() + Send + 'static) {
        {
            let mut log = self.log.lock();
            if log.is_some() {
                return;
            }
            *log = Some(Vec::new());
        }
        match std::thread::Builder::new().name(name.into()).spawn(work) {
            Ok(handle) => {
                if let Some(previous) = self.worker.lock().replace(handle) {
                    let _ = previous.join();
                }
            }
            Err(_) => *self.log.lock() = None,
        }
    }

    /// The writes logged so far, if more than [`REPLAY_TAIL`]: to replay
    /// beside the searches.
    pub(crate) fn take_long_log(&self) -> Option<Vec<Op>> {
        match self.log.lock().as_mut() {
            Some(log) if log.len() > REPLAY_TAIL => Some(std::mem::take(log)),
            _ => None,
        }
    }

    /// Turns the log off and returns the writes left: called in the
    /// backend's exclusive section, which then replays them and swaps.
    pub(crate) fn finish(&self) -> Vec<Op> {
        self.log.lock().take().unwrap_or_default()
    }

    /// Counts a rebuild swapped in.
    pub(crate) fn swapped(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Rebuilds swapped in so far.
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Waits for a running rebuild to finish.
    pub(crate) fn wait_idle(&self) {
        let handle = self.worker.lock().take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}
