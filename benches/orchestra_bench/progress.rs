//! The live progress line on stderr (`indicatif`): elapsed time, request
//! rate, p95 and errors, twice a second. Drawn only on a terminal; `--quiet`
//! turns it off.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the line shows, read from the run as it goes.
pub trait Live: Send + Sync {
    /// Measured requests so far, failed ones, the p95 in ms, and warm-up requests.
    fn snapshot(&self) -> (u64, u64, f64, u64);
}

/// The progress line (or nothing).
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A line on stderr, or none when `quiet`.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar
        });
        Self { bar }
    }

    /// Shows set-up progress.
    pub fn setup(&self, done: usize, total: usize) {
        if let Some(b) = &self.bar {
            b.set_message(format!("set-up: {done}/{total} memories stored"));
            b.tick();
        }
    }

    /// Updates the line from `live` until the returned task is aborted.
    pub fn watch(&self, live: Arc<dyn Live>, start: Instant, duration: Duration) -> JoinHandle<()> {
        let bar = self.bar.clone();
        tokio::spawn(async move {
            let Some(bar) = bar else { return };
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let (n, errors, p95, warm) = live.snapshot();
                let now = Instant::now();
                let rate = (n - last.1.min(n)) as f64 / (now - last.0).as_secs_f64().max(1e-3);
                last = (now, n);
                let msg = if now < start {
                    format!(
                        "warm-up {:.0}s left: {warm} requests",
                        (start - now).as_secs_f64()
                    )
                } else {
                    format!(
                        "{:>5.1}s / {:.0}s  {rate:>7.0} req/s  p95 {p95:.2} ms  {n} requests  {errors} errors",
                        (now - start).as_secs_f64(),
                        duration.as_secs_f64()
                    )
                };
                bar.set_message(msg);
                bar.tick();
            }
        })
    }

    /// Clears the line.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
