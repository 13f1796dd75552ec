//! HTTP handlers, one module per resource; each handler parses, calls the service, renders.

pub mod jobs;
pub mod memories;
pub mod namespaces;
pub mod ops;
pub mod portable;
pub mod sessions;
