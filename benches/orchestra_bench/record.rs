//! What a run measured, as it is measured: HDR histograms of latency per
//! operation and per second, errors by kind, time to first event, recall.
//!
//! A [`Recorder`] is also what reports merge into: a report's histograms
//! decode back into one ([`crate::report::Report::recorder`]), recorders add,
//! and the figures of the sum are computed again from the histograms, so a
//! merged report is the report of one run over all the samples.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::scenario::Op;

/// Highest latency a histogram holds, in microseconds (one hour); longer is clamped.
const MAX_MICROS: u64 = 3_600_000_000;
/// Significant decimal digits kept: values are exact to 0.1 %.
const SIGFIG: u8 = 3;
/// Digits of the timeline's histograms (1 %): there is one per point, and
/// at 3 digits each would take 180 kB of memory.
const TIMELINE_SIGFIG: u8 = 2;
/// Most points of a timeline: a longer run widens its points.
const MAX_POINTS: f64 = 600.0;

/// An empty latency histogram in microseconds.
#[allow(clippy::expect_used)] // constant bounds, valid by construction; no outside data
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, SIGFIG).expect("1 µs .. 1 h at 3 digits is valid")
}

/// An empty timeline histogram (microseconds, 2 digits).
#[allow(clippy::expect_used)] // constant bounds, valid by construction; no outside data
pub fn coarse_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, TIMELINE_SIGFIG)
        .expect("1 µs .. 1 h at 2 digits is valid")
}

/// Seconds per timeline point for a run of `duration_secs`: 1, or wider so
/// that a long run has at most 600 points.
pub fn step_for(duration_secs: f64) -> u64 {
    ((duration_secs / MAX_POINTS).ceil() as u64).max(1)
}

/// Records `d` in `h` (microseconds, at least 1, clamped to an hour).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros())
        .unwrap_or(MAX_MICROS)
        .clamp(1, MAX_MICROS);
    h.saturating_record(us);
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with success.
    Ok,
    /// Failed; the kind is a short label (`http 503`, `timeout`, `connect`, `tool error`, ...).
    Error(String),
}

/// One finished request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// What it did.
    pub op: Op,
    /// Its intended send time (open loop) or send time (closed loop), from the measured start.
    pub at: Duration,
    /// From the intended send time to the whole answer.
    pub latency: Duration,
    /// Success or the error's kind.
    pub outcome: Outcome,
    /// From the intended send time to the first streamed event (streamed runs).
    pub first_event: Option<Duration>,
    /// The recall of a vector search against the dataset's exact neighbours.
    pub recall: Option<f64>,
}

/// The figures of one operation.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latency of successful requests.
    pub latency: Histogram<u64>,
    /// Failed requests by kind.
    pub errors: BTreeMap<String, u64>,
    /// Time to first event of successful streamed requests.
    pub first_event: Histogram<u64>,
    /// Sum of recall values and how many.
    pub recall: (f64, u64),
}

impl Default for OpStats {
    fn default() -> Self {
        Self {
            latency: histogram(),
            errors: BTreeMap::new(),
            first_event: histogram(),
            recall: (0.0, 0),
        }
    }
}

impl OpStats {
    /// Successful requests.
    pub fn ok(&self) -> u64 {
        self.latency.len()
    }

    /// Failed requests.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    fn add(&mut self, other: &OpStats) {
        add_hist(&mut self.latency, &other.latency);
        add_hist(&mut self.first_event, &other.first_event);
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.recall.0 += other.recall.0;
        self.recall.1 += other.recall.1;
    }
}

/// One point of the timeline: a second of the measured run, or
/// [`Recorder::step_secs`] of them.
#[derive(Debug, Clone)]
pub struct Second {
    /// Latency of the successful requests meant to go in this point (2 digits).
    pub latency: Histogram<u64>,
    /// Failed requests meant to go in this point.
    pub errors: u64,
}

impl Default for Second {
    fn default() -> Self {
        Self {
            latency: coarse_histogram(),
            errors: 0,
        }
    }
}

/// Adds `b` into `a`; both have the same bounds, so this cannot fail.
fn add_hist(a: &mut Histogram<u64>, b: &Histogram<u64>) {
    // Same bounds on both sides (every histogram comes from `histogram()` or
    // is decoded and checked), so the only error, a value out of range, is impossible.
    let _ = a.add(b);
}

/// Everything a run (or a merge of runs) measured.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Per operation.
    pub ops: BTreeMap<Op, OpStats>,
    /// Seconds per timeline point.
    pub step_secs: u64,
    /// Per point of the measured run.
    pub timeline: Vec<Second>,
    /// Requests sent later than meant, because every slot was in flight.
    pub late_sends: u64,
    /// The longest such delay.
    pub max_send_lag: Duration,
}

