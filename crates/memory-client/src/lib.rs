//! A typed async client for the AI Orchestra memory server's REST API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), memory_client::ClientError> {
//! use memory_client::{MemoryClient, NewMemory, SearchRequest};
//!
//! let client = MemoryClient::new("http://127.0.0.1:8080")?.with_key("my-key");
//! let created = client
//!     .create(&NewMemory {
//!         namespace: "team-a".into(),
//!         text: "Alice prefers green tea".into(),
//!         ..NewMemory::default()
//!     })
//!     .await?;
//! let found = client
//!     .search(&SearchRequest {
//!         namespace: "team-a".into(),
//!         query: Some("what does Alice drink?".into()),
//!         ..SearchRequest::default()
//!     })
//!     .await?;
//! assert_eq!(found.results[0].memory.id, created.memory.id);
//! # Ok(()) }
//! ```

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use memory_api::*;

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error's stable code (`invalid_argument`, `not_found`, ...).
        code: String,
        /// What to fix.
        message: String,
        /// Extra context.
        details: serde_json::Value,
    },
    /// The server could not be reached, or the answer was not the expected JSON.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The base URL is unusable.
    #[error("invalid base URL: {0}")]
    Url(String),
    /// A local input (such as an evaluation set) is unusable.
    #[error("invalid input: {0}")]
    Input(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Shorthand for client results.
pub type Result<T> = std::result::Result<T, ClientError>;

/// A client for one server; cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryClient {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    agent: Option<String>,
}

