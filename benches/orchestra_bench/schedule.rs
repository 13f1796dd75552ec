//! When each open-loop request is meant to go: the rate shape as a sequence
//! of intended send times.
//!
//! The intended time, not the time a request actually left, is where its
//! latency starts (as wrk2 does): when the server stalls and sends back up,
//! the requests that should have gone during the stall carry the wait, so a
//! pause cannot hide by slowing the load down (coordinated omission).

use crate::scenario::{Load, Ramp, Step};

/// An open-loop rate shape over the measured run (warm-up runs at its first rate).
#[derive(Debug, Clone)]
pub enum Shape {
    /// A fixed rate.
    Fixed(f64),
    /// Rates held one after another; the last holds until the end.
    Steps(Vec<Step>),
    /// A linear change from one rate to another over `secs`.
    Ramp {
        /// The ramp's ends.
        ramp: Ramp,
        /// Its length in seconds.
        secs: f64,
    },
}

impl Shape {
    /// The shape `load` asks for (`None` for a closed loop).
    pub fn of(load: &Load, duration_secs: f64) -> Option<Self> {
        if let Some(r) = load.rate {
            Some(Self::Fixed(r))
        } else if let Some(s) = &load.steps {
            Some(Self::Steps(s.clone()))
        } else {
            load.ramp.map(|ramp| Self::Ramp {
                ramp,
                secs: duration_secs,
            })
        }
    }

    /// Requests per second at `t` seconds into the measured run (t < 0: warm-up).
    pub fn rate_at(&self, t: f64) -> f64 {
        match self {
            Self::Fixed(r) => *r,
            Self::Steps(steps) => {
                let mut end = 0.0;
                for s in steps {
                    end += s.secs;
                    if t < end {
                        return s.rate;
                    }
                }
                steps.last().map_or(1.0, |s| s.rate)
            }
            Self::Ramp { ramp, secs } => {
                let f = (t / secs).clamp(0.0, 1.0);
                ramp.from + (ramp.to - ramp.from) * f
            }
        }
    }

    /// The intended send time after one at `t` (seconds from the measured start).
    pub fn next(&self, t: f64) -> f64 {
        t + 1.0 / self.rate_at(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(shape: &Shape, from: f64, to: f64) -> usize {
        let (mut t, mut n) = (from, 0);
        while t < to {
            n += 1;
            t = shape.next(t);
        }
        n
    }

    #[test]
    fn a_fixed_rate_sends_rate_times_seconds() {
        assert_eq!(count(&Shape::Fixed(250.0), 0.0, 4.0), 1000);
    }

    #[test]
    fn steps_hold_each_rate_for_its_time() {
        let s = Shape::Steps(vec![
            Step {
                rate: 10.0,
                secs: 2.0,
            },
            Step {
                rate: 100.0,
                secs: 1.0,
            },
        ]);
        // Within one send of the exact count: the times add up in floating point.
        assert!((20..=21).contains(&count(&s, 0.0, 2.0)));
        assert!((100..=101).contains(&count(&s, 2.0, 3.0)));
        assert_eq!(s.rate_at(-1.0), 10.0, "warm-up runs at the first rate");
    }

    #[test]
    fn a_ramp_sends_its_average_rate() {
        let s = Shape::Ramp {
            ramp: Ramp {
                from: 0.0 + 10.0,
                to: 190.0,
            },
            secs: 10.0,
        };
        let n = count(&s, 0.0, 10.0) as f64;
        assert!((n - 1000.0).abs() < 15.0, "{n}");
        assert_eq!(s.rate_at(5.0), 100.0);
    }
}
