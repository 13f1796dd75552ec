//! The data model: the API shapes (defined in `memory-api`, shared with the
//! client), and the server's own records that errors report.

pub use memory_api::*;

use serde::{Deserialize, Serialize};

/// The model a namespace is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// Embedding model id.
    pub model: String,
    /// Its vector dimension.
    pub dims: usize,
}
