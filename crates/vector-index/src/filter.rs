//! Search filters: a conjunction of conditions on payload fields.

use crate::payload::{Field, Millis, Payload, TimeField};

/// One condition on a point's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The field has this value (for [`Field::Tag`]: one of the tags is this value).
    Equals(Field, String),
    /// The field has one of these values; an empty list matches nothing.
    AnyOf(Field, Vec<String>),
    /// The timestamp lies in `[from, to)`; either bound may be open.
    Range {
        /// Which timestamp.
        field: TimeField,
        /// Inclusive lower bound.
        from: Option<Millis>,
        /// Exclusive upper bound.
        to: Option<Millis>,
    },
    /// The point has no `expires_at`, or it is later than this instant.
    NotExpiredAt(Millis),
    /// The inner filter does not match (e.g. "not superseded before t").
    Not(Filter),
}

/// A conjunction (AND) of conditions; the empty filter matches every point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// The conditions, all of which must hold.
    pub conditions: Vec<Condition>,
}

impl Filter {
    /// The filter that matches everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds `field == value`.
    pub fn eq(mut self, field: Field, value: impl Into<String>) -> Self {
        self.conditions.push(Condition::Equals(field, value.into()));
        self
    }

    /// Adds `field ∈ values`.
    pub fn any_of<S: Into<String>>(
        mut self,
        field: Field,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        let values = values.into_iter().map(Into::into).collect();
        self.conditions.push(Condition::AnyOf(field, values));
        self
    }

    /// Adds "has every one of these tags".
    pub fn all_tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        for t in tags {
            self.conditions
                .push(Condition::Equals(Field::Tag, t.into()));
        }
        self
    }

    /// Adds `from <= field < to`.
    pub fn range(mut self, field: TimeField, from: Option<Millis>, to: Option<Millis>) -> Self {
        self.conditions.push(Condition::Range { field, from, to });
        self
    }

    /// Adds "not expired at `now`".
    pub fn not_expired_at(mut self, now: Millis) -> Self {
        self.conditions.push(Condition::NotExpiredAt(now));
        self
    }

    /// Adds "does not match `inner`".
    pub fn not(mut self, inner: Filter) -> Self {
        self.conditions.push(Condition::Not(inner));
        self
    }

    /// Whether the filter has no conditions.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Evaluates the filter on one payload directly (the reference semantics the index must match).
    pub fn matches(&self, p: &Payload) -> bool {
        self.conditions.iter().all(|c| c.matches(p))
    }
}

impl Condition {
    /// Evaluates this condition on one payload.
    pub fn matches(&self, p: &Payload) -> bool {
        match self {
            Condition::Equals(f, v) => p.terms().any(|(tf, tv)| tf == *f && tv == v),
            Condition::AnyOf(f, vs) => p
                .terms()
                .any(|(tf, tv)| tf == *f && vs.iter().any(|v| v == tv)),
            Condition::Range { .. } | Condition::NotExpiredAt(_) => {
                self.time_holds(|f| p.time(f)).unwrap_or(false)
            }
            Condition::Not(inner) => !inner.matches(p),
        }
    }

    /// Evaluates a time condition given a point's timestamps; `None` for keyword conditions.
    pub(crate) fn time_holds(&self, time: impl Fn(TimeField) -> Option<Millis>) -> Option<bool> {
        match self {
            Condition::Range { field, from, to } => Some(
                time(*field)
                    .is_some_and(|t| from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)),
            ),
            Condition::NotExpiredAt(now) => Some(time(TimeField::Expires).is_none_or(|e| e > *now)),
            Condition::Equals(..) | Condition::AnyOf(..) | Condition::Not(_) => None,
        }
    }
}
