//! A run: set-up (preloaded memories, sessions), warm-up, then the measured
//! load, open-loop or closed-loop, until the duration, the request cap or a
//! stop (Ctrl-C), whichever comes first.
//!
//! Open loop: request n is meant to leave at its scheduled time
//! ([`crate::schedule`]); it waits for a free slot (at most `concurrency`
//! in flight) and its latency runs from the scheduled time, so a stalled
//! server shows in the figures instead of slowing the load. Closed loop:
//! `concurrency` workers, each sending when its last answer came, latency
//! from the actual send (what most load tools report).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::auth::Credentials;
use crate::dataset::{Dataset, GROUPS};
use crate::progress::Progress;
use crate::record::{Outcome, Recorder, Sample};
use crate::report::{Machine, Report};
use crate::scenario::{LoadMode, Op, Scenario, TargetSpec};
use crate::schedule::Shape;
use crate::target::{Client, Target, Work, send_json};

/// Most preload batches in flight at once.
const PRELOAD_IN_FLIGHT: usize = 4;
/// Most sessions set up per namespace for the context operation.
const MAX_SETUP_SESSIONS: usize = 1_000;
/// How long a stop waits for requests in flight before abandoning them.
const DRAIN: Duration = Duration::from_secs(5);

/// Picks each request's operation, namespace and inputs.
pub struct Picker {
    ops: Vec<(Op, f64)>,
    namespaces: Vec<(String, f64)>,
    sessions: usize,
    dataset: Arc<Dataset>,
    rng: StdRng,
    stored: usize,
}

/// Cumulative weights, normalised to end at 1.
fn cumulative<T: Clone>(items: impl IntoIterator<Item = (T, f64)>) -> Vec<(T, f64)> {
    let items: Vec<(T, f64)> = items.into_iter().collect();
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut acc = 0.0;
    items
        .into_iter()
        .map(|(t, w)| {
            acc += w / total;
            (t, acc)
        })
        .collect()
}

fn pick<T: Clone>(items: &[(T, f64)], x: f64) -> Option<T> {
    let i = items
        .partition_point(|(_, c)| *c < x)
        .min(items.len().saturating_sub(1));
    items.get(i).map(|(t, _)| t.clone())
}

impl Picker {
    /// A picker over `scenario`'s weights and `namespaces` (Zipf-skewed when asked).
    pub fn new(scenario: &Scenario, namespaces: &[String], dataset: Arc<Dataset>) -> Self {
        let ops = cumulative(
            scenario
                .ops_in_use()
                .into_iter()
                .map(|op| (op, scenario.operations[&op])),
        );
        let s = scenario.tenants.zipf;
        let namespaces = cumulative(
            namespaces
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), 1.0 / ((i + 1) as f64).powf(s))),
        );
        Self {
            ops,
            namespaces,
            sessions: scenario.dataset.sessions,
            dataset,
            rng: StdRng::seed_from_u64(scenario.dataset.seed),
            stored: 0,
        }
    }

    /// The next request.
    pub fn next(&mut self) -> Work {
        let op = pick(&self.ops, self.rng.random()).unwrap_or(Op::Search);
        let namespace = pick(&self.namespaces, self.rng.random()).unwrap_or_default();
        let session = format!("s{}", self.rng.random_range(0..self.sessions));
        let text = match op {
            Op::Store | Op::StoreBatch | Op::SessionAppend => {
                self.stored += 1;
                self.dataset.memory_text(self.stored, &mut self.rng)
            }
            _ => self.dataset.query_text(&mut self.rng),
        };
        let n_queries = self.dataset.n_queries().max(1);
        Work {
            op,
            namespace,
            session,
            text,
            group: self.rng.random_range(0..GROUPS),
            query: self.rng.random_range(0..n_queries),
        }
    }
}

