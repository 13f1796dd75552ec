//! Prometheus metrics (`GET /metrics`) under `orchestrator_`: the HTTP
//! request metrics of `kit::metrics`, plus runs by agent and outcome, run
//! latency, model calls (latency, tokens, cost) and tool calls.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use kit::metrics::{HttpMetrics, latency_histogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    agent: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabels {
    agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolName {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelOutcome {
    model: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    model: String,
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    code: String,
}

/// Run latencies reach minutes: buckets from 10 ms to about 20 min.
fn run_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 18))
}

/// The orchestrator's metrics.
pub struct Metrics {
    registry: Registry,
    http: Arc<HttpMetrics>,
    runs: Family<RunLabels, Counter>,
    run_seconds: Family<AgentLabels, Histogram, fn() -> Histogram>,
    run_errors: Family<ErrorLabels, Counter>,
    active_runs: Gauge,
    model_calls: Family<ModelOutcome, Counter>,
    model_seconds: Family<ModelLabels, Histogram, fn() -> Histogram>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<ModelLabels, Counter<f64, AtomicU64>>,
    tool_calls: Family<ToolLabels, Counter>,
    tool_seconds: Family<ToolName, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("orchestrator");
        let http = HttpMetrics::register(&mut registry);
        let this = Self {
            http,
            runs: Family::default(),
            run_seconds: Family::new_with_constructor(run_histogram as fn() -> Histogram),
            run_errors: Family::default(),
            active_runs: Gauge::default(),
            model_calls: Family::default(),
            model_seconds: Family::new_with_constructor(run_histogram as fn() -> Histogram),
            tokens: Family::default(),
            cost: Family::default(),
            tool_calls: Family::default(),
            tool_seconds: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            registry: Registry::default(),
        };
        registry.register(
            "runs",
            "Runs finished, by agent and status",
            this.runs.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "Run latency from start to end, by agent",
            this.run_seconds.clone(),
        );
        registry.register(
            "run_errors",
            "Failed runs by error code",
            this.run_errors.clone(),
        );
        registry.register(
            "active_runs",
            "Runs executing on this instance",
            this.active_runs.clone(),
        );
        registry.register(
            "model_calls",
            "Model calls by model and outcome",
            this.model_calls.clone(),
        );
        registry.register(
            "model_call_duration_seconds",
            "Model call latency (whole streamed answer)",
            this.model_seconds.clone(),
        );
        registry.register(
            "model_tokens",
            "Tokens by model and direction (input/output)",
            this.tokens.clone(),
        );
        registry.register(
            "model_cost_usd",
            "Cost in US dollars by model, from configured prices",
            this.cost.clone(),
        );
        registry.register(
            "tool_calls",
            "Tool calls by tool and outcome",
            this.tool_calls.clone(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "Tool call latency by tool",
            this.tool_seconds.clone(),
        );
        Self { registry, ..this }
    }

    /// The HTTP request metrics (for the `track` middleware).
    pub fn http(&self) -> Arc<HttpMetrics> {
        Arc::clone(&self.http)
    }

    /// A run of `agent` ended with `status` after `took`; `error` is its failure code.
    pub fn run_finished(&self, agent: &str, status: &str, took: Duration, error: Option<&str>) {
        self.runs
            .get_or_create(&RunLabels {
                agent: agent.to_owned(),
                status: status.to_owned(),
            })
            .inc();
        self.run_seconds
            .get_or_create(&AgentLabels {
                agent: agent.to_owned(),
            })
            .observe(took.as_secs_f64());
        if let Some(code) = error {
            self.run_errors
                .get_or_create(&ErrorLabels {
                    code: code.to_owned(),
                })
                .inc();
        }
    }

    /// A run started (`+1`) or ended (`-1`) on this instance.
    pub fn active(&self, delta: i64) {
        self.active_runs.inc_by(delta);
    }

    /// One model call.
    pub fn model_call(&self, model: &str, took: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.model_calls
            .get_or_create(&ModelOutcome {
                model: model.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.model_seconds
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Tokens and cost of one model call.
    pub fn tokens(&self, model: &str, input: u64, output: u64, cost: f64) {
        for (direction, n) in [("input", input), ("output", output)] {
            self.tokens
                .get_or_create(&TokenLabels {
                    model: model.to_owned(),
                    direction: direction.to_owned(),
                })
                .inc_by(n);
        }
        self.cost
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
            })
            .inc_by(cost);
    }

    /// One tool call.
    pub fn tool_call(&self, tool: &str, took: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.tool_calls
            .get_or_create(&ToolLabels {
                tool: tool.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.tool_seconds
            .get_or_create(&ToolName {
                tool: tool.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
