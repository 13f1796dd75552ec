//! The JSON report: a run's figures plus its serialised histograms, so runs
//! from several load machines merge into one report ([`merge`]).
//!
//! Histograms are HdrHistogram's V2 format with deflate, in base64: the
//! interchange format HdrHistogram's own tools read.

use std::collections::BTreeMap;
use std::io::Cursor;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::record::{OpStats, Recorder, Second, coarse_histogram, histogram};
use crate::scenario::{Op, Scenario};

/// The report format; a reader refuses another.
pub const FORMAT: &str = "orchestra-bench/1";

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// The figures of a microsecond histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1e3;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1e3,
        }
    }
}

/// One operation's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpReport {
    /// Requests sent.
    pub requests: u64,
    /// Successful answers.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Failures by kind (`http 503`, `timeout`, ...).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Successful answers per second of the run.
    pub throughput: f64,
    /// Latency of the successful answers, from the intended send time.
    pub latency_ms: Latency,
    /// Time to the first streamed event (streamed runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_event_ms: Option<Latency>,
    /// Mean recall@k against the dataset's exact neighbours (vector searches only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall: Option<f64>,
    /// Searches the recall is the mean of.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recall_checked: u64,
    /// The latency histogram (V2 deflate, base64).
    pub histogram: String,
    /// The first-event histogram, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_event_histogram: Option<String>,
    /// Sum of the recall values (merges add it).
    #[serde(default)]
    pub recall_sum: f64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One point of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondReport {
    /// Seconds from the measured start to the point's start.
    pub second: u64,
    /// Successful answers to requests meant for this point.
    pub ok: u64,
    /// Failed ones.
    pub errors: u64,
    /// Their median latency, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// The second's histogram (V2 deflate, base64).
    pub histogram: String,
}

/// A load machine's part in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Its host name.
    pub host: String,
    /// Its logical CPUs.
    pub cpus: usize,
    /// When its measured run started (RFC 3339).
    pub started_at: String,
    /// Seconds it measured.
    pub duration_secs: f64,
    /// Whether it was stopped early (Ctrl-C): its figures are partial.
    pub interrupted: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: String,
    /// The scenario as it ran.
    pub scenario: Scenario,
    /// The target's base URL.
    pub url: String,
    /// The machines whose runs this report holds (one unless merged).
    pub machines: Vec<Machine>,
    /// Seconds measured (the longest machine's, when merged).
    pub duration_secs: f64,
    /// Whether any part was stopped early.
    pub interrupted: bool,
    /// Requests sent in the measured run.
    pub requests: u64,
    /// Successful answers.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Successful answers per second.
    pub throughput: f64,
    /// Latency of every successful answer.
    pub latency_ms: Latency,
    /// Failures by kind over every operation.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Per operation.
    pub operations: BTreeMap<String, OpReport>,
    /// Seconds per timeline point (1 unless the run is longer than 10 minutes).
    #[serde(default = "one")]
    pub timeline_step_secs: u64,
    /// The timeline, one point per `timeline_step_secs`.
    pub timeline: Vec<SecondReport>,
    /// Requests that left later than meant because every slot was busy
    /// (their wait is in their latency): the load machine, not the server,
    /// set the pace for them.
    pub late_sends: u64,
    /// The longest such delay, ms.
    pub max_send_lag_ms: f64,
    /// Every request the run sent, setup and warm-up included, by route:
    /// what the server's own request counters should show.
    pub requests_by_route: BTreeMap<String, u64>,
    /// The preload before the run (batched stores; not in the figures above).
    #[serde(default)]
    pub setup: Setup,
}

/// The preload of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// Memories stored.
    pub memories: u64,
    /// Seconds it took (the longest machine's, when merged).
    pub secs: f64,
}

impl Setup {
    /// Memories stored per second.
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.memories as f64 / self.secs
        } else {
            0.0
        }
    }
}

fn one() -> u64 {
    1
}

/// A report that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Not JSON of this shape.
    #[error("{0}: not an orchestra-bench report: {1}")]
    Parse(String, String),
    /// Another format version.
    #[error("{0}: report format `{1}`, this build reads `{FORMAT}`")]
    Format(String, String),
    /// A histogram that does not decode.
    #[error("{0}: histogram of {1} does not decode: {2}")]
    Histogram(String, String, String),
    /// Runs of different scenarios.
    #[error("cannot merge runs of different scenarios (`{0}` and `{1}`)")]
    Mismatch(String, String),
    /// Nothing to merge.
    #[error("merge needs at least one report")]
    Empty,
    /// Timelines of different widths.
    #[error(
        "cannot merge runs of different lengths' timelines ({0} s and {1} s per point): run the same scenario"
    )]
    Step(u64, u64),
}

