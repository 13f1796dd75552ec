//! Filtered approximate nearest-neighbour search over points `(id, vector, payload)`.
//!
//! Layers, bottom up:
//! - [`vector`]: validation, L2 normalisation and the SIMD dot product;
//! - [`backend`]: ANN graphs behind the [`AnnBackend`] trait (`hnsw_rs`, `usearch`);
//! - [`payload`], [`filter`], [`payload_index`]: what a point carries, how to
//!   filter on it, and the bitmap index that answers filters;
//! - [`planner`]: exact scan or (filtered) graph search;
//! - [`collection`]: ties them together behind ids, with concurrency rules;
//! - [`synthetic`]: clustered test data and exact ground truth.
//!
//! Similarity is cosine on L2-normalised vectors, i.e. a dot product.

pub mod backend;
pub mod collection;
pub mod error;
pub mod filter;
pub mod payload;
pub mod payload_index;
pub mod planner;
pub mod synthetic;
pub mod vector;

/// Internal point key: dense, never reused within a collection's lifetime.
pub type Key = u32;

pub use backend::{AnnBackend, BackendKind, GraphParams};
pub use collection::{
    Collection, CollectionConfig, CollectionStats, Hit, Point, Query, SearchResult,
};
pub use error::{IndexError, Result};
pub use filter::{Condition, Filter};
pub use payload::{Field, Millis, Payload, TimeField};
pub use planner::{Plan, PlannerConfig};
pub use uuid::Uuid;
