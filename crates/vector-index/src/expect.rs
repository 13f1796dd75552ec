//! What a write expects of the record it replaces: the optimistic-concurrency
//! check every store applies and [`crate::IndexError::VersionConflict`] reports.
//! A leaf, so errors and stores can both name it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a write requires of the stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    /// Anything (or nothing) may be stored.
    Any,
    /// No record may exist.
    Absent,
    /// The record must exist at exactly this version.
    Version(u64),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Any => f.write_str("any version"),
            Expect::Absent => f.write_str("no record"),
            Expect::Version(v) => write!(f, "version {v}"),
        }
    }
}

impl Expect {
    /// Whether a record at `found` (or none) satisfies this expectation.
    pub fn allows(self, found: Option<u64>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Absent => found.is_none(),
            Expect::Version(v) => found == Some(v),
        }
    }
}
