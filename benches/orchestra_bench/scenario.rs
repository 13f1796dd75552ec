//! A scenario file: what to send, to whom, how fast and for how long.
//!
//! Scenarios are TOML (`benches/scenarios/*.toml`); every field is checked
//! when the file is read, and a mistake names the field and what to write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Longest run a scenario may ask for: every loop is bounded in time.
pub const MAX_DURATION_SECS: f64 = 24.0 * 3600.0;
/// Most requests one run sends: every loop is bounded in count too.
pub const MAX_REQUESTS: u64 = 100_000_000;

/// MCP's stateless protocol era.
pub const MCP_STATELESS: &str = "2026-07-28";
/// MCP's era with protocol sessions.
pub const MCP_SESSIONS: &str = "2025-11-25";
/// Every MCP era a scenario may name.
pub const MCP_VERSIONS: [&str; 2] = [MCP_STATELESS, MCP_SESSIONS];

/// One scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in reports.
    pub name: String,
    /// One line on what it measures.
    #[serde(default)]
    pub description: String,
    /// Which service and protocol the requests go to.
    #[serde(default)]
    pub target: TargetSpec,
    /// Rate shape or closed-loop concurrency, warm-up and duration.
    pub load: Load,
    /// The memories loaded before the run and the texts sent during it.
    #[serde(default)]
    pub dataset: DatasetSpec,
    /// How requests spread over namespaces (tenants).
    #[serde(default)]
    pub tenants: Tenants,
    /// Operation weights (relative; zero or absent means never).
    pub operations: BTreeMap<Op, f64>,
}

/// The service a scenario drives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields, tag = "kind")]
pub enum TargetSpec {
    /// memory-server's REST API.
    #[default]
    Rest,
    /// memory-server's MCP endpoint (`tools/call` over streamable HTTP).
    Mcp {
        /// Protocol era: `2026-07-28` (stateless) or `2025-11-25` (sessions).
        #[serde(default = "default_mcp_version")]
        protocol: String,
    },
    /// The orchestrator's runs.
    Orchestrator {
        /// The agent every run starts.
        agent: String,
    },
}

impl TargetSpec {
    /// The operations this target serves.
    pub fn serves(&self) -> &'static [Op] {
        match self {
            TargetSpec::Mcp { .. } => &Op::ALL[..6],
            TargetSpec::Rest => &Op::ALL[..7],
            TargetSpec::Orchestrator { .. } => &Op::ALL[7..],
        }
    }
}

fn default_mcp_version() -> String {
    MCP_STATELESS.to_owned()
}

/// How fast requests are sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// `open` (requests at scheduled times, latency from the scheduled time)
    /// or `closed` (`concurrency` workers, each sending when its last answer came).
    pub mode: LoadMode,
    /// Open loop: a fixed rate in requests per second.
    pub rate: Option<f64>,
    /// Open loop: rates held one after another (`[{rate, secs}]`).
    pub steps: Option<Vec<Step>>,
    /// Open loop: a rate rising (or falling) linearly over the duration.
    pub ramp: Option<Ramp>,
    /// Closed loop: the workers; open loop: the most requests in flight (a
    /// late request waits for a slot and its wait counts in its latency).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Seconds of load before measuring starts (not in the report's figures).
    #[serde(default)]
    pub warmup_secs: f64,
    /// Seconds measured (with `steps`: their sum when absent).
    pub duration_secs: Option<f64>,
    /// Stop after this many measured requests, whichever comes first.
    pub max_requests: Option<u64>,
    /// Per-request timeout in seconds (a timeout is an error of kind `timeout`).
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
}

fn default_concurrency() -> usize {
    64
}

fn default_timeout() -> f64 {
    30.0
}

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadMode {
    /// Scheduled sends; latency from the intended send time.
    Open,
    /// Fixed workers, each waiting for its answer.
    Closed,
}

/// One step of a stepped rate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Requests per second during the step.
    pub rate: f64,
    /// Seconds the step lasts.
    pub secs: f64,
}

/// A linear ramp.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// Rate at the start of the measured run.
    pub from: f64,
    /// Rate at its end.
    pub to: f64,
}