/// Encodes a histogram as base64 V2 deflate.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail, and the histogram is well formed.
    let _ = V2DeflateSerializer::new().serialize(h, &mut buf);
    B64.encode(buf)
}

/// Decodes a base64 V2 (deflate) histogram into `out` (fresh, of the
/// recorder's bounds).
pub fn decode(s: &str, mut out: Histogram<u64>) -> Result<Histogram<u64>, String> {
    let bytes = B64.decode(s).map_err(|e| e.to_string())?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut Cursor::new(bytes))
        .map_err(|e| format!("{e:?}"))?;
    out.add(&h).map_err(|e| format!("{e:?}"))?;
    Ok(out)
}

impl Report {
    /// The report of `rec` for `scenario` against `url`.
    pub fn new(
        scenario: &Scenario,
        url: &str,
        machines: Vec<Machine>,
        rec: &Recorder,
        requests_by_route: BTreeMap<String, u64>,
    ) -> Self {
        let duration_secs = machines.iter().map(|m| m.duration_secs).fold(0.0, f64::max);
        let per_sec = |n: u64| {
            if duration_secs > 0.0 {
                n as f64 / duration_secs
            } else {
                0.0
            }
        };
        let mut errors_by_kind = BTreeMap::new();
        let mut operations = BTreeMap::new();
        for (op, s) in &rec.ops {
            for (k, v) in &s.errors {
                *errors_by_kind.entry(k.clone()).or_default() += v;
            }
            operations.insert(
                op.name().to_owned(),
                OpReport {
                    requests: s.ok() + s.failed(),
                    ok: s.ok(),
                    errors: s.failed(),
                    errors_by_kind: s.errors.clone(),
                    throughput: per_sec(s.ok()),
                    latency_ms: Latency::of(&s.latency),
                    first_event_ms: (!s.first_event.is_empty())
                        .then(|| Latency::of(&s.first_event)),
                    recall: (s.recall.1 > 0).then(|| s.recall.0 / s.recall.1 as f64),
                    recall_checked: s.recall.1,
                    histogram: encode(&s.latency),
                    first_event_histogram: (!s.first_event.is_empty())
                        .then(|| encode(&s.first_event)),
                    recall_sum: s.recall.0,
                },
            );
        }
        let timeline = rec
            .timeline
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let l = Latency::of(&s.latency);
                SecondReport {
                    second: i as u64 * rec.step_secs,
                    ok: s.latency.len(),
                    errors: s.errors,
                    p50: l.p50,
                    p95: l.p95,
                    p99: l.p99,
                    histogram: encode(&s.latency),
                }
            })
            .collect();
        let (requests, errors) = (rec.requests(), rec.failed());
        Self {
            format: FORMAT.to_owned(),
            scenario: scenario.clone(),
            url: url.to_owned(),
            interrupted: machines.iter().any(|m| m.interrupted),
            machines,
            duration_secs,
            requests,
            ok: requests - errors,
            errors,
            error_rate: if requests > 0 {
                errors as f64 / requests as f64
            } else {
                0.0
            },
            throughput: per_sec(requests - errors),
            latency_ms: Latency::of(&rec.all_latency()),
            errors_by_kind,
            operations,
            timeline_step_secs: rec.step_secs,
            timeline,
            late_sends: rec.late_sends,
            max_send_lag_ms: rec.max_send_lag.as_secs_f64() * 1e3,
            requests_by_route,
            setup: Setup::default(),
        }
    }

    /// Reads a report file.
    pub fn read(path: &std::path::Path) -> Result<Self, ReportError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReportError::Parse(name.clone(), e.to_string()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ReportError::Parse(name.clone(), e.to_string()))?;
        let format = v["format"].as_str().unwrap_or("none").to_owned();
        if format != FORMAT {
            return Err(ReportError::Format(name, format));
        }
        serde_json::from_value(v).map_err(|e| ReportError::Parse(name, e.to_string()))
    }

    /// The histograms decoded back into a recorder.
    pub fn recorder(&self, name: &str) -> Result<Recorder, ReportError> {
        let bad =
            |what: &str, e: String| ReportError::Histogram(name.to_owned(), what.to_owned(), e);
        let mut rec = Recorder::new(self.timeline_step_secs);
        for (op_name, o) in &self.operations {
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == op_name)
                .ok_or_else(|| bad(op_name, "unknown operation".into()))?;
            let mut s = OpStats {
                latency: decode(&o.histogram, histogram()).map_err(|e| bad(op_name, e))?,
                errors: o.errors_by_kind.clone(),
                recall: (o.recall_sum, o.recall_checked),
                ..OpStats::default()
            };
            if let Some(f) = &o.first_event_histogram {
                s.first_event = decode(f, histogram()).map_err(|e| bad(op_name, e))?;
            }
            rec.ops.insert(op, s);
        }
        for s in &self.timeline {
            let second = format!("second {}", s.second);
            rec.timeline.push(Second {
                latency: decode(&s.histogram, coarse_histogram()).map_err(|e| bad(&second, e))?,
                errors: s.errors,
            });
        }
        rec.late_sends = self.late_sends;
        rec.max_send_lag = std::time::Duration::from_secs_f64(self.max_send_lag_ms.max(0.0) / 1e3);
        Ok(rec)
    }
}

