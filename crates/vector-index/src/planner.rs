//! Chooses how a search runs: an exact scan or a (filtered) graph search.
//!
//! A filter that leaves few points is answered by scoring every allowed point,
//! which is exact (recall 1.0) and cheap when the set is small. Otherwise the
//! graph is searched, with its search width raised in proportion to how much
//! of the collection the filter rejects, so filtered recall stays high.

/// How a search was executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plan {
    /// Every allowed point was scored; the result is the exact top-k.
    Exact,
    /// Graph search over the whole collection.
    Graph,
    /// Graph search that only accepts allowed points, with a raised width.
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
#[derive(Debug, Clone, PartialEq)]
pub struct PlannerConfig {
    /// Scan exactly when at most this many points are allowed.
    pub exact_scan_max: u64,
    /// Upper bound of the raised search width for filtered graph searches.
    pub max_filtered_ef: usize,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        // Chosen from the ANN bench: see docs/benchmarks.md.
        Self {
            exact_scan_max: 20_000,
            max_filtered_ef: 2048,
        }
    }
}

/// A chosen plan and the search width to use with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The plan.
    pub plan: Plan,
    /// Search width for graph plans (unused by exact scans).
    pub ef: usize,
}

impl PlannerConfig {
    /// Picks a plan for `allowed` of `live` points, given the requested `k` and `ef`.
    pub fn choose(&self, allowed: u64, live: u64, filtered: bool, k: usize, ef: usize) -> Choice {
        let ef = ef.max(k);
        if allowed <= self.exact_scan_max {
            return Choice {
                plan: Plan::Exact,
                ef,
            };
        }
        if !filtered || allowed >= live {
            return Choice {
                plan: Plan::Graph,
                ef,
            };
        }
        // Widen by the inverse selectivity: a filter keeping 10% explores 10x.
        let scale = live as f64 / allowed.max(1) as f64;
        let raised = (ef as f64 * scale).ceil() as usize;
        Choice {
            plan: Plan::FilteredGraph,
            ef: raised.clamp(ef, self.max_filtered_ef.max(ef)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_allowed_sets_scan_exactly() {
        let p = PlannerConfig::default();
        assert_eq!(p.choose(0, 100_000, true, 10, 64).plan, Plan::Exact);
        assert_eq!(p.choose(20_000, 100_000, true, 10, 64).plan, Plan::Exact);
        assert_eq!(p.choose(500, 500, false, 10, 64).plan, Plan::Exact);
    }

    #[test]
    fn large_sets_use_the_graph_with_width_raised_by_selectivity() {
        let p = PlannerConfig::default();
        assert_eq!(
            p.choose(100_000, 100_000, false, 10, 64),
            Choice {
                plan: Plan::Graph,
                ef: 64
            }
        );
        assert_eq!(
            p.choose(50_000, 100_000, true, 10, 64),
            Choice {
                plan: Plan::FilteredGraph,
                ef: 128
            }
        );
        let narrow = p.choose(25_000, 1_000_000, true, 10, 64);
        assert_eq!(
            narrow,
            Choice {
                plan: Plan::FilteredGraph,
                ef: 2048
            }
        );
        // The cap never drops the width below k.
        assert_eq!(p.choose(50_000, 100_000, true, 3000, 64).ef, 3000);
    }
}
