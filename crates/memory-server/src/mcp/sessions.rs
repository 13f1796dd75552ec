//! Older-era (2025-11-25) MCP sessions kept in the shared store.
//!
//! rmcp keeps a session's live state in the process that answered
//! `initialize`. Behind a load balancer the next request may reach another
//! instance; rmcp then asks this store for the session's `initialize`
//! parameters and restores the session there, so clients never have to
//! re-initialize. The records live in their own small collection on the same
//! store as the memories (Redis in production, shared by every instance) and
//! expire after `mcp.session_ttl_secs` without use.

use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};
use uuid::Uuid;
use vector_index::Payload;
use vector_index::durable::{DurableCollection, now_millis};
use vector_index::store::{Expect, Store};

use crate::service::derived_id;

/// The collection's name in the store.
pub const SESSIONS_NAME: &str = "mcp-sessions";
/// Its vector dimension: its points are never searched.
pub const SESSIONS_DIMS: usize = 1;

/// MCP session state in a store collection.
pub struct McpSessions<S: Store> {
    collection: Arc<DurableCollection<S>>,
    ttl: Duration,
}

impl<S: Store> McpSessions<S> {
    /// Sessions in `collection`, each kept for `ttl` after it was last stored.
    pub fn new(collection: Arc<DurableCollection<S>>, ttl: Duration) -> Self {
        Self { collection, ttl }
    }
}

fn record_id(session_id: &str) -> Uuid {
    derived_id(&["mcp-session", session_id])
}

#[async_trait::async_trait]
impl<S: Store> SessionStore for McpSessions<S> {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(record) = self.collection.get(record_id(session_id)).await? else {
            return Ok(None);
        };
        // The sweeper deletes expired sessions; one not swept yet is gone already.
        if record.payload.expires_at.is_some_and(|t| t <= now_millis()) {
            return Ok(None);
        }
        Ok(Some(serde_json::from_slice(&record.document)?))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let document = serde_json::to_vec(state)?;
        let now = now_millis();
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let payload = Payload {
            namespace: SESSIONS_NAME.to_owned(),
            created_at: now,
            updated_at: now,
            expires_at: Some(now.saturating_add(ttl)),
            ..Payload::default()
        };
        self.collection
            .upsert_document(
                record_id(session_id),
                &[1.0],
                payload,
                &document,
                Expect::Any,
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.collection
            .delete(record_id(session_id), Expect::Any)
            .await?;
        Ok(())
    }
}
