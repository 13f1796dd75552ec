//! The HTML report: one self-contained file (inline SVG and CSS, no script,
//! nothing fetched) with latency over time, throughput over time, the
//! percentile distribution and per-operation latency; and the comparison of
//! two runs. docs/decisions.md says why the plots are drawn here rather
//! than by a plotting crate.

use std::fmt::Write;

use crate::report::{Latency, Report};
use crate::slo::Verdict;

const W: f64 = 760.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Quantiles of the percentile-distribution plot, up to 99.99 %.
const QUANTILES: [f64; 12] = [
    0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999,
];

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line series: name and points.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// A line plot as SVG; `log_x` plots x as `-log10(1 - q)` (percentiles).
fn line_plot(title: &str, x_label: &str, y_label: &str, series: &[Series], log_x: bool) -> String {
    let tx = |x: f64| {
        if log_x {
            -(1.0 - x.min(0.99999)).log10()
        } else {
            x
        }
    };
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| tx(p.0)));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let y1 = ys.fold(0.0f64, f64::max);
    let (x0, x1) = if x0 >= x1 {
        (x0.min(0.0), x0.max(0.0) + 1.0)
    } else {
        (x0, x1)
    };
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.08 };
    let px = |x: f64| LEFT + (tx(x) - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y1 * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="plot" data-title="{t}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{t}">"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="18" class="title">{}</text>"#,
        esc(title)
    );
    // Axes and ticks.
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" class="axis"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" class="axis"/>"#,
        b = H - BOTTOM,
        r = W - RIGHT
    );
    for i in 0..=4 {
        let y = y1 * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" y1="{p:.1}" x2="{r}" y2="{p:.1}" class="grid"/><text x="{tx:.1}" y="{ty:.1}" class="tick" text-anchor="end">{y}</text>"#,
            p = py(y),
            r = W - RIGHT,
            tx = LEFT - 6.0,
            ty = py(y) + 4.0,
            y = num(y)
        );
    }
    if log_x {
        for (q, label) in [
            (0.0, "0%"),
            (0.9, "90%"),
            (0.99, "99%"),
            (0.999, "99.9%"),
            (0.9999, "99.99%"),
        ] {
            if tx(q) <= x1 + 1e-9 {
                let _ = write!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{label}</text>"#,
                    px(q),
                    H - BOTTOM + 16.0
                );
            }
        }
    } else {
        for i in 0..=4 {
            let x = x0 + (x1 - x0) * f64::from(i) / 4.0;
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
                px(x),
                H - BOTTOM + 16.0,
                num(x)
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" class="label" text-anchor="middle">{}</text>"#,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 6.0,
        esc(x_label)
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{:.1}" class="label" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
        H / 2.0,
        H / 2.0,
        esc(y_label)
    );
    for (i, se) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = se
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="series" data-series="{}" fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"#,
            esc(&se.name),
            pts.join(" ")
        );
        let lx = LEFT + 10.0 + (W - LEFT - RIGHT - 20.0) / series.len().max(5) as f64 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx:.1}" y="{}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{}" class="tick">{}</text>"#,
            TOP - 2.0,
            lx + 14.0,
            TOP + 7.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// Grouped bars: one group per label, one bar per series.
fn bar_plot(title: &str, y_label: &str, groups: &[(String, Vec<f64>)], names: &[&str]) -> String {
    let y1 = groups
        .iter()
        .flat_map(|g| g.1.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.1;
    let plot_w = W - LEFT - RIGHT;
    let gw = plot_w / groups.len().max(1) as f64;
    let bw = (gw * 0.8) / names.len().max(1) as f64;
    let py = |y: f64| H - BOTTOM - y / y1 * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="plot" data-title="{t}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{t}"><text x="{LEFT}" y="18" class="title">{t}</text>"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" class="axis"/>"#,
        b = H - BOTTOM,
        r = W - RIGHT
    );
    for i in 0..=4 {
        let y = y1 * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" y1="{p:.1}" x2="{r}" y2="{p:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="tick" text-anchor="end">{}</text>"#,
            num(y),
            p = py(y),
            r = W - RIGHT,
            tx = LEFT - 6.0,
            ty = py(y) + 4.0
        );
    }
    for (gi, (label, values)) in groups.iter().enumerate() {
        let gx = LEFT + gw * gi as f64 + gw * 0.1;
        for (i, v) in values.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let _ = write!(
                s,
                r#"<rect class="bar" data-series="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{} {}: {}</title></rect>"#,
                names.get(i).copied().unwrap_or(""),
                gx + bw * i as f64,
                py(*v),
                bw * 0.92,
                (H - BOTTOM - py(*v)).max(0.0),
                esc(label),
                names.get(i).copied().unwrap_or(""),
                num(*v)
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
            gx + gw * 0.4,
            H - BOTTOM + 16.0,
            esc(label)
        );
    }
    for (i, n) in names.iter().enumerate() {
        let lx = W - RIGHT - 90.0 * (names.len() - i) as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx:.1}" y="{}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{}" class="tick">{n}</text>"#,
            TOP - 2.0,
            COLORS[i % COLORS.len()],
            lx + 14.0,
            TOP + 7.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="14" y="{:.1}" class="label" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
        H / 2.0,
        H / 2.0,
        esc(y_label)
    );
    s.push_str("</svg>");
    s
}

