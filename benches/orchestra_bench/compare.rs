//! `compare A.json B.json`: the figures of two runs side by side with their
//! ratio (B over A; A is the baseline).

use crate::report::{Latency, Report};

/// One compared figure.
#[derive(Debug, Clone)]
pub struct Row {
    /// What it is (`search p95 ms`).
    pub figure: String,
    /// In run A.
    pub a: f64,
    /// In run B.
    pub b: f64,
}

impl Row {
    /// B / A, when A is not zero.
    pub fn ratio(&self) -> Option<f64> {
        (self.a != 0.0).then(|| self.b / self.a)
    }
}

fn latency_rows(rows: &mut Vec<Row>, prefix: &str, a: &Latency, b: &Latency) {
    for (name, x, y) in [
        ("p50", a.p50, b.p50),
        ("p90", a.p90, b.p90),
        ("p95", a.p95, b.p95),
        ("p99", a.p99, b.p99),
        ("p99.9", a.p999, b.p999),
        ("max", a.max, b.max),
    ] {
        rows.push(Row {
            figure: format!("{prefix}{name} ms"),
            a: x,
            b: y,
        });
    }
}

/// The operations either run has, in name order.
pub fn operations<'r>(a: &'r Report, b: &'r Report) -> std::collections::BTreeSet<&'r String> {
    a.operations.keys().chain(b.operations.keys()).collect()
}

/// The compared figures: totals, then each operation either run has.
pub fn rows(a: &Report, b: &Report) -> Vec<Row> {
    let mut rows = vec![
        Row {
            figure: "throughput /s".into(),
            a: a.throughput,
            b: b.throughput,
        },
        Row {
            figure: "requests".into(),
            a: a.requests as f64,
            b: b.requests as f64,
        },
        Row {
            figure: "error rate %".into(),
            a: a.error_rate * 100.0,
            b: b.error_rate * 100.0,
        },
    ];
    latency_rows(&mut rows, "", &a.latency_ms, &b.latency_ms);
    let empty = Latency::default();
    for n in operations(a, b) {
        let (oa, ob) = (a.operations.get(n), b.operations.get(n));
        rows.push(Row {
            figure: format!("{n} throughput /s"),
            a: oa.map_or(0.0, |o| o.throughput),
            b: ob.map_or(0.0, |o| o.throughput),
        });
        latency_rows(
            &mut rows,
            &format!("{n} "),
            oa.map_or(&empty, |o| &o.latency_ms),
            ob.map_or(&empty, |o| &o.latency_ms),
        );
    }
    rows
}

/// The rows as a text table.
pub fn text(rows: &[Row]) -> String {
    let mut out = format!("{:<36} {:>12} {:>12} {:>8}\n", "figure", "A", "B", "B/A");
    for r in rows {
        out.push_str(&format!(
            "{:<36} {:>12.3} {:>12.3} {:>8}\n",
            r.figure,
            r.a,
            r.b,
            r.ratio().map_or("–".into(), |x| format!("{x:.2}"))
        ));
    }
    out
}
