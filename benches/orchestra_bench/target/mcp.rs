//! memory-server's MCP endpoint: `tools/call` over streamable HTTP, in
//! either protocol era. The stateless era (2026-07-28) carries its protocol
//! facts in every request; the older one (2025-11-25) opens one protocol
//! session at connect time and names it in every request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Method;
use serde_json::{Value, json};

use super::{Answer, Client, Failure, Work, send, transport};
use crate::dataset::{Dataset, returned_indices};
use crate::scenario::{MCP_SESSIONS as SESSIONS, MCP_STATELESS as STATELESS, Op};

/// The MCP target.
pub struct Mcp {
    client: Arc<Client>,
    dataset: Arc<Dataset>,
    top_k: usize,
    version: String,
    session: Option<String>,
    next_id: AtomicU64,
}

impl Mcp {
    /// Connects in era `version` (the older era opens a protocol session).
    pub async fn connect(
        client: Arc<Client>,
        dataset: Arc<Dataset>,
        top_k: usize,
        version: &str,
    ) -> Result<Self, String> {
        let mut mcp = Self {
            client,
            dataset,
            top_k,
            version: version.to_owned(),
            session: None,
            next_id: AtomicU64::new(1),
        };
        if version == SESSIONS {
            let init = mcp.message(
                "initialize",
                json!({"protocolVersion": SESSIONS, "capabilities": {}, "clientInfo": {"name": "orchestra-bench", "version": "1"}}),
            );
            let resp = send(mcp.post(&init, None))
                .await
                .map_err(|e| format!("MCP initialize: {e}"))?;
            let session = resp
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .ok_or("MCP initialize: no Mcp-Session-Id in the answer")?
                .to_owned();
            mcp.session = Some(session);
            let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            send(mcp.post(&note, None))
                .await
                .map_err(|e| format!("MCP initialized: {e}"))?;
        }
        Ok(mcp)
    }

    /// A JSON-RPC request; the stateless era adds its protocol facts.
    fn message(&self, method: &str, mut params: Value) -> Value {
        if self.version == STATELESS {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": STATELESS,
                "io.modelcontextprotocol/clientInfo": {"name": "orchestra-bench", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    }

    fn post(&self, body: &Value, tool: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .request(Method::POST, "/mcp", "/mcp")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", &self.version);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        if self.version == STATELESS {
            if let Some(m) = body["method"].as_str() {
                req = req.header("mcp-method", m);
            }
            if let Some(t) = tool {
                req = req.header("mcp-name", t);
            }
        }
        req.json(body)
    }

    /// Calls a tool; its structured result, or the failure's kind.
    async fn tool(&self, name: &str, args: Value) -> Result<Value, Failure> {
        let body = self.message("tools/call", json!({"name": name, "arguments": args}));
        let text = send(self.post(&body, Some(name)))
            .await?
            .text()
            .await
            .map_err(|e| transport(&e))?;
        let msg = parse_body(&text).ok_or("bad body")?;
        if msg.get("error").is_some() {
            return Err("rpc error".into());
        }
        let result = &msg["result"];
        if result["isError"] == json!(true) {
            return Err("tool error".into());
        }
        Ok(result["structuredContent"].clone())
    }

    /// Does one operation.
    pub async fn execute(&self, w: &Work) -> Result<Answer, Failure> {
        let ns = &w.namespace;
        match w.op {
            Op::Store | Op::StoreBatch => {
                self.tool("memory_store", json!({"memories": w.memories()}))
                    .await?;
            }
            Op::Search | Op::SearchFiltered => {
                let mut args = json!({"namespace": ns, "query": w.text, "top_k": self.top_k});
                if w.op == Op::SearchFiltered {
                    args["filter"] = json!({"metadata": {"group": w.group}});
                }
                self.tool("memory_search", args).await?;
            }
            Op::SearchVector => {
                let args = json!({"namespace": ns, "vector": self.dataset.query_vector(w.query), "mode": "vector", "top_k": self.top_k});
                let out = self.tool("memory_search", args).await?;
                let got = returned_indices(&out["results"]);
                return Ok(Answer {
                    recall: self.dataset.recall(w.query, &got, self.top_k),
                    ..Answer::default()
                });
            }
            Op::Context => {
                let args = json!({"namespace": ns, "query": w.text, "session_id": w.session});
                self.tool("memory_context", args).await?;
            }
            Op::SessionAppend | Op::Run | Op::RunStream => {
                return Err("not an MCP operation".into());
            }
        }
        Ok(Answer::default())
    }
}

/// The JSON-RPC message of an answer: plain JSON, or the SSE event with an id.
pub fn parse_body(body: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return Some(v);
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
}