/// A short number: 3 significant digits.
fn num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.plot{display:block;margin:12px 0;border:1px solid #eee}.title{font-weight:600;font-size:13px}.tick{font-size:11px;fill:#555}
.label{font-size:12px;fill:#333}.axis{stroke:#333}.grid{stroke:#eee}.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:600}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        esc(title)
    )
}

fn latency_cells(l: &Latency) -> String {
    [l.p50, l.p90, l.p95, l.p99, l.p999, l.max]
        .iter()
        .map(|v| format!("<td>{}</td>", num(*v)))
        .collect()
}

const LAT_HEAD: &str =
    "<th>p50 ms</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th>";

/// The percentile curve of a histogram in ms.
fn curve(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    QUANTILES
        .iter()
        .map(|q| (*q, h.value_at_quantile(*q) as f64 / 1e3))
        .collect()
}

/// The report of one run.
pub fn report(r: &Report, verdicts: &[Verdict]) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>orchestra-bench: {}</h1><p>{}</p>",
        esc(&r.scenario.name),
        esc(&r.scenario.description)
    );
    let _ = write!(
        b,
        "<table><tr><th>target</th><td>{}</td></tr><tr><th>load</th><td>{:?} loop, concurrency {}</td></tr><tr><th>measured</th><td>{:.1} s{}</td></tr><tr><th>requests</th><td>{} ({} errors, {:.3} %)</td></tr><tr><th>throughput</th><td>{:.1} /s</td></tr><tr><th>late sends</th><td>{} (longest {:.1} ms)</td></tr></table>",
        esc(&r.url),
        r.scenario.load.mode,
        r.scenario.load.concurrency,
        r.duration_secs,
        if r.interrupted {
            " (stopped early: partial)"
        } else {
            ""
        },
        r.requests,
        r.errors,
        r.error_rate * 100.0,
        r.throughput,
        r.late_sends,
        r.max_send_lag_ms
    );
    if r.setup.memories > 0 {
        let _ = write!(
            b,
            "<p>Preload before the run: {} memories in {:.1} s ({:.0}/s, batched).</p>",
            r.setup.memories,
            r.setup.secs,
            r.setup.rate()
        );
    }
    if !verdicts.is_empty() {
        b.push_str(
            "<h2>SLO</h2><table><tr><th>objective</th><th>measured</th><th>verdict</th></tr>",
        );
        for v in verdicts {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                esc(&v.objective),
                v.measured.map_or("missing".into(), num),
                if v.pass { "pass" } else { "fail" },
                if v.pass { "pass" } else { "FAIL" }
            );
        }
        b.push_str("</table>");
    }
    let _ = write!(
        b,
        "<h2>Operations</h2><table><tr><th>operation</th><th>requests</th><th>errors</th><th>ok/s</th>{LAT_HEAD}<th>recall</th><th>first event p95</th></tr>"
    );
    let _ = write!(
        b,
        "<tr><td><b>all</b></td><td>{}</td><td>{}</td><td>{:.1}</td>{}<td></td><td></td></tr>",
        r.requests,
        r.errors,
        r.throughput,
        latency_cells(&r.latency_ms)
    );
    for (name, o) in &r.operations {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td>{}<td>{}</td><td>{}</td></tr>",
            esc(name),
            o.requests,
            o.errors,
            o.throughput,
            latency_cells(&o.latency_ms),
            o.recall.map_or(String::new(), |v| format!("{v:.3}")),
            o.first_event_ms
                .as_ref()
                .map_or(String::new(), |f| num(f.p95))
        );
    }
    b.push_str("</table>");
    if !r.errors_by_kind.is_empty() {
        b.push_str("<h2>Errors</h2><table><tr><th>kind</th><th>count</th></tr>");
        for (k, v) in &r.errors_by_kind {
            let _ = write!(b, "<tr><td>{}</td><td>{v}</td></tr>", esc(k));
        }
        b.push_str("</table>");
    }
    b.push_str("<h2>Plots</h2>");
    let sec = |f: fn(&crate::report::SecondReport) -> f64| {
        r.timeline
            .iter()
            .map(|s| (s.second as f64, f(s)))
            .collect::<Vec<_>>()
    };
    // Counts per point over the point's width: requests per second.
    let step = r.timeline_step_secs.max(1) as f64;
    let rate = |f: fn(&crate::report::SecondReport) -> u64| {
        r.timeline
            .iter()
            .map(|s| (s.second as f64, f(s) as f64 / step))
            .collect::<Vec<_>>()
    };
    b.push_str(&line_plot(
        "Latency over time",
        "second of the run (by intended send time)",
        "ms",
        &[
            Series {
                name: "p50".into(),
                points: sec(|s| s.p50),
            },
            Series {
                name: "p95".into(),
                points: sec(|s| s.p95),
            },
            Series {
                name: "p99".into(),
                points: sec(|s| s.p99),
            },
        ],
        false,
    ));
    b.push_str(&line_plot(
        "Throughput over time",
        "second of the run",
        "requests per second",
        &[
            Series {
                name: "ok".into(),
                points: rate(|s| s.ok),
            },
            Series {
                name: "errors".into(),
                points: rate(|s| s.errors),
            },
        ],
        false,
    ));
    let mut curves = Vec::new();
    if let Ok(rec) = r.recorder("report") {
        curves.push(Series {
            name: "all".into(),
            points: curve(&rec.all_latency()),
        });
        for (op, s) in &rec.ops {
            curves.push(Series {
                name: op.name().into(),
                points: curve(&s.latency),
            });
        }
    }
    b.push_str(&line_plot(
        "Percentile distribution",
        "percentile",
        "ms",
        &curves,
        true,
    ));
    let groups: Vec<(String, Vec<f64>)> = r
        .operations
        .iter()
        .map(|(n, o)| {
            (
                n.clone(),
                vec![o.latency_ms.p50, o.latency_ms.p95, o.latency_ms.p99],
            )
        })
        .collect();
    b.push_str(&bar_plot(
        "Latency per operation",
        "ms",
        &groups,
        &["p50", "p95", "p99"],
    ));
    b.push_str("<h2>Load machines</h2><table><tr><th>host</th><th>CPUs</th><th>started</th><th>seconds</th></tr>");
    for m in &r.machines {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
            esc(&m.host),
            m.cpus,
            esc(&m.started_at),
            m.duration_secs
        );
    }
    b.push_str("</table>");
    page(&format!("orchestra-bench: {}", r.scenario.name), &b)
}

