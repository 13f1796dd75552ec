//! The services a run drives, each stating only its wire format:
//! [`rest`] (memory-server's REST API), [`mcp`] (its MCP endpoint) and
//! [`orchestrator`] (runs, blocking or streamed).
//!
//! What they share is here, written once: the HTTP client with its
//! credentials, the count of requests by route (what the server's own
//! `http_requests_total` should show), and how a failure is named.

pub mod mcp;
pub mod orchestrator;
pub mod rest;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::auth::Credentials;
use crate::dataset::Dataset;
use crate::scenario::{Op, Scenario, TargetSpec};

/// One request to make: the operation and the random choices behind it.
#[derive(Debug, Clone)]
pub struct Work {
    /// What to do.
    pub op: Op,
    /// The namespace (tenant).
    pub namespace: String,
    /// The session, for session operations and runs.
    pub session: String,
    /// Text to store, search for, or send.
    pub text: String,
    /// The filter value of a filtered search (`metadata.group`).
    pub group: u32,
    /// The dataset query of a vector search.
    pub query: usize,
}

/// Memories per `store_batch` request.
pub const STORE_BATCH: usize = 100;

impl Work {
    /// The memories a store operation writes, each with its namespace: one
    /// for `store`, [`STORE_BATCH`] numbered variants for `store_batch`.
    pub fn memories(&self) -> Vec<Value> {
        if self.op != Op::StoreBatch {
            let m = json!({"text": self.text, "metadata": {"group": self.group}});
            return vec![with_namespace(&self.namespace, m)];
        }
        (0..STORE_BATCH)
            .map(|i| {
                let m = json!({"text": format!("{} ({i})", self.text), "metadata": {"group": self.group}});
                with_namespace(&self.namespace, m)
            })
            .collect()
    }
}

/// `m` with its namespace.
pub fn with_namespace(namespace: &str, mut m: Value) -> Value {
    m["namespace"] = json!(namespace);
    m
}

/// What a successful request returned that the report uses.
#[derive(Debug, Default)]
pub struct Answer {
    /// When the first streamed event arrived (streamed runs).
    pub first_event: Option<Duration>,
    /// Recall against the dataset's exact neighbours (vector searches).
    pub recall: Option<f64>,
}

/// A failed request, named by kind (`http 503`, `timeout`, ...).
pub type Failure = String;

/// The HTTP client, its base URL and credentials, and the route counts.
pub struct Client {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
    routes: Mutex<BTreeMap<String, u64>>,
}

impl Client {
    /// A client of `base` (no trailing slash) with `timeout` per request.
    pub fn new(
        base: &str,
        credentials: Credentials,
        timeout: Duration,
        pool: usize,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(pool)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
            routes: Mutex::new(BTreeMap::new()),
        })
    }

    /// A request to `path`, counted under `route` (the server's route template).
    pub fn request(
        &self,
        method: reqwest::Method,
        route: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        if let Ok(mut r) = self.routes.lock() {
            *r.entry(format!("{method} {route}")).or_default() += 1;
        }
        let req = self.http.request(method, format!("{}{path}", self.base));
        self.credentials.apply(req)
    }

    /// Requests sent so far, by `METHOD /route`.
    pub fn routes(&self) -> BTreeMap<String, u64> {
        self.routes.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// Sends `req`; a transport failure or a status other than 2xx is named by kind.
pub async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
    let resp = req.send().await.map_err(|e| transport(&e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("http {}", status.as_u16()));
    }
    Ok(resp)
}

/// Sends `req` and reads a JSON answer; any failure is named by kind.
pub async fn send_json(req: reqwest::RequestBuilder) -> Result<Value, Failure> {
    let bytes = send(req).await?.bytes().await.map_err(|e| transport(&e))?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|_| "bad body".to_owned())
}

/// The kind of a transport failure.
pub fn transport(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// The service of a scenario.
pub enum Target {
    /// memory-server REST.
    Rest(rest::Rest),
    /// memory-server MCP.
    Mcp(mcp::Mcp),
    /// Orchestrator runs.
    Orchestrator(orchestrator::Orchestrator),
}

impl Target {
    /// Connects: checks `/readyz`, and opens what the protocol needs.
    pub async fn connect(
        scenario: &Scenario,
        client: Arc<Client>,
        dataset: Arc<Dataset>,
    ) -> Result<Self, String> {
        send_json(client.request(reqwest::Method::GET, "/readyz", "/readyz"))
            .await
            .map_err(|e| {
                format!(
                    "{}/readyz: {e}: is the service running and ready?",
                    client.base()
                )
            })?;
        let top_k = scenario.dataset.top_k;
        Ok(match &scenario.target {
            TargetSpec::Rest => Self::Rest(rest::Rest::new(client, dataset, top_k)),
            TargetSpec::Mcp { protocol } => {
                Self::Mcp(mcp::Mcp::connect(client, dataset, top_k, protocol).await?)
            }
            TargetSpec::Orchestrator { agent } => {
                Self::Orchestrator(orchestrator::Orchestrator::new(client, agent))
            }
        })
    }

    /// Does one request.
    pub async fn execute(&self, w: &Work) -> Result<Answer, Failure> {
        match self {
            Self::Rest(t) => t.execute(w).await,
            Self::Mcp(t) => t.execute(w).await,
            Self::Orchestrator(t) => t.execute(w).await,
        }
    }
}