impl MemoryClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>) -> Result<Self> {
        let base = base.into().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Url(format!("{base} is not an http(s) URL")));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            base,
            key: None,
            agent: None,
        })
    }

    /// Gives up on a call after `timeout` (30 s by default).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self> {
        self.http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(self)
    }

    /// Sends `Authorization: Bearer <key>` with every call.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Acts as `agent` on calls without a body (get, update, delete, history).
    pub fn as_agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = &self.key {
            r = r.bearer_auth(k);
        }
        if let Some(a) = &self.agent {
            r = r.query(&[("as_agent", a)]);
        }
        r
    }

    async fn send<T: DeserializeOwned>(r: RequestBuilder) -> Result<T> {
        let response = r.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        Err(Self::api_error(status, response).await)
    }

    /// Sends a call whose success has no body (`204`).
    async fn send_no_content(r: RequestBuilder) -> Result<()> {
        let response = r.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(Self::api_error(status, response).await)
    }

    async fn api_error(status: StatusCode, response: reqwest::Response) -> ClientError {
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let e = &body["error"];
        ClientError::Api {
            status: status.as_u16(),
            code: e["code"].as_str().unwrap_or("unknown").to_owned(),
            message: e["message"].as_str().unwrap_or("").to_owned(),
            details: e["details"].clone(),
        }
    }

    /// Creates one memory (an identical one in the same scope is returned instead).
    pub async fn create(&self, memory: &NewMemory) -> Result<Created> {
        Self::send(self.request(Method::POST, "/v1/memories").json(memory)).await
    }

    /// Creates memories in one call.
    pub async fn create_many(&self, memories: Vec<NewMemory>) -> Result<CreatedBatch> {
        Self::send(
            self.request(Method::POST, "/v1/memories")
                .json(&NewMemories { memories }),
        )
        .await
    }

    /// One memory.
    pub async fn get(&self, id: Uuid) -> Result<Memory> {
        Self::send(self.request(Method::GET, &format!("/v1/memories/{id}"))).await
    }

    /// Changes a memory; `if_match` makes it conditional on that version.
    pub async fn update(
        &self,
        id: Uuid,
        patch: &MemoryPatch,
        if_match: Option<u64>,
    ) -> Result<Memory> {
        let mut r = self
            .request(Method::PATCH, &format!("/v1/memories/{id}"))
            .json(patch);
        if let Some(v) = if_match {
            r = r.header(reqwest::header::IF_MATCH, format!("\"{v}\""));
        }
        Self::send(r).await
    }

    /// Replaces a memory by a new one, keeping the old as superseded.
    pub async fn supersede(&self, id: Uuid, req: &Supersede) -> Result<Superseded> {
        let r = self
            .request(Method::POST, &format!("/v1/memories/{id}/supersede"))
            .json(req);
        Self::send(r).await
    }

    /// Queues the extraction of a session's messages not yet extracted.
    pub async fn extract(&self, session_id: &str, namespace: &str) -> Result<Job> {
        let r = self
            .request(Method::POST, &format!("/v1/sessions/{session_id}/extract"))
            .json(&ExtractRequest {
                namespace: namespace.to_owned(),
            });
        Self::send(r).await
    }

    /// Jobs of a namespace, newest first.
    pub async fn jobs(&self, query: &ListJobs) -> Result<JobList> {
        let r = self.request(Method::GET, "/v1/jobs").query(query);
        Self::send(r).await
    }

    /// Deletes a memory; `if_match` makes it conditional on that version.
    pub async fn delete(&self, id: Uuid, if_match: Option<u64>) -> Result<()> {
        let mut r = self.request(Method::DELETE, &format!("/v1/memories/{id}"));
        if let Some(v) = if_match {
            r = r.header(reqwest::header::IF_MATCH, format!("\"{v}\""));
        }
        Self::send_no_content(r).await
    }

    /// One page of memories, newest first.
    pub async fn list(&self, query: &ListMemories) -> Result<MemoryPage> {
        Self::send(self.request(Method::GET, "/v1/memories").query(query)).await
    }

    /// The most similar memories.
    pub async fn search(&self, request: &SearchRequest) -> Result<SearchResponse> {
        Self::send(
            self.request(Method::POST, "/v1/memories/search")
                .json(request),
        )
        .await
    }

    /// Deletes (or counts, on a dry run) the memories matching a filter.
    pub async fn bulk_delete(&self, request: &BulkDelete) -> Result<BulkDeleted> {
        Self::send(
            self.request(Method::POST, "/v1/memories/delete")
                .json(request),
        )
        .await
    }

    /// The namespaces the key can read, with the memories it sees in each.
    pub async fn namespaces(&self) -> Result<NamespaceList> {
        Self::send(self.request(Method::GET, "/v1/namespaces")).await
    }

    /// The memory policy in force in `ns`.
    pub async fn policy(&self, ns: &str) -> Result<NamespacePolicy> {
        Self::send(self.request(Method::GET, &format!("/v1/namespaces/{ns}/policy"))).await
    }

    /// Sets `ns`'s memory policy (an `admin` key).
    pub async fn set_policy(&self, ns: &str, policy: &MemoryPolicy) -> Result<NamespacePolicy> {
        Self::send(
            self.request(Method::PUT, &format!("/v1/namespaces/{ns}/policy"))
                .json(policy),
        )
        .await
    }

    /// Drops `ns`'s own policy; the server's default applies (an `admin` key).
    pub async fn reset_policy(&self, ns: &str) -> Result<NamespacePolicy> {
        Self::send(self.request(Method::DELETE, &format!("/v1/namespaces/{ns}/policy"))).await
    }

    /// The search settings in force in `ns`, and its latest re-index.
    pub async fn settings(&self, ns: &str) -> Result<NamespaceSettings> {
        Self::send(self.request(Method::GET, &format!("/v1/namespaces/{ns}/settings"))).await
    }

    /// Sets `ns`'s own search settings (an `admin` key).
    pub async fn set_settings(
        &self,
        ns: &str,
        change: &SettingsChange,
    ) -> Result<NamespaceSettings> {
        Self::send(
            self.request(Method::PUT, &format!("/v1/namespaces/{ns}/settings"))
                .json(change),
        )
        .await
    }

    /// Drops `ns`'s own search settings; the configured ones apply (an `admin` key).
    pub async fn reset_settings(&self, ns: &str) -> Result<NamespaceSettings> {
        Self::send(self.request(Method::DELETE, &format!("/v1/namespaces/{ns}/settings"))).await
    }

    /// A memory's states, newest first.
    pub async fn history(&self, id: Uuid) -> Result<History> {
        Self::send(self.request(Method::GET, &format!("/v1/memories/{id}/history"))).await
    }

    /// Every memory of `ns` the caller may see, oldest first (NDJSON, read
    /// whole). An export that does not end with its [`ExportTrailer`], or
    /// whose count disagrees, was cut short: that is an error, not a result.
    pub async fn export(&self, ns: &str, include_vectors: bool) -> Result<Vec<PortableMemory>> {
        let response = self
            .request(Method::GET, "/v1/export")
            .query(&[("namespace", ns)])
            .query(&[("include_vectors", include_vectors)])
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(Self::api_error(status, response).await);
        }
        let text = response.text().await?;
        let bad = |message: String| ClientError::Api {
            status: status.as_u16(),
            code: "bad_export".into(),
            message,
            details: serde_json::Value::Null,
        };
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let trailer: ExportTrailer = lines
            .pop()
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| bad("the export has no end line: it was cut short".into()))?;
        let memories = lines
            .into_iter()
            .map(|l| serde_json::from_str(l).map_err(|e| bad(e.to_string())))
            .collect::<Result<Vec<PortableMemory>>>()?;
        if trailer.export_complete.memories != memories.len() as u64 {
            return Err(bad(format!(
                "the export's end line counts {} memories, {} arrived",
                trailer.export_complete.memories,
                memories.len()
            )));
        }
        Ok(memories)
    }

    /// Imports memories (sent as NDJSON); ids and times are kept, same ids replaced.
    pub async fn import(&self, memories: &[PortableMemory]) -> Result<Imported> {
        let mut body = Vec::new();
        for m in memories {
            // Serialising our own types cannot fail.
            let _ = serde_json::to_writer(&mut body, m);
            body.push(b'\n');
        }
        Self::send(
            self.request(Method::POST, "/v1/import")
                .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                .body(body),
        )
        .await
    }

    /// Creates or replaces a session.
    pub async fn put_session(&self, id: &str, session: &PutSession) -> Result<Session> {
        Self::send(
            self.request(Method::PUT, &format!("/v1/sessions/{id}"))
                .json(session),
        )
        .await
    }

    /// One session.
    pub async fn get_session(&self, ns: &str, id: &str) -> Result<Session> {
        Self::send(
            self.request(Method::GET, &format!("/v1/sessions/{id}"))
                .query(&[("namespace", ns)]),
        )
        .await
    }

    /// Deletes a session.
    pub async fn delete_session(&self, ns: &str, id: &str) -> Result<()> {
        Self::send_no_content(
            self.request(Method::DELETE, &format!("/v1/sessions/{id}"))
                .query(&[("namespace", ns)]),
        )
        .await
    }

    /// Appends messages atomically (creating the session if needed).
    pub async fn append_messages(&self, id: &str, append: &AppendMessages) -> Result<Appended> {
        Self::send(
            self.request(Method::POST, &format!("/v1/sessions/{id}/messages"))
                .json(append),
        )
        .await
    }

    /// Sessions of a namespace (optionally one user's), most recent first.
    pub async fn list_sessions(&self, ns: &str, user_id: Option<&str>) -> Result<SessionPage> {
        let mut r = self
            .request(Method::GET, "/v1/sessions")
            .query(&[("namespace", ns)]);
        if let Some(u) = user_id {
            r = r.query(&[("user_id", u)]);
        }
        Self::send(r).await
    }

    /// Stores a session's messages as long-term memories.
    pub async fn promote(&self, id: &str, promote: &Promote) -> Result<CreatedBatch> {
        Self::send(
            self.request(Method::POST, &format!("/v1/sessions/{id}/promote"))
                .json(promote),
        )
        .await
    }

    /// Whether the server is ready (index loaded and caught up).
    pub async fn ready(&self) -> Result<bool> {
        let response = self.request(Method::GET, "/readyz").send().await?;
        Ok(response.status().is_success())
    }
}