/// The comparison of run `a` (baseline) and run `b`.
pub fn compare(a: &Report, b: &Report, rows: &[crate::compare::Row]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<h1>orchestra-bench compare: {} vs {}</h1>",
        esc(&a.scenario.name),
        esc(&b.scenario.name)
    );
    h.push_str("<table><tr><th>figure</th><th>A</th><th>B</th><th>B / A</th></tr>");
    for row in rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&row.figure),
            num(row.a),
            num(row.b),
            row.ratio().map_or("–".into(), |x| format!("{x:.2}×"))
        );
    }
    h.push_str("</table>");
    let mut curves = Vec::new();
    for (label, r) in [("A", a), ("B", b)] {
        if let Ok(rec) = r.recorder(label) {
            curves.push(Series {
                name: format!("{label} all"),
                points: curve(&rec.all_latency()),
            });
        }
    }
    h.push_str(&line_plot(
        "Percentile distribution, A vs B",
        "percentile",
        "ms",
        &curves,
        true,
    ));
    let lat = |r: &Report| {
        r.timeline
            .iter()
            .map(|s| (s.second as f64, s.p95))
            .collect::<Vec<_>>()
    };
    h.push_str(&line_plot(
        "p95 over time, A vs B",
        "second of the run",
        "ms",
        &[
            Series {
                name: "A p95".into(),
                points: lat(a),
            },
            Series {
                name: "B p95".into(),
                points: lat(b),
            },
        ],
        false,
    ));
    let groups: Vec<(String, Vec<f64>)> = crate::compare::operations(a, b)
        .into_iter()
        .map(|n| {
            let p = |r: &Report| r.operations.get(n).map_or(0.0, |o| o.latency_ms.p95);
            (n.clone(), vec![p(a), p(b)])
        })
        .collect();
    h.push_str(&bar_plot(
        "p95 per operation, A vs B",
        "ms",
        &groups,
        &["A", "B"],
    ));
    page("orchestra-bench compare", &h)
}