impl Report {
    /// The summary printed at the end of a run.
    pub fn text(&self) -> String {
        let l = &self.latency_ms;
        let mut out = format!(
            "{}: {} requests in {:.1} s{}, {} errors ({:.3} %), {:.1} ok/s\n",
            self.scenario.name,
            self.requests,
            self.duration_secs,
            if self.interrupted {
                " (stopped early: partial)"
            } else {
                ""
            },
            self.errors,
            self.error_rate * 100.0,
            self.throughput,
        );
        out.push_str(&format!(
            "{:<16} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "operation",
            "requests",
            "errors",
            "ok/s",
            "p50 ms",
            "p90",
            "p95",
            "p99",
            "p99.9",
            "max"
        ));
        let row = |name: &str, n: u64, e: u64, t: f64, l: &Latency| {
            format!(
                "{name:<16} {n:>9} {e:>7} {t:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                l.p50, l.p90, l.p95, l.p99, l.p999, l.max
            )
        };
        out.push_str(&row("all", self.requests, self.errors, self.throughput, l));
        for (name, o) in &self.operations {
            out.push_str(&row(
                name,
                o.requests,
                o.errors,
                o.throughput,
                &o.latency_ms,
            ));
            if let Some(f) = &o.first_event_ms {
                out.push_str(&format!(
                    "  first event ms: p50 {:.2} p95 {:.2} p99 {:.2}\n",
                    f.p50, f.p95, f.p99
                ));
            }
            if let Some(r) = o.recall {
                out.push_str(&format!(
                    "  recall@{}: {r:.4} over {} searches\n",
                    self.scenario.dataset.top_k, o.recall_checked
                ));
            }
        }
        if self.setup.memories > 0 {
            out.push_str(&format!(
                "preload: {} memories in {:.1} s = {:.0}/s (batched, before the run)\n",
                self.setup.memories,
                self.setup.secs,
                self.setup.rate()
            ));
        }
        for (k, v) in &self.errors_by_kind {
            out.push_str(&format!("errors {k}: {v}\n"));
        }
        if self.late_sends > 0 {
            out.push_str(&format!(
                "late sends: {} (longest {:.1} ms): every slot was busy; their wait is in their latency\n",
                self.late_sends, self.max_send_lag_ms
            ));
        }
        out
    }
}

