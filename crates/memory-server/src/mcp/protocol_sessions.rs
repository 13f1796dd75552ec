//! Older-era (2025-11-25) MCP protocol sessions (the `Mcp-Session-Id`
//! handshake state, not working memory) kept in the shared store.
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
use vector_index::store::AnyStore;
use vector_index::store::Expect;

use crate::ids::derived_id;

/// The collection's name in the store.
pub const SESSIONS_NAME: &str = "mcp-sessions";

/// MCP session state in a store collection.
pub struct ProtocolSessions {
    collection: Arc<DurableCollection<AnyStore>>,
    ttl: Duration,
}

impl ProtocolSessions {
    /// Sessions in `collection`, each kept for `ttl` after it was last stored.
    pub fn new(collection: Arc<DurableCollection<AnyStore>>, ttl: Duration) -> Self {
        Self { collection, ttl }
    }
}

fn record_id(session_id: &str) -> Uuid {
    derived_id(&["mcp-session", session_id])
}

fn owner_id(session_id: &str) -> Uuid {
    derived_id(&["mcp-session-owner", session_id])
}

/// Who opened each protocol session: a session answers only the key (and
/// agent) that initialized it, so a session id seen elsewhere (a log, a
/// proxy) cannot be used or ended with another key.
#[async_trait::async_trait]
pub trait SessionOwners: Send + Sync {
    /// Records `owner` as the opener of `session_id`.
    async fn bind(&self, session_id: &str, owner: &str) -> Result<(), SessionStoreError>;
    /// The opener of `session_id`, if the session is known; refreshes the
    /// record's expiry when half of it has passed.
    async fn owner(&self, session_id: &str) -> Result<Option<String>, SessionStoreError>;
}

impl ProtocolSessions {
    /// Writes `document` under `id`, expiring `ttl` from now.
    async fn put(&self, id: Uuid, document: &[u8]) -> Result<(), SessionStoreError> {
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
            .upsert_document(id, &[], payload, document, Expect::Any)
            .await?;
        Ok(())
    }

    /// The record under `id` unless it has expired (the sweeper may not have run yet).
    async fn live(
        &self,
        id: Uuid,
    ) -> Result<Option<vector_index::store::Record>, SessionStoreError> {
        let record = self.collection.get(id).await?;
        Ok(record.filter(|r| r.payload.expires_at.is_none_or(|t| t > now_millis())))
    }
}

#[async_trait::async_trait]
impl SessionOwners for ProtocolSessions {
    async fn bind(&self, session_id: &str, owner: &str) -> Result<(), SessionStoreError> {
        self.put(owner_id(session_id), owner.as_bytes()).await
    }

    async fn owner(&self, session_id: &str) -> Result<Option<String>, SessionStoreError> {
        let Some(record) = self.live(owner_id(session_id)).await? else {
            return Ok(None);
        };
        let owner = String::from_utf8_lossy(&record.document).into_owned();
        let half_ttl = i64::try_from(self.ttl.as_millis() / 2).unwrap_or(i64::MAX);
        if now_millis().saturating_sub(record.payload.updated_at) > half_ttl {
            self.put(owner_id(session_id), owner.as_bytes()).await?;
        }
        Ok(Some(owner))
    }
}

#[async_trait::async_trait]
impl SessionStore for ProtocolSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        match self.live(record_id(session_id)).await? {
            Some(record) => Ok(Some(serde_json::from_slice(&record.document)?)),
            None => Ok(None),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        self.put(record_id(session_id), &serde_json::to_vec(state)?)
            .await
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        for id in [record_id(session_id), owner_id(session_id)] {
            self.collection.delete(id, Expect::Any).await?;
        }
        Ok(())
    }
}