/// Most timeline points kept, whatever the samples say.
const MAX_INDEX: u64 = MAX_POINTS as u64 * 2;

impl Default for Recorder {
    fn default() -> Self {
        Self::new(1)
    }
}

impl Recorder {
    /// An empty recorder with timeline points `step_secs` wide.
    pub fn new(step_secs: u64) -> Self {
        Self {
            ops: BTreeMap::new(),
            step_secs: step_secs.max(1),
            timeline: Vec::new(),
            late_sends: 0,
            max_send_lag: Duration::ZERO,
        }
    }

    /// Adds one finished request.
    pub fn add(&mut self, s: &Sample) {
        let op = self.ops.entry(s.op).or_default();
        let sec = (s.at.as_secs() / self.step_secs).min(MAX_INDEX) as usize;
        if self.timeline.len() <= sec {
            self.timeline.resize_with(sec + 1, Second::default);
        }
        let second = &mut self.timeline[sec];
        match &s.outcome {
            Outcome::Ok => {
                record(&mut op.latency, s.latency);
                record(&mut second.latency, s.latency);
                if let Some(f) = s.first_event {
                    record(&mut op.first_event, f);
                }
            }
            Outcome::Error(kind) => {
                *op.errors.entry(kind.clone()).or_default() += 1;
                second.errors += 1;
            }
        }
        if let Some(r) = s.recall {
            op.recall.0 += r;
            op.recall.1 += 1;
        }
    }

    /// Notes a request that left `lag` after its intended time.
    pub fn late(&mut self, lag: Duration) {
        self.late_sends += 1;
        self.max_send_lag = self.max_send_lag.max(lag);
    }

    /// Adds another recorder's figures (a run from another machine, with the same step).
    pub fn merge(&mut self, other: &Recorder) {
        for (op, stats) in &other.ops {
            self.ops.entry(*op).or_default().add(stats);
        }
        if self.timeline.len() < other.timeline.len() {
            self.timeline
                .resize_with(other.timeline.len(), Second::default);
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            add_hist(&mut mine.latency, &theirs.latency);
            mine.errors += theirs.errors;
        }
        self.late_sends += other.late_sends;
        self.max_send_lag = self.max_send_lag.max(other.max_send_lag);
    }

    /// Successful latency over every operation.
    pub fn all_latency(&self) -> Histogram<u64> {
        let mut h = histogram();
        for s in self.ops.values() {
            add_hist(&mut h, &s.latency);
        }
        h
    }

    /// Requests (ok and failed) over every operation.
    pub fn requests(&self) -> u64 {
        self.ops.values().map(|s| s.ok() + s.failed()).sum()
    }

    /// Failed requests over every operation.
    pub fn failed(&self) -> u64 {
        self.ops.values().map(OpStats::failed).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_exact_to_three_digits_and_errors_are_kept_apart() {
        let mut r = Recorder::default();
        for ms in 1..=100u64 {
            r.add(&Sample {
                op: Op::Search,
                at: Duration::from_millis(ms * 20),
                latency: Duration::from_millis(ms),
                outcome: Outcome::Ok,
                first_event: None,
                recall: None,
            });
        }
        r.add(&Sample {
            op: Op::Search,
            at: Duration::ZERO,
            latency: Duration::from_secs(30),
            outcome: Outcome::Error("timeout".into()),
            first_event: None,
            recall: None,
        });
        let s = &r.ops[&Op::Search];
        assert_eq!((s.ok(), s.failed()), (100, 1));
        let p99 = s.latency.value_at_quantile(0.99) as f64 / 1e3;
        assert!((p99 - 99.0).abs() < 0.1, "{p99}");
        assert_eq!(r.timeline.len(), 3, "100 samples over 2 s");
        assert_eq!(r.timeline[0].errors, 1);
    }

    #[test]
    fn a_long_run_widens_its_timeline_points() {
        assert_eq!(step_for(30.0), 1);
        assert_eq!(step_for(600.0), 1);
        assert_eq!(step_for(3600.0), 6);
        let mut r = Recorder::new(step_for(3600.0));
        for s in 0..3600u64 {
            r.add(&Sample {
                op: Op::Search,
                at: Duration::from_secs(s),
                latency: Duration::from_millis(1),
                outcome: Outcome::Ok,
                first_event: None,
                recall: None,
            });
        }
        assert_eq!(r.timeline.len(), 600);
        assert_eq!(r.timeline[0].latency.len(), 6);
    }
}