/// Where memories and query texts come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// `generated` (synthetic memory texts), `ndjson` (a file of memories,
    /// one JSON object with `text` per line) or `ann` (an ANN dataset
    /// directory: vectors sent as they are, with a recall check).
    #[serde(default)]
    pub kind: DatasetKind,
    /// The NDJSON file or ANN directory (relative to the scenario file).
    pub path: Option<PathBuf>,
    /// Memories stored in each namespace before the run (batched; not measured).
    #[serde(default)]
    pub preload: usize,
    /// Memories per batch request while preloading.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Sessions the session operations spread over, per namespace.
    #[serde(default = "default_sessions")]
    pub sessions: usize,
    /// Seed of the generated texts and of every random choice.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `top_k` of searches (and the recall check's k).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        Self {
            kind: DatasetKind::Generated,
            path: None,
            preload: 0,
            batch: default_batch(),
            sessions: default_sessions(),
            seed: default_seed(),
            top_k: default_top_k(),
        }
    }
}

fn default_batch() -> usize {
    500
}

fn default_sessions() -> usize {
    100
}

fn default_seed() -> u64 {
    42
}

fn default_top_k() -> usize {
    10
}

/// The dataset kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Synthetic memory texts (`benches/common/text.rs`).
    #[default]
    Generated,
    /// A file of memories, one JSON object per line.
    Ndjson,
    /// An ANN dataset directory (`benches/ann_bench/dataset.rs`).
    Ann,
}

/// Namespaces and how requests pick one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenants {
    /// Namespaces `<prefix>-0` … `<prefix>-<n-1>` (one: just `<prefix>`).
    #[serde(default = "default_namespaces")]
    pub namespaces: usize,
    /// Name prefix; a run adds a random suffix unless `fresh` is false.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Skew: 0 is uniform; s > 0 picks namespace i with weight 1/(i+1)^s (Zipf).
    #[serde(default)]
    pub zipf: f64,
    /// Fresh namespaces for each run (a random suffix), so runs never mix.
    #[serde(default = "default_true")]
    pub fresh: bool,
}

impl Default for Tenants {
    fn default() -> Self {
        Self {
            namespaces: default_namespaces(),
            prefix: default_prefix(),
            zipf: 0.0,
            fresh: true,
        }
    }
}

fn default_namespaces() -> usize {
    1
}

fn default_prefix() -> String {
    "bench".to_owned()
}

fn default_true() -> bool {
    true
}

/// What one request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Store one memory.
    Store,
    /// Store a batch of `batch` memories.
    StoreBatch,
    /// Search by text (the server's default mode).
    Search,
    /// Search by text with a metadata filter (about a tenth of the memories match).
    SearchFiltered,
    /// Search by a dataset vector (ANN datasets), with the recall check.
    SearchVector,
    /// Read a session's context (REST: the session; MCP: `memory_context`).
    Context,
    /// Append a message to a session.
    SessionAppend,
    /// An orchestrator run, answered when it ends.
    Run,
    /// An orchestrator run streamed as server-sent events.
    RunStream,
}

impl Op {
    /// Every operation, in report order, grouped by target: MCP serves the
    /// first six, REST the first seven, the orchestrator the last two.
    pub const ALL: [Op; 9] = [
        Op::Store,
        Op::StoreBatch,
        Op::Search,
        Op::SearchFiltered,
        Op::SearchVector,
        Op::Context,
        Op::SessionAppend,
        Op::Run,
        Op::RunStream,
    ];

    /// The name used in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Store => "store",
            Op::StoreBatch => "store_batch",
            Op::Search => "search",
            Op::SearchFiltered => "search_filtered",
            Op::SearchVector => "search_vector",
            Op::SessionAppend => "session_append",
            Op::Context => "context",
            Op::Run => "run",
            Op::RunStream => "run_stream",
        }
    }
}

/// A scenario that cannot run, and what to change.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ScenarioError {
    path: String,
    message: String,
}

