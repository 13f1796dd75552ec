//! Text to vectors: the [`Embedder`] trait and its providers.
//!
//! A memory namespace is bound to one model and dimension (memory-server's
//! service layer); providers only turn batches of text into vectors.

mod batch;
mod builtin;
mod config;
pub mod local;
mod openai;
mod remote;
mod vertex;

use std::future::Future;
use std::pin::Pin;

use crate::ProviderError;

pub use self::builtin::BuiltinEmbedder;
pub use self::config::{EmbedderConfig, Resolved, from_config};
pub use self::local::{LocalEmbedder, LocalSettings};
pub use self::openai::{OpenAiEmbedder, OpenAiSettings, OpenAiWire};
pub use self::remote::{RemoteEmbedder, RemoteSettings, Wire};
pub use self::vertex::{VertexEmbedder, VertexSettings, VertexWire};

/// What a text will be used for; some models embed queries and documents differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Text to store and be found (a memory).
    Document,
    /// Text to search with.
    Query,
}

/// Boxed future returned by [`Embedder::embed`].
pub type EmbedFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>, ProviderError>> + Send + 'a>>;

/// Turns text into vectors of one model.
pub trait Embedder: Send + Sync + 'static {
    /// Stable identifier of the model (stored with every memory).
    fn model_id(&self) -> &str;
    /// Length of every vector it returns.
    fn dims(&self) -> usize;
    /// What nearness of its vectors means, in a sentence for operators
    /// (`/readyz`): whether it captures meaning or only shared words.
    fn captures(&self) -> &'static str {
        "meaning: texts that say the same thing in other words land close (a semantic model)"
    }
    /// Whether it captures meaning (see [`Embedder::captures`]).
    fn semantic(&self) -> bool {
        true
    }
    /// One vector per text, in order.
    fn embed<'a>(&'a self, texts: &'a [String], purpose: Purpose) -> EmbedFuture<'a>;
}
