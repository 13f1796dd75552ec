//! The external models AI Orchestra calls, each stating only its wire format.
//!
//! - [`embed`]: text to vectors — the [`embed::Embedder`] trait, the offline
//!   built-in embedder, OpenAI-compatible servers and Vertex AI, their
//!   configuration ([`embed::EmbedderConfig`]) and the factory that builds one
//!   from it. Retries, batching and caching are written once
//!   (`embed::remote`), and each provider supplies a [`embed::Wire`].
//! - [`chat`]: conversations to answers — the [`chat::ChatModel`] trait
//!   (streamed text and tool-call deltas, usage, finish reason, structured
//!   output), Gemini on Vertex AI or the Gemini API, OpenAI-compatible
//!   servers, and a scripted model for offline use; their configuration
//!   ([`chat::ChatModelConfig`]) and factory.
//! - [`google`]: OAuth tokens from Application Default Credentials, for any
//!   Google API (Vertex AI embeddings and Gemini).
//! - [`retry`]: one provider request with retries, shared by all of them.
//!
//! One error type, [`ProviderError`], says whether to retry.

pub mod chat;
pub mod embed;
pub mod google;
pub mod retry;

/// A failed call to a provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or kept failing; retry later.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider answered something unusable, or is misconfigured.
    #[error("provider error: {0}")]
    Provider(String),
}