impl Scenario {
    /// Reads and checks a scenario file; relative dataset paths become
    /// relative to the file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let fail = |message: String| ScenarioError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let mut s: Scenario = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        if let Some(p) = &s.dataset.path
            && p.is_relative()
        {
            let base = path.parent().unwrap_or(Path::new("."));
            s.dataset.path = Some(base.join(p));
        }
        s.check().map_err(fail)?;
        Ok(s)
    }

    /// Measured seconds (the steps' sum when `duration_secs` is absent).
    pub fn duration_secs(&self) -> f64 {
        self.load.duration_secs.unwrap_or_else(|| {
            self.load
                .steps
                .as_ref()
                .map_or(0.0, |s| s.iter().map(|s| s.secs).sum())
        })
    }

    /// The request cap of the measured phase.
    pub fn max_requests(&self) -> u64 {
        self.load
            .max_requests
            .unwrap_or(MAX_REQUESTS)
            .min(MAX_REQUESTS)
    }

    /// Checks every field; the error says which and what to write.
    pub fn check(&self) -> Result<(), String> {
        let l = &self.load;
        let shapes = [l.rate.is_some(), l.steps.is_some(), l.ramp.is_some()];
        let n_shapes = shapes.iter().filter(|s| **s).count();
        match l.mode {
            LoadMode::Open if n_shapes != 1 => {
                return Err(
                    "an open-loop `[load]` needs exactly one of `rate`, `steps` or `ramp`".into(),
                );
            }
            LoadMode::Closed if n_shapes != 0 => {
                return Err("a closed-loop `[load]` sets `concurrency`, not a rate: remove `rate`, `steps` and `ramp`".into());
            }
            _ => {}
        }
        let rates: Vec<f64> = l
            .rate
            .into_iter()
            .chain(l.steps.iter().flatten().map(|s| s.rate))
            .chain(l.ramp.iter().flat_map(|r| [r.from, r.to]))
            .collect();
        if rates.iter().any(|r| !r.is_finite() || *r <= 0.0) {
            return Err("every rate must be a number above 0 (requests per second)".into());
        }
        if l.steps
            .iter()
            .flatten()
            .any(|s| !s.secs.is_finite() || s.secs <= 0.0)
        {
            return Err("every step's `secs` must be above 0".into());
        }
        if l.steps.as_ref().is_some_and(Vec::is_empty) {
            return Err("`steps` is empty: give at least one `{rate, secs}`".into());
        }
        let d = self.duration_secs();
        if !(d.is_finite() && d > 0.0 && d <= MAX_DURATION_SECS) {
            return Err(format!(
                "`load.duration_secs` must be above 0 and at most {MAX_DURATION_SECS} (got {d})"
            ));
        }
        if !(l.warmup_secs.is_finite() && (0.0..=MAX_DURATION_SECS).contains(&l.warmup_secs)) {
            return Err("`load.warmup_secs` must be 0 or more".into());
        }
        if !(l.timeout_secs.is_finite() && l.timeout_secs > 0.0) {
            return Err("`load.timeout_secs` must be above 0".into());
        }
        if l.concurrency == 0 || l.concurrency > 10_000 {
            return Err("`load.concurrency` must be 1 to 10000".into());
        }
        if self.tenants.namespaces == 0 || self.tenants.namespaces > 100_000 {
            return Err("`tenants.namespaces` must be 1 to 100000".into());
        }
        let p = &self.tenants.prefix;
        if p.is_empty()
            || p.len() > 64
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("`tenants.prefix` must be 1 to 64 letters, digits, `-` or `_`".into());
        }
        if !(self.tenants.zipf.is_finite() && self.tenants.zipf >= 0.0) {
            return Err("`tenants.zipf` must be 0 (uniform) or more".into());
        }
        if self.dataset.batch == 0 || self.dataset.sessions == 0 || self.dataset.top_k == 0 {
            return Err(
                "`dataset.batch`, `dataset.sessions` and `dataset.top_k` must be at least 1".into(),
            );
        }
        if self.dataset.kind != DatasetKind::Generated && self.dataset.path.is_none() {
            return Err("this `dataset.kind` reads a file: set `dataset.path`".into());
        }
        if self.operations.values().any(|w| !w.is_finite() || *w < 0.0) {
            return Err("operation weights must be 0 or more".into());
        }
        let used: Vec<Op> = self.ops_in_use();
        if used.is_empty() {
            return Err("`[operations]` gives no operation a weight above 0".into());
        }
        let allowed = self.target.serves();
        if let Some(op) = used.iter().find(|op| !allowed.contains(op)) {
            let names: Vec<&str> = allowed.iter().map(|o| o.name()).collect();
            return Err(format!(
                "operation `{}` is not served by this target; it serves: {}",
                op.name(),
                names.join(", ")
            ));
        }
        if used.contains(&Op::SearchVector) && self.dataset.kind != DatasetKind::Ann {
            return Err("`search_vector` needs vectors: set `dataset.kind = \"ann\"`".into());
        }
        if let TargetSpec::Mcp { protocol } = &self.target
            && !MCP_VERSIONS.contains(&protocol.as_str())
        {
            return Err(format!(
                "`target.protocol` `{protocol}`: use one of {}",
                MCP_VERSIONS.join(", ")
            ));
        }
        Ok(())
    }

    /// The operations with a weight above zero, in report order.
    pub fn ops_in_use(&self) -> Vec<Op> {
        Op::ALL
            .into_iter()
            .filter(|op| self.operations.get(op).is_some_and(|w| *w > 0.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("s.toml");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Scenario::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn every_shipped_scenario_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                if let Err(e) = Scenario::load(&path) {
                    panic!("{e}");
                }
                n += 1;
            }
        }
        assert!(n >= 6, "only {n} scenarios in {}", dir.display());
    }

    #[test]
    fn mistakes_name_the_field_and_the_fix() {
        let base = "name = \"x\"\n[operations]\nsearch = 1\n";
        let cases = [
            (format!("{base}[load]\nmode = \"open\"\nduration_secs = 1\n"), "exactly one of `rate`"),
            (format!("{base}[load]\nmode = \"open\"\nrate = -1\nduration_secs = 1\n"), "above 0"),
            (format!("{base}[load]\nmode = \"closed\"\nrate = 5\nduration_secs = 1\n"), "not a rate"),
            (format!("{base}[load]\nmode = \"closed\"\n"), "duration_secs"),
            (format!("{base}[load]\nmode = \"closed\"\nduration_secs = 1\nbogus = 2\n"), "unknown field `bogus`"),
            (
                "name = \"x\"\n[load]\nmode = \"closed\"\nduration_secs = 1\n[operations]\nrun = 1\n".to_owned(),
                "not served by this target",
            ),
            (
                "name = \"x\"\n[load]\nmode = \"closed\"\nduration_secs = 1\n[operations]\nsearch_vector = 1\n".to_owned(),
                r#"dataset.kind = "ann""#,
            ),
            (
                "name = \"x\"\n[load]\nmode = \"closed\"\nduration_secs = 1\n[operations]\nsearch = 0\n".to_owned(),
                "no operation",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text).expect_err(&text);
            assert!(err.contains(want), "{text}\n=> {err}");
        }
    }

    #[test]
    fn each_target_serves_its_own_operations() {
        let mcp = TargetSpec::Mcp {
            protocol: MCP_STATELESS.into(),
        };
        assert!(mcp.serves().contains(&Op::Context) && !mcp.serves().contains(&Op::SessionAppend));
        let rest = TargetSpec::Rest.serves();
        assert!(rest.contains(&Op::SessionAppend) && !rest.contains(&Op::Run));
        let orch = TargetSpec::Orchestrator { agent: "a".into() };
        assert_eq!(orch.serves(), &[Op::Run, Op::RunStream]);
    }

    #[test]
    fn steps_give_the_duration() {
        let s = parse(
            "name = \"x\"\n[load]\nmode = \"open\"\nsteps = [{rate = 10, secs = 2}, {rate = 20, secs = 3}]\n[operations]\nsearch = 1\n",
        )
        .unwrap();
        assert_eq!(s.duration_secs(), 5.0);
    }
}
