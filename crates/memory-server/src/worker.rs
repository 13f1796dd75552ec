//! The job workers of one instance: each takes a claimable job from the
//! shared queue ([`crate::jobs`]), runs it while renewing its lease, and
//! records the outcome: done, retried later with backoff, or failed (the
//! dead-letter list). A job whose namespace has spent its hourly model
//! budget waits, untouched, until the next hour.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use vector_index::durable::now_millis;

use crate::config::JobsConfig;
use crate::epoch_ms::from_millis;
use crate::jobs::{Held, Stop};
use crate::model::JobState;
use crate::service::MemoryService;

/// Starts `settings.workers` workers named after `instance`; they stop with `stop`.
pub fn spawn(
    service: Arc<MemoryService>,
    settings: JobsConfig,
    instance: String,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks: Vec<_> = (0..settings.workers)
        .map(|n| {
            let w = Worker {
                service: Arc::clone(&service),
                settings: settings.clone(),
                name: format!("{instance}/{n}"),
                later: std::sync::Mutex::default(),
            };
            let stop = stop.clone();
            tokio::spawn(async move { w.run(stop).await })
        })
        .collect();
    if settings.workers > 0 {
        tasks.push(tokio::spawn(idle_scanner(service, settings, stop)));
    }
    tasks
}

/// How far back the first idle scan after a start looks: sessions that went
/// idle while no instance was running, within this, are still queued.
const IDLE_LOOKBACK_MS: i64 = 3_600_000;

/// Queues extractions of sessions that went idle, every poll, over the
/// window since the previous scan (every instance scans; queuing is idempotent).
async fn idle_scanner(service: Arc<MemoryService>, settings: JobsConfig, stop: CancellationToken) {
    let every = Duration::from_millis(settings.poll_ms.max(200));
    let mut after = now_millis().saturating_sub(IDLE_LOOKBACK_MS);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let until = now_millis();
        match service.queue_idle_extractions(after, until).await {
            Ok(n) if n > 0 => tracing::debug!(sessions = n, "idle sessions queued for extraction"),
            Ok(_) => {}
            // The same window is scanned again next time.
            Err(e) => {
                tracing::warn!(error = %e, "idle scan failed");
                continue;
            }
        }
        after = until;
    }
}

struct Worker {
    service: Arc<MemoryService>,
    settings: JobsConfig,
    /// `<instance>/<n>`, written into the leases it holds.
    name: String,
    /// Jobs read and found not claimable, with the instant (ms) until which
    /// they cannot be (their `not_before`, or a live lease's end): not read
    /// again before it, so a backlog waiting for its budget or a retry costs
    /// no store reads per poll. Only this worker's view; stale at worst
    /// until that instant, which the job itself named.
    later: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, i64>>,
}

fn lease_ms(s: &JobsConfig) -> i64 {
    i64::try_from(s.lease_ms).unwrap_or(i64::MAX)
}

