//! Filtered approximate nearest-neighbour search over points `(id, vector, payload)`.
//!
//! Layers, bottom up:
//! - [`vector`]: validation, L2 normalisation and the SIMD dot products;
//! - [`backend`]: ANN graphs behind the [`AnnBackend`] trait (`hnsw_rs`, `usearch`),
//!   and the exact top k of a set of keys (for usearch, from 8-bit rows with an
//!   error bound);
//! - [`payload`], [`filter`], [`payload_index`]: what a point carries, how to
//!   filter on it, and the bitmap index that answers filters;
//! - [`planner`]: exact scan or (filtered) graph search;
//! - [`text`], [`lexical`]: text analysis and the per-namespace BM25 index
//!   for keyword search over each point's [`Payload::text`];
//! - [`collection`]: ties them together behind ids, with concurrency rules (a
//!   record collection, [`CollectionConfig::records`], keeps points without vectors);
//! - [`store`]: durable records (embedded redb file, or Redis) behind one trait,
//!   each write carrying what it [`expect`]s of the record it replaces;
//! - [`durable`]: a collection kept in the store and in step across instances;
//! - [`place`]: where a service keeps its collections (`[storage]`), and
//!   opening one there;
//! - [`synthetic`]: clustered test data and exact ground truth.
//!
//! Similarity is cosine on L2-normalised vectors, i.e. a dot product.
//!
//! ```
//! use vector_index::{Collection, CollectionConfig, Field, Filter, Payload, Query, Uuid};
//!
//! let c = Collection::new(CollectionConfig::new(3))?;
//! let id = Uuid::now_v7();
//! c.upsert(id, &[0.1, 0.9, 0.0], Payload::new("team-a"))?;
//! let query = Query::new(vec![0.0, 1.0, 0.0], 5).filter(Filter::all().eq(Field::Namespace, "team-a"));
//! let result = c.search(&query)?;
//! assert_eq!(result.hits[0].id, id);
//! println!("{:?} via {}", result.hits, result.plan.name());
//! # Ok::<(), vector_index::IndexError>(())
//! ```

pub mod backend;
pub mod collection;
pub mod durable;
pub mod error;
pub mod expect;
pub mod filter;
pub mod lexical;
pub mod payload;
pub mod payload_index;
pub mod place;
pub mod planner;
mod snapshot;
pub mod store;
pub mod synthetic;
pub mod text;
mod topk;
pub mod vector;

/// Internal point key: dense, never reused within a collection's lifetime.
pub type Key = u32;

pub use backend::{AnnBackend, BackendKind, GraphParams, Quantization};
pub use collection::{
    Collection, CollectionConfig, CollectionStats, Hit, KeywordQuery, KeywordResult, Point, Query,
    SearchResult, Unpacked,
};
pub use error::{IndexError, Result};
pub use filter::{Condition, Filter};
pub use lexical::Bm25;
pub use payload::{Field, Millis, Payload, TimeField};
pub use payload_index::PayloadView;
pub use planner::{Plan, PlannerConfig, Strategy};
pub use text::{AnalyzerSettings, Language, TextConfig};
pub use uuid::Uuid;
