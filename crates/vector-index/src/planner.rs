//! Chooses how a search runs: an exact scan or a (filtered) graph search.
//!
//! Scoring every allowed point costs about `e * allowed`; a graph search that
//! only accepts allowed points costs about `g * live / allowed`, because the
//! graph must be walked past the rejected points to collect `ef` accepted ones.
//! The two are equal where `allowed² = (g / e) * live`, so the planner scans
//! exactly when `allowed² <= ratio * live` (or the set is tiny), and otherwise
//! searches the graph. `ratio = g / e` depends on the backend and is measured by
//! the ANN bench (docs/benchmarks.md). An exact scan has recall 1.0.
//!
//! Both libraries already widen a filtered search until they hold `ef`
//! *accepted* candidates, so the width is not raised again for selectivity: the
//! bench showed that doing so costs up to 10x latency for no recall.

use crate::backend::BackendKind;

/// How a search was executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plan {
    /// Every allowed point was scored; the result is the exact top-k.
    Exact,
    /// Graph search over the whole collection.
    Graph,
    /// Graph search that only accepts allowed points.
    FilteredGraph,
    /// The graph search came back short, so the allowed points were scanned exactly.
    ExactFallback,
}

impl Plan {
    /// Short lowercase name, as reported to clients and in benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Plan::Exact => "exact",
            Plan::Graph => "graph",
            Plan::FilteredGraph => "filtered_graph",
            Plan::ExactFallback => "exact_fallback",
        }
    }

    /// Whether the result is the exact top-k of the allowed points.
    pub fn is_exact(self) -> bool {
        matches!(self, Plan::Exact | Plan::ExactFallback)
    }
}

/// Planner thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannerConfig {
    /// Always scan exactly when at most this many points are allowed.
    pub exact_scan_min: u64,
    /// Graph-search cost over exact-scan cost per point (`g / e` above);
    /// `None` uses the backend's measured value.
    pub cost_ratio: Option<f64>,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            exact_scan_min: 1024,
            cost_ratio: None,
        }
    }
}

/// Measured `g / e` per backend, from the 100k x 384 ANN bench (docs/benchmarks.md).
pub fn default_cost_ratio(kind: BackendKind) -> f64 {
    match kind {
        BackendKind::Usearch => 700.0,
        BackendKind::Hnsw => 1350.0,
        BackendKind::Graph => 440.0,
    }
}

/// Who decides between an exact scan and a graph search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// The planner decides from the filter's selectivity.
    #[default]
    Auto,
    /// Always scan the allowed points exactly.
    Exact,
    /// Always search the graph (still falling back to exact if it comes back short).
    Graph,
}

impl PlannerConfig {
    /// Picks a plan for `allowed` of `live` points on `backend`.
    pub fn choose(
        &self,
        backend: BackendKind,
        strategy: Strategy,
        allowed: u64,
        live: u64,
    ) -> Plan {
        let exact = match strategy {
            Strategy::Exact => true,
            Strategy::Graph => allowed == 0,
            Strategy::Auto => {
                let ratio = self
                    .cost_ratio
                    .unwrap_or_else(|| default_cost_ratio(backend));
                let a = allowed as f64;
                allowed <= self.exact_scan_min || a * a <= ratio * live as f64
            }
        };
        if exact {
            Plan::Exact
        } else if allowed >= live {
            Plan::Graph
        } else {
            Plan::FilteredGraph
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: BackendKind = BackendKind::Usearch;

    #[test]
    fn small_or_selective_sets_scan_exactly() {
        let p = PlannerConfig::default();
        assert_eq!(p.choose(U, Strategy::Auto, 0, 100_000), Plan::Exact);
        assert_eq!(p.choose(U, Strategy::Auto, 1024, 1024), Plan::Exact);
        // sqrt(700 * 100_000) ≈ 8367: the measured crossover.
        assert_eq!(p.choose(U, Strategy::Auto, 8_300, 100_000), Plan::Exact);
        assert_eq!(
            p.choose(U, Strategy::Auto, 8_400, 100_000),
            Plan::FilteredGraph
        );
    }

    #[test]
    fn large_sets_use_the_graph() {
        let p = PlannerConfig::default();
        assert_eq!(p.choose(U, Strategy::Auto, 100_000, 100_000), Plan::Graph);
        assert_eq!(
            p.choose(U, Strategy::Auto, 50_000, 100_000),
            Plan::FilteredGraph
        );
        // hnsw_rs's filtered search is costlier, so it scans exactly for longer.
        let h = BackendKind::Hnsw;
        assert_eq!(p.choose(h, Strategy::Auto, 10_000, 100_000), Plan::Exact);
        let custom = PlannerConfig {
            cost_ratio: Some(1.0),
            exact_scan_min: 0,
        };
        assert_eq!(
            custom.choose(h, Strategy::Auto, 10_000, 100_000),
            Plan::FilteredGraph
        );
    }

    #[test]
    fn strategies_override_the_choice() {
        let p = PlannerConfig::default();
        assert_eq!(p.choose(U, Strategy::Exact, 100_000, 100_000), Plan::Exact);
        assert_eq!(
            p.choose(U, Strategy::Graph, 10, 100_000),
            Plan::FilteredGraph
        );
        assert_eq!(p.choose(U, Strategy::Graph, 10, 10), Plan::Graph);
        assert_eq!(p.choose(U, Strategy::Graph, 0, 10), Plan::Exact);
    }
}