/// One report of runs of one scenario on several machines at once: counts
/// add, histograms add (so percentiles are those of all the samples), the
/// timelines add point by point from each run's start.
pub fn merge(reports: &[(String, Report)]) -> Result<Report, ReportError> {
    let (_, first) = reports.first().ok_or(ReportError::Empty)?;
    let mut rec = Recorder::new(first.timeline_step_secs);
    let mut machines = Vec::new();
    let mut routes: BTreeMap<String, u64> = BTreeMap::new();
    let mut setup = Setup::default();
    for (name, r) in reports {
        setup.memories += r.setup.memories;
        setup.secs = setup.secs.max(r.setup.secs);
        if r.timeline_step_secs != first.timeline_step_secs {
            return Err(ReportError::Step(
                first.timeline_step_secs,
                r.timeline_step_secs,
            ));
        }
        if r.scenario.name != first.scenario.name {
            return Err(ReportError::Mismatch(
                first.scenario.name.clone(),
                r.scenario.name.clone(),
            ));
        }
        rec.merge(&r.recorder(name)?);
        machines.extend(r.machines.iter().cloned());
        for (k, v) in &r.requests_by_route {
            *routes.entry(k.clone()).or_default() += v;
        }
    }
    let mut merged = Report::new(&first.scenario, &first.url, machines, &rec, routes);
    merged.setup = setup;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Outcome, Sample};
    use std::time::Duration;

    fn scenario() -> Scenario {
        toml::from_str(
            "name = \"t\"\n[load]\nmode = \"closed\"\nduration_secs = 3\n[operations]\nsearch = 1\nstore = 1\n",
        )
        .unwrap()
    }

    fn samples() -> Vec<Sample> {
        // Deterministic spread: latencies 0.1 ms .. 400 ms, a few errors, recall on some.
        (0..5000u64)
            .map(|i| Sample {
                op: if i % 3 == 0 { Op::Store } else { Op::Search },
                at: Duration::from_micros(i * 600),
                latency: Duration::from_micros(100 + (i * 7919) % 400_000),
                outcome: if i % 97 == 0 {
                    Outcome::Error(if i % 2 == 0 {
                        "http 503".into()
                    } else {
                        "timeout".into()
                    })
                } else {
                    Outcome::Ok
                },
                first_event: None,
                recall: (i % 5 == 0).then(|| (i % 11) as f64 / 10.0),
            })
            .collect()
    }

    fn machine(secs: f64) -> Machine {
        Machine {
            host: "h".into(),
            cpus: 2,
            started_at: "2026-12-02T00:00:00Z".into(),
            duration_secs: secs,
            interrupted: false,
        }
    }

    #[test]
    fn a_merge_of_two_runs_equals_one_run_over_both() {
        let s = scenario();
        let (mut one, mut a, mut b) = (
            Recorder::default(),
            Recorder::default(),
            Recorder::default(),
        );
        for (i, x) in samples().iter().enumerate() {
            one.add(x);
            if i % 2 == 0 { a.add(x) } else { b.add(x) }
        }
        let routes = |n| BTreeMap::from([("POST /v1/memories/search".to_owned(), n)]);
        let whole = Report::new(&s, "u", vec![machine(3.0), machine(3.0)], &one, routes(10));
        let ra = Report::new(&s, "u", vec![machine(3.0)], &a, routes(4));
        let rb = Report::new(&s, "u", vec![machine(3.0)], &b, routes(6));
        // Through JSON, as the files travel.
        let back = |r: &Report| {
            serde_json::from_str::<Report>(&serde_json::to_string(r).unwrap()).unwrap()
        };
        let merged = merge(&[("a".into(), back(&ra)), ("b".into(), back(&rb))]).unwrap();
        assert_eq!(merged.requests, 5000);
        assert_eq!(merged.latency_ms, whole.latency_ms);
        assert_eq!(merged.errors_by_kind, whole.errors_by_kind);
        assert_eq!(merged.timeline, whole.timeline);
        for (name, o) in &whole.operations {
            let m = &merged.operations[name];
            assert_eq!(
                (m.requests, m.ok, m.errors),
                (o.requests, o.ok, o.errors),
                "{name}"
            );
            assert_eq!(m.latency_ms, o.latency_ms, "{name}");
            assert!(
                (m.recall.unwrap_or(0.0) - o.recall.unwrap_or(0.0)).abs() < 1e-12,
                "{name}"
            );
        }
        assert_eq!(merged.requests_by_route, routes(10));
        assert_eq!(merged.machines.len(), 2);
        // The split really split: each half alone differs from the whole.
        assert_ne!(ra.latency_ms, whole.latency_ms);
    }

    #[test]
    fn reports_of_other_scenarios_or_formats_are_refused() {
        let s = scenario();
        let rec = Recorder::default();
        let a = Report::new(&s, "u", vec![machine(1.0)], &rec, BTreeMap::new());
        let mut b = a.clone();
        b.scenario.name = "other".into();
        let err = merge(&[("a".into(), a.clone()), ("b".into(), b)]).unwrap_err();
        assert!(err.to_string().contains("different scenarios"), "{err}");
        let mut c = a;
        c.operations.insert(
            "search".into(),
            OpReport {
                histogram: "not base64!".into(),
                ..serde_json::from_value(serde_json::json!({
                    "requests": 0, "ok": 0, "errors": 0, "errors_by_kind": {}, "throughput": 0.0,
                    "latency_ms": Latency::default(), "histogram": ""
                }))
                .unwrap()
            },
        );
        let err = c.recorder("c.json").unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
    }
}
