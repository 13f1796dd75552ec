//! Prometheus metrics (`GET /metrics`): the HTTP request metrics of
//! `kit::metrics`, registered under `memory_`, plus store and embedder
//! latency and errors, index size and replication state.

use std::sync::Arc;
use std::time::Instant;

use kit::metrics::{HttpMetrics, latency_histogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use vector_index::durable::DurableCollection;
use vector_index::store::AnyStore;

/// Labels of a store operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
}

/// Labels of a near-duplicate found on create.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NearLabels {
    /// `refused` (reported, not stored), `stored` (the caller insisted) or
    /// `merging` (stored, merged by a job).
    outcome: &'static str,
}

/// Labels of an entry-cache lookup.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    /// `hit` (found decoded) or `miss` (read from the store).
    outcome: &'static str,
}

/// Labels of a job count or outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    /// `queued`, `running`, `done`, `failed` (gauge); `done`, `retried`, `failed` (outcomes).
    state: &'static str,
}

/// Labels of an extraction decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

/// Labels of model token counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    /// `input` or `output`.
    direction: &'static str,
}

/// The server's metrics.
pub struct Metrics {
    jobs: Family<StateLabels, Gauge>,
    job_outcomes: Family<StateLabels, Counter>,
    decisions: Family<ActionLabels, Counter>,
    llm_tokens: Family<TokenLabels, Counter>,
    llm_calls: Counter,
    llm_cost: Counter<f64, std::sync::atomic::AtomicU64>,
    registry: Registry,
    http: Arc<HttpMetrics>,
    store_seconds: Family<OpLabels, Histogram, fn() -> Histogram>,
    store_errors: Family<OpLabels, Counter>,
    embed_seconds: Histogram,
    embed_errors: Counter,
    unreadable: Counter,
    export_failures: Counter,
    near_duplicates: Family<NearLabels, Counter>,
    memories: Gauge,
    ready: Gauge,
    replication_lag_ms: Gauge,
    resyncs: Gauge,
    keyword_bytes: Gauge,
    graph_bytes: Gauge,
    entry_cache_bytes: Gauge,
    entry_cache_lookups: Family<LookupLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("memory");
        // Registered first, so the exposition keeps its order.
        let http = HttpMetrics::register(&mut registry);
        let store_seconds = Family::<OpLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let store_errors = Family::<OpLabels, Counter>::default();
        let embed_seconds = latency_histogram();
        let embed_errors = Counter::default();
        let (unreadable, export_failures) = (Counter::default(), Counter::default());
        let near_duplicates = Family::<NearLabels, Counter>::default();
        let (memories, ready, replication_lag_ms, resyncs, keyword_bytes, graph_bytes) = (
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
        );
        registry.register(
            "store_operation_duration_seconds",
            "Store (and index) operation latency",
            store_seconds.clone(),
        );
        registry.register(
            "store_errors",
            "Failed store operations",
            store_errors.clone(),
        );
        registry.register(
            "embed_duration_seconds",
            "Embedding call latency (one call embeds a batch)",
            embed_seconds.clone(),
        );
        registry.register(
            "embed_errors",
            "Failed embedding calls",
            embed_errors.clone(),
        );
        registry.register(
            "unreadable_records",
            "Stored records skipped because they could not be decoded (each is logged)",
            unreadable.clone(),
        );
        registry.register(
            "export_failures",
            "Exports broken off after their headers were sent (each is logged)",
            export_failures.clone(),
        );
        registry.register(
            "near_duplicates",
            "Near-duplicates found on create, by outcome (refused: reported, not stored; stored: the caller insisted; merging: stored and merged by a job)",
            near_duplicates.clone(),
        );
        registry.register(
            "index_memories",
            "Memories in the in-memory index",
            memories.clone(),
        );
        registry.register(
            "index_keyword_bytes",
            "Approximate bytes of the keyword (BM25) index, text excluded",
            keyword_bytes.clone(),
        );
        registry.register(
            "index_graph_bytes",
            "Approximate bytes of the vector graph (vectors as quantized, and links)",
            graph_bytes.clone(),
        );
        let entry_cache_bytes = Gauge::default();
        let entry_cache_lookups = Family::<LookupLabels, Counter>::default();
        registry.register(
            "store_entry_cache_bytes",
            "Estimated bytes of the embedded store's decoded entries (storage.entry_cache_mib)",
            entry_cache_bytes.clone(),
        );
        registry.register(
            "store_entry_cache_lookups",
            "Entries a search, list or context read asked of the embedded store's cache, by outcome (hit, miss)",
            entry_cache_lookups.clone(),
        );
        registry.register(
            "index_ready",
            "1 when the index has caught up",
            ready.clone(),
        );
        registry.register(
            "replication_lag_milliseconds",
            "Age of the last applied change-stream entry when applied",
            replication_lag_ms.clone(),
        );
        registry.register(
            "replication_resyncs",
            "Full resyncs after falling behind a trimmed stream",
            resyncs.clone(),
        );
        let jobs = Family::<StateLabels, Gauge>::default();
        let job_outcomes = Family::<StateLabels, Counter>::default();
        let decisions = Family::<ActionLabels, Counter>::default();
        let llm_tokens = Family::<TokenLabels, Counter>::default();
        let llm_calls = Counter::default();
        let llm_cost = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "jobs",
            "Background jobs in the shared queue, by state (failed: the dead-letter list)",
            jobs.clone(),
        );
        registry.register(
            "job_runs",
            "Job runs finished on this instance, by outcome (done, retried, failed)",
            job_outcomes.clone(),
        );
        registry.register(
            "extraction_decisions",
            "Extraction decisions applied on this instance, by action",
            decisions.clone(),
        );
        registry.register(
            "llm_calls",
            "Chat-model calls made by jobs on this instance",
            llm_calls.clone(),
        );
        registry.register(
            "llm_tokens",
            "Chat-model tokens used by jobs on this instance",
            llm_tokens.clone(),
        );
        registry.register(
            "llm_cost_usd",
            "Chat-model cost in US dollars at the configured prices",
            llm_cost.clone(),
        );
        Self {
            jobs,
            job_outcomes,
            decisions,
            llm_tokens,
            llm_calls,
            llm_cost,
            registry,
            http,
            store_seconds,
            store_errors,
            embed_seconds,
            embed_errors,
            unreadable,
            export_failures,
            near_duplicates,
            memories,
            ready,
            replication_lag_ms,
            resyncs,
            keyword_bytes,
            graph_bytes,
            entry_cache_bytes,
            entry_cache_lookups,
        }
    }

    /// The HTTP request metrics, for `kit::metrics::track`.
    pub fn http(&self) -> Arc<HttpMetrics> {
        Arc::clone(&self.http)
    }

    /// Records one store operation.
    pub fn store_op(&self, op: &str, started: Instant, ok: bool) {
        let labels = OpLabels { op: op.to_owned() };
        self.store_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if !ok {
            self.store_errors.get_or_create(&labels).inc();
        }
    }

    /// Counts a stored record skipped because it could not be decoded.
    pub fn unreadable_record(&self) {
        self.unreadable.inc();
    }

    /// Counts an export broken off after its headers were sent.
    pub fn export_failed(&self) {
        self.export_failures.inc();
    }

    /// Counts a near-duplicate found on create: `refused`, `stored` (the
    /// caller insisted) or `merging` (stored, a merge job queued).
    pub fn near_duplicate(&self, outcome: &'static str) {
        self.near_duplicates
            .get_or_create(&NearLabels { outcome })
            .inc();
    }

    /// Counts a job run's outcome: `done`, `retried` or `failed`.
    pub fn job_run(&self, outcome: &'static str) {
        self.job_outcomes
            .get_or_create(&StateLabels { state: outcome })
            .inc();
    }

    /// Counts an applied extraction decision.
    pub fn decision(&self, action: crate::model::Action) {
        let action = match action {
            crate::model::Action::Add => "add",
            crate::model::Action::Update => "update",
            crate::model::Action::Supersede => "supersede",
            crate::model::Action::Ignore => "ignore",
        };
        self.decisions.get_or_create(&ActionLabels { action }).inc();
    }

    /// Counts one model call's tokens and cost.
    pub fn llm_call(&self, input_tokens: u64, output_tokens: u64, cost_usd: f64) {
        self.llm_calls.inc();
        for (direction, n) in [("input", input_tokens), ("output", output_tokens)] {
            self.llm_tokens
                .get_or_create(&TokenLabels { direction })
                .inc_by(n);
        }
        self.llm_cost.inc_by(cost_usd);
    }

    /// Records one embedding call.
    pub fn embed(&self, started: Instant, ok: bool) {
        self.embed_seconds.observe(started.elapsed().as_secs_f64());
        if !ok {
            self.embed_errors.inc();
        }
    }

    /// The Prometheus text exposition, with gauges read from `collection` now.
    pub fn render(
        &self,
        collection: &DurableCollection<AnyStore>,
        jobs: crate::jobs::Counts,
    ) -> String {
        let r = collection.replication();
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (state, n) in [
            ("queued", jobs.queued),
            ("running", jobs.running),
            ("done", jobs.done),
            ("failed", jobs.failed),
        ] {
            self.jobs
                .get_or_create(&StateLabels { state })
                .set(clamp(n));
        }
        self.memories.set(clamp(collection.index().len()));
        self.ready.set(i64::from(
            collection.is_ready() && collection.store_reachable(),
        ));
        self.replication_lag_ms.set(clamp(r.lag_ms));
        self.resyncs.set(clamp(r.resyncs));
        let stats = collection.index().stats();
        self.keyword_bytes.set(clamp(stats.lexical_bytes as u64));
        self.graph_bytes.set(clamp(stats.backend_bytes as u64));
        if let Some(cache) = collection.store().entry_cache() {
            self.entry_cache_bytes.set(clamp(cache.bytes));
            // The store counts; the counters follow it (fetch_max: two
            // scrapes at once never count a lookup twice).
            for (outcome, n) in [("hit", cache.hits), ("miss", cache.misses)] {
                self.entry_cache_lookups
                    .get_or_create(&LookupLabels { outcome })
                    .inner()
                    .fetch_max(n, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