impl Worker {
    async fn run(self, stop: CancellationToken) {
        let idle = Duration::from_millis(self.settings.poll_ms);
        loop {
            let worked = match self.once().await {
                Ok(worked) => worked,
                Err(e) => {
                    tracing::warn!(error = %e, worker = %self.name, "job queue unreachable");
                    false
                }
            };
            if !worked {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(idle) => {}
                    () = self.service.jobs().queued() => {}
                }
            } else if stop.is_cancelled() {
                return;
            }
        }
    }

    /// Claims and runs one job; whether there was one.
    async fn once(&self) -> Result<bool, crate::error::ApiError> {
        let jobs = self.service.jobs();
        let now = now_millis();
        if let Ok(mut later) = self.later.lock() {
            later.retain(|_, until| *until > now);
        }
        for id in jobs.candidates() {
            let skip = self.later.lock().is_ok_and(|later| later.contains_key(&id));
            if skip {
                continue;
            }
            let Some((record, version)) = jobs.get(id).await? else {
                continue;
            };
            let Some(until) = record.claimable_at() else {
                continue;
            };
            if until > now_millis() {
                if let Ok(mut later) = self.later.lock() {
                    later.insert(id, until);
                }
                continue;
            }
            if self.wait_for_budget(&record, version).await? {
                continue;
            }
            let read = (record, version);
            let Some(held) = jobs
                .claim(read, &self.name, lease_ms(&self.settings))
                .await?
            else {
                continue; // another worker won it
            };
            self.execute(held).await;
            return Ok(true);
        }
        Ok(false)
    }

    /// Whether the job's namespace has spent its model budget; if so the job
    /// is left queued until the next hour, saying why.
    async fn wait_for_budget(
        &self,
        record: &crate::jobs::JobRecord,
        version: u64,
    ) -> Result<bool, crate::error::ApiError> {
        let ns = &record.job.namespace;
        let policy = self.service.policies().of(ns).await?.policy;
        let Some(b) = policy.budget else {
            return Ok(false);
        };
        let Some((until, why)) = self
            .service
            .jobs()
            .over_budget(ns, b.calls_per_hour, b.tokens_per_hour)
            .await?
        else {
            return Ok(false);
        };
        let mut waiting = record.clone();
        waiting.job.state = JobState::Queued;
        waiting.job.not_before = from_millis(until);
        waiting.job.error = Some(format!("waiting: {why}"));
        let mut held = Held {
            record: waiting,
            version,
        };
        // Lost races are fine: whoever won decided.
        let _ = self.service.jobs().save(&mut held).await;
        tracing::info!(job = %record.job.id, namespace = %ns, "{why}; the job waits");
        Ok(true)
    }

    /// Runs a claimed job with its lease renewed, then records the outcome.
    async fn execute(&self, held: Held) {
        let id = held.record.job.id;
        let held = Arc::new(Mutex::new(held));
        let renewing = CancellationToken::new();
        let renewal = tokio::spawn(renew(
            Arc::clone(&self.service),
            Arc::clone(&held),
            self.settings.clone(),
            renewing.clone(),
        ));
        let span = tracing::info_span!("job", %id, worker = %self.name);
        let result = tracing::Instrument::instrument(
            self.service
                .run_job(&held, Duration::from_millis(self.settings.step_delay_ms)),
            span,
        )
        .await;
        renewing.cancel();
        let lost_while_renewing = renewal.await.unwrap_or(false);
        let metrics = self.service.metrics();
        match result {
            Ok(()) => {
                metrics.job_run("done");
                tracing::info!(%id, "job done");
            }
            Err(Stop::LeaseLost) => {
                tracing::warn!(%id, "another worker took the job over; this run stopped");
            }
            Err(Stop::Failed(_)) if lost_while_renewing => {
                tracing::warn!(%id, "the job's lease was lost; this run stopped");
            }
            Err(Stop::Wait(why)) => {
                let mut h = held.lock().await;
                h.record.job.state = JobState::Queued;
                h.record.job.attempts = h.record.job.attempts.saturating_sub(1);
                h.record.job.error = Some(why);
                h.record.job.not_before =
                    OffsetDateTime::now_utc() + Duration::from_millis(self.settings.backoff_ms);
                h.record.owner = None;
                if let Err(e) = self.service.jobs().save(&mut h).await {
                    tracing::debug!(%id, error = %e, "cannot put a waiting job back");
                }
            }
            Err(Stop::Failed(error)) => {
                let mut h = held.lock().await;
                let attempts = h.record.job.attempts;
                h.record.job.error = Some(error.clone());
                h.record.owner = None;
                if attempts >= self.settings.max_attempts {
                    h.record.job.state = JobState::Failed;
                    metrics.job_run("failed");
                    tracing::error!(%id, attempts, %error, "job failed; dead-lettered");
                } else {
                    let backoff = self
                        .settings
                        .backoff_ms
                        .saturating_mul(1 << (attempts.saturating_sub(1).min(16)));
                    h.record.job.state = JobState::Queued;
                    h.record.job.not_before =
                        OffsetDateTime::now_utc() + Duration::from_millis(backoff.min(3_600_000));
                    metrics.job_run("retried");
                    tracing::warn!(%id, attempts, %error, backoff_ms = backoff, "job failed; retried later");
                }
                if let Err(e) = self.service.jobs().save(&mut h).await {
                    tracing::warn!(%id, error = %e, "cannot record the job's failure; its lease will pass and it runs again");
                }
            }
        }
    }
}

/// Renews the held job's lease every third of it until `stop`; returns
/// whether the lease was lost (another worker took the job).
async fn renew(
    service: Arc<MemoryService>,
    held: Arc<Mutex<Held>>,
    settings: JobsConfig,
    stop: CancellationToken,
) -> bool {
    let every = Duration::from_millis(settings.lease_ms / 3);
    loop {
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(every) => {}
        }
        let mut h = held.lock().await;
        if h.record.job.state != JobState::Running {
            return false;
        }
        h.record.lease_until = now_millis().saturating_add(lease_ms(&settings));
        match service.jobs().save(&mut h).await {
            Ok(()) => {}
            Err(vector_index::IndexError::VersionConflict { .. }) => return true,
            // The store may be back before the lease passes.
            Err(e) => tracing::warn!(error = %e, "cannot renew a job's lease"),
        }
    }
}
