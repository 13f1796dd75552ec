//! The data model and API shapes (defined in `memory-api`, shared with the client).

pub use memory_api::*;