/// The namespaces of a run: `<prefix>[-<run id>][-<i>]`.
pub fn namespaces(scenario: &Scenario) -> Vec<String> {
    let t = &scenario.tenants;
    let base = if t.fresh {
        format!(
            "{}-{}",
            t.prefix,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    } else {
        t.prefix.clone()
    };
    if t.namespaces == 1 {
        vec![base]
    } else {
        (0..t.namespaces).map(|i| format!("{base}-{i}")).collect()
    }
}

/// Stores the preload and opens the sessions the context operation reads;
/// returns the memories stored.
async fn setup(
    scenario: &Scenario,
    client: &Arc<Client>,
    dataset: &Arc<Dataset>,
    namespaces: &[String],
    progress: &Progress,
) -> Result<u64, String> {
    if matches!(scenario.target, TargetSpec::Orchestrator { .. }) {
        return Ok(0);
    }
    let per_ns = dataset.preload_count(scenario.dataset.preload);
    let batch = scenario.dataset.batch;
    let mut rng = StdRng::seed_from_u64(scenario.dataset.seed ^ 0x5eed);
    let mut set = JoinSet::new();
    let mut done = 0usize;
    let total = per_ns * namespaces.len();
    for ns in namespaces {
        for start in (0..per_ns).step_by(batch) {
            let memories: Vec<Value> = (start..(start + batch).min(per_ns))
                .map(|i| crate::target::with_namespace(ns, dataset.memory(i, &mut rng)))
                .collect();
            let n = memories.len();
            let req = client
                .request(Method::POST, "/v1/memories", "/v1/memories")
                .json(&json!({"memories": memories}));
            set.spawn(async move { send_json(req).await.map(|_| n) });
            done += settle(&mut set, PRELOAD_IN_FLIGHT - 1).await?;
            progress.setup(done, total);
        }
        if scenario.ops_in_use().contains(&Op::Context) {
            for s in 0..scenario.dataset.sessions.min(MAX_SETUP_SESSIONS) {
                let body =
                    json!({"namespace": ns, "messages": [{"role": "user", "content": "hello"}]});
                let req = client
                    .request(
                        Method::POST,
                        "/v1/sessions/{id}/messages",
                        &format!("/v1/sessions/s{s}/messages"),
                    )
                    .json(&body);
                set.spawn(async move { send_json(req).await.map(|_| 0) });
                done += settle(&mut set, PRELOAD_IN_FLIGHT - 1).await?;
            }
        }
    }
    done += settle(&mut set, 0).await?;
    progress.setup(done, total);
    Ok(done as u64)
}

/// Waits until at most `keep` set-up requests are in flight; returns the
/// memories the finished ones stored, or the first failure.
async fn settle(set: &mut JoinSet<Result<usize, String>>, keep: usize) -> Result<usize, String> {
    let mut stored = 0;
    while set.len() > keep {
        match set.join_next().await {
            Some(Ok(Ok(n))) => stored += n,
            Some(Ok(Err(e))) => return Err(format!("set-up request failed: {e}")),
            Some(Err(e)) => return Err(format!("set-up task failed: {e}")),
            None => break,
        }
    }
    Ok(stored)
}

/// What the measured phase shares between tasks.
struct Shared {
    target: Target,
    recorder: Mutex<Recorder>,
    warmup: AtomicU64,
    /// When sending stopped (the end, the request cap or a stop), first noted.
    stopped: Mutex<Option<Instant>>,
}

impl Shared {
    /// Notes that sending stopped now, unless it already had.
    fn stop_sending(&self) {
        if let Ok(mut s) = self.stopped.lock() {
            s.get_or_insert_with(Instant::now);
        }
    }

    /// Does `work` meant for `intended` (`start` is the measured start) and records it.
    async fn one(&self, work: Work, intended: Instant, start: Instant) {
        let called = Instant::now();
        let result = self.target.execute(&work).await;
        let latency = intended.elapsed();
        if intended < start {
            self.warmup.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (outcome, first_event, recall) = match result {
            Ok(a) => (
                Outcome::Ok,
                // From the intended time: the wait for a slot counts here too.
                a.first_event.map(|f| f + (called - intended)),
                a.recall,
            ),
            Err(kind) => (Outcome::Error(kind), None, None),
        };
        let sample = Sample {
            op: work.op,
            at: intended - start,
            latency,
            outcome,
            first_event,
            recall,
        };
        if let Ok(mut r) = self.recorder.lock() {
            r.add(&sample);
        }
    }
}

/// Runs `scenario` against `url`; stops early when `stop` is set.
pub async fn run(
    scenario: &Scenario,
    url: &str,
    credentials: Credentials,
    stop: Arc<AtomicBool>,
    progress: Progress,
) -> Result<Report, String> {
    let l = &scenario.load;
    let dataset = Arc::new(Dataset::load(&scenario.dataset)?);
    let timeout = Duration::from_secs_f64(l.timeout_secs);
    let client = Arc::new(Client::new(url, credentials, timeout, l.concurrency)?);
    let target = Target::connect(scenario, Arc::clone(&client), Arc::clone(&dataset)).await?;
    let names = namespaces(scenario);
    let setup_started = Instant::now();
    let preloaded = setup(scenario, &client, &dataset, &names, &progress).await?;
    let setup_secs = setup_started.elapsed().as_secs_f64();

    let shared = Arc::new(Shared {
        target,
        recorder: Mutex::new(Recorder::new(crate::record::step_for(
            scenario.duration_secs(),
        ))),
        warmup: AtomicU64::new(0),
        stopped: Mutex::new(None),
    });
    let picker = Picker::new(scenario, &names, dataset);
    let warmup = Duration::from_secs_f64(l.warmup_secs);
    let duration = Duration::from_secs_f64(scenario.duration_secs());
    let start = Instant::now() + warmup;
    let end = start + duration;
    let started_at = time::OffsetDateTime::now_utc() + warmup;
    let ticker = progress.watch(
        Arc::clone(&shared) as Arc<dyn crate::progress::Live>,
        start,
        duration,
    );

    match (l.mode, Shape::of(l, duration.as_secs_f64())) {
        (LoadMode::Open, Some(shape)) => {
            open_loop(&shared, picker, &shape, start, end, scenario, &stop).await
        }
        _ => closed_loop(&shared, picker, start, end, scenario, &stop).await,
    }
    ticker.abort();
    // The measured time ends when sending did (a stop or the request cap
    // can come before the end), not when the last answer came.
    let stopped = shared
        .stopped
        .lock()
        .ok()
        .and_then(|s| *s)
        .unwrap_or_else(Instant::now);
    let measured = stopped.min(end).saturating_duration_since(start);
    let interrupted = stop.load(Ordering::Relaxed);
    progress.finish();

    let rec = shared
        .recorder
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    let machine = Machine {
        host: hostname(),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        started_at: started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        duration_secs: measured.as_secs_f64(),
        interrupted,
    };
    let mut report = Report::new(scenario, url, vec![machine], &rec, client.routes());
    report.setup = crate::report::Setup {
        memories: preloaded,
        secs: if preloaded > 0 { setup_secs } else { 0.0 },
    };
    Ok(report)
}

/// Scheduled sends at most `concurrency` in flight; latency from the schedule.
async fn open_loop(
    shared: &Arc<Shared>,
    mut picker: Picker,
    shape: &Shape,
    start: Instant,
    end: Instant,
    scenario: &Scenario,
    stop: &AtomicBool,
) {
    let l = &scenario.load;
    let slots = Arc::new(Semaphore::new(l.concurrency));
    let cap = scenario.max_requests();
    let mut set = JoinSet::new();
    let mut sent = 0u64;
    // Seconds from the measured start; warm-up runs at the shape's first rate.
    let mut t = -l.warmup_secs;
    loop {
        let intended = if t < 0.0 {
            start - Duration::from_secs_f64(-t)
        } else {
            start + Duration::from_secs_f64(t)
        };
        if intended >= end || sent >= cap || stop.load(Ordering::Relaxed) {
            shared.stop_sending();
            break;
        }
        tokio::time::sleep_until(intended).await;
        // A request that finds every slot busy waits, and is noted as late.
        let (permit, waited) = match Arc::clone(&slots).try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => match wait_for_slot(&slots, stop).await {
                Some(p) => (p, true),
                None => {
                    shared.stop_sending();
                    break;
                }
            },
        };
        if intended >= start {
            sent += 1;
            if waited && let Ok(mut r) = shared.recorder.lock() {
                r.late(intended.elapsed());
            }
        }
        let work = picker.next();
        let s = Arc::clone(shared);
        set.spawn(async move {
            s.one(work, intended, start).await;
            drop(permit);
        });
        while set.try_join_next().is_some() {}
        t = shape.next(t);
    }
    drain(set, stop.load(Ordering::Relaxed), l.timeout_secs).await;
}

/// A free slot, or `None` once `stop` is set (checked every 100 ms, so a
/// Ctrl-C is seen even while every request in flight hangs).
async fn wait_for_slot(slots: &Arc<Semaphore>, stop: &AtomicBool) -> Option<OwnedSemaphorePermit> {
    loop {
        match tokio::time::timeout(
            Duration::from_millis(100),
            Arc::clone(slots).acquire_owned(),
        )
        .await
        {
            Ok(p) => return p.ok(),
            Err(_) if stop.load(Ordering::Relaxed) => return None,
            Err(_) => {}
        }
    }
}

/// `concurrency` workers, each sending when its last answer came.
async fn closed_loop(
    shared: &Arc<Shared>,
    picker: Picker,
    start: Instant,
    end: Instant,
    scenario: &Scenario,
    stop: &Arc<AtomicBool>,
) {
    let picker = Arc::new(Mutex::new(picker));
    let sent = Arc::new(AtomicU64::new(0));
    let cap = scenario.max_requests();
    let mut set = JoinSet::new();
    for _ in 0..scenario.load.concurrency {
        let (s, p, sent, stop) = (
            Arc::clone(shared),
            Arc::clone(&picker),
            Arc::clone(&sent),
            Arc::clone(stop),
        );
        set.spawn(async move {
            loop {
                let now = Instant::now();
                if now >= end
                    || stop.load(Ordering::Relaxed)
                    || (now >= start && sent.fetch_add(1, Ordering::Relaxed) >= cap)
                {
                    s.stop_sending();
                    return;
                }
                let Some(work) = p.lock().ok().map(|mut p| p.next()) else {
                    return;
                };
                s.one(work, now, start).await;
            }
        });
    }
    drain(
        set,
        stop.load(Ordering::Relaxed),
        scenario.load.timeout_secs,
    )
    .await;
}

/// Waits for requests in flight (each ends within its timeout); after a
/// stop, abandons them after [`DRAIN`].
async fn drain(mut set: JoinSet<()>, stopped: bool, timeout_secs: f64) {
    let wait = if stopped {
        DRAIN
    } else {
        Duration::from_secs_f64(timeout_secs) + Duration::from_secs(1)
    };
    let all = async { while set.join_next().await.is_some() {} };
    if tokio::time::timeout(wait, all).await.is_err() {
        set.abort_all();
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

impl crate::progress::Live for Shared {
    fn snapshot(&self) -> (u64, u64, f64, u64) {
        let warm = self.warmup.load(Ordering::Relaxed);
        self.recorder.lock().map_or((0, 0, 0.0, warm), |r| {
            let p95 = r.all_latency().value_at_quantile(0.95) as f64 / 1e3;
            (r.requests(), r.failed(), p95, warm)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> Scenario {
        let s: Scenario = toml::from_str(text).unwrap();
        s.check().unwrap();
        s
    }

    #[test]
    fn weights_and_a_zipf_skew_pick_as_asked() {
        let s = scenario(
            "name = \"t\"\n[load]\nmode = \"closed\"\nduration_secs = 1\n[tenants]\nnamespaces = 4\nzipf = 1.0\n[operations]\nsearch = 3\nstore = 1\n",
        );
        let names = namespaces(&s);
        assert_eq!(names.len(), 4);
        assert!(names.iter().all(|n| n.starts_with("bench-")), "{names:?}");
        assert!(names[1].ends_with("-1") && names[0] != names[1]);
        let mut p = Picker::new(&s, &names, Arc::new(Dataset::Generated));
        let (mut by_ns, mut searches) = (std::collections::HashMap::new(), 0);
        let n = 40_000;
        for _ in 0..n {
            let w = p.next();
            *by_ns.entry(w.namespace).or_insert(0usize) += 1;
            searches += usize::from(w.op == Op::Search);
        }
        // Zipf 1 over 4: weights 1, 1/2, 1/3, 1/4 of 25/12.
        for (i, name) in names.iter().enumerate() {
            let want = (1.0 / (i + 1) as f64) / (25.0 / 12.0);
            let got = by_ns[name] as f64 / n as f64;
            assert!((got - want).abs() < 0.01, "{name}: {got} vs {want}");
        }
        let share = searches as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.01, "{share}");
    }

    #[test]
    fn one_namespace_without_fresh_is_the_prefix_itself() {
        let s = scenario(
            "name = \"t\"\n[load]\nmode = \"closed\"\nduration_secs = 1\n[tenants]\nprefix = \"team-a\"\nfresh = false\n[operations]\nsearch = 1\n",
        );
        assert_eq!(namespaces(&s), vec!["team-a".to_owned()]);
    }
}
