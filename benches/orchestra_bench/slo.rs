//! SLO gates: `p95<200ms,errors<0.1%` checked against a report, so CI and
//! the canary step can fail on a missed objective (exit code 2).
//!
//! Terms are comma-separated `[operation.]metric<bound` or `>bound`:
//! latency `p50 p90 p95 p99 p999 max mean` (`us`, `ms` or `s`), `errors`
//! (a share, `%` or a fraction), `throughput` (answers per second) and
//! `recall` (0..1). Without an operation a term covers the whole run.

use serde::Serialize;

use crate::report::{Latency, Report};

/// The deployment plan's objectives (docs/operations.md): p95 under 200 ms,
/// fewer than 0.1 % errors.
pub const DEFAULT: &str = "p95<200ms,errors<0.1%";

/// One objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// The operation it covers (`None`: the whole run).
    pub op: Option<String>,
    /// What is measured.
    pub metric: String,
    /// `<` (true) or `>`.
    pub below: bool,
    /// The bound, in the metric's base unit (ms, a fraction, per second).
    pub bound: f64,
    /// The term as written.
    pub text: String,
}

/// An objective checked against a report.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The term as written.
    pub objective: String,
    /// The measured value (ms, a fraction or per second), if the report has it.
    pub measured: Option<f64>,
    /// Whether it holds.
    pub pass: bool,
}

const LATENCY: [&str; 7] = ["p50", "p90", "p95", "p99", "p999", "max", "mean"];

/// Parses a gate list; an error says which term and what to write.
pub fn parse(spec: &str) -> Result<Vec<Term>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(parse_term)
        .collect()
}

fn parse_term(text: &str) -> Result<Term, String> {
    let bad = |why: &str| {
        format!(
            "SLO `{text}`: {why} (e.g. `p95<200ms`, `errors<0.1%`, `search.p99<50ms`, `throughput>100`, `recall>0.95`)"
        )
    };
    let (lhs, rhs, below) = match (text.split_once('<'), text.split_once('>')) {
        (Some((l, r)), None) => (l, r, true),
        (None, Some((l, r))) => (l, r, false),
        _ => return Err(bad("needs exactly one `<` or `>`")),
    };
    let lhs = lhs.trim();
    let (op, metric) = match lhs.rsplit_once('.') {
        Some((op, m)) => (Some(op.to_owned()), m),
        None => (None, lhs),
    };
    let rhs = rhs.trim();
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    let bound = if LATENCY.contains(&metric) {
        let (num, scale) = if let Some(n) = rhs.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = rhs.strip_suffix("us") {
            (n, 1e-3)
        } else if let Some(n) = rhs.strip_suffix('s') {
            (n, 1e3)
        } else {
            return Err(bad("a latency bound needs a unit: us, ms or s"));
        };
        number(num).ok_or_else(|| bad("the bound is not a number"))? * scale
    } else if metric == "errors" {
        match rhs.strip_suffix('%') {
            Some(n) => number(n).ok_or_else(|| bad("the bound is not a number"))? / 100.0,
            None => number(rhs).ok_or_else(|| bad("the bound is not a number"))?,
        }
    } else if metric == "throughput" || metric == "recall" {
        number(rhs.trim_end_matches("/s")).ok_or_else(|| bad("the bound is not a number"))?
    } else {
        return Err(bad("unknown metric"));
    };
    Ok(Term {
        op,
        metric: metric.to_owned(),
        below,
        bound,
        text: text.to_owned(),
    })
}

fn latency_value(l: &Latency, metric: &str) -> Option<f64> {
    Some(match metric {
        "p50" => l.p50,
        "p90" => l.p90,
        "p95" => l.p95,
        "p99" => l.p99,
        "p999" => l.p999,
        "max" => l.max,
        "mean" => l.mean,
        _ => return None,
    })
}

/// Checks every term; a term whose figure the report lacks fails.
pub fn check(terms: &[Term], r: &Report) -> Vec<Verdict> {
    terms
        .iter()
        .map(|t| {
            let measured = match &t.op {
                None => match t.metric.as_str() {
                    "errors" => Some(r.error_rate),
                    "throughput" => Some(r.throughput),
                    "recall" => r.operations.values().find_map(|o| o.recall),
                    m => latency_value(&r.latency_ms, m),
                },
                Some(op) => r.operations.get(op).and_then(|o| match t.metric.as_str() {
                    "errors" => Some(if o.requests > 0 {
                        o.errors as f64 / o.requests as f64
                    } else {
                        0.0
                    }),
                    "throughput" => Some(o.throughput),
                    "recall" => o.recall,
                    m => latency_value(&o.latency_ms, m),
                }),
            };
            let pass = measured.is_some_and(|v| if t.below { v < t.bound } else { v > t.bound });
            Verdict {
                objective: t.text.clone(),
                measured,
                pass,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_parse_to_base_units() {
        let t =
            parse("p95<200ms, errors<0.1%,search.p99<1.5s,throughput>100/s,recall>0.9,max<900us")
                .unwrap();
        let got: Vec<(Option<&str>, &str, bool, f64)> = t
            .iter()
            .map(|t| (t.op.as_deref(), t.metric.as_str(), t.below, t.bound))
            .collect();
        assert_eq!(
            got,
            vec![
                (None, "p95", true, 200.0),
                (None, "errors", true, 0.001),
                (Some("search"), "p99", true, 1500.0),
                (None, "throughput", false, 100.0),
                (None, "recall", false, 0.9),
                (None, "max", true, 0.9),
            ]
        );
    }

    #[test]
    fn a_bad_term_says_what_to_write() {
        for (spec, why) in [
            ("p95<200", "needs a unit"),
            ("p95=200ms", "exactly one"),
            ("latency<2ms", "unknown metric"),
            ("errors<lots", "not a number"),
        ] {
            let e = parse(spec).unwrap_err();
            assert!(e.contains(why) && e.contains(spec), "{spec}: {e}");
        }
    }
}
