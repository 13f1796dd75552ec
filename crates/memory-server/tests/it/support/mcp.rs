//! A raw MCP client over streamable HTTP (JSON-RPC by hand, so every header
//! and status is visible to the test), in both protocol eras.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::Server;

/// The stateless protocol era.
pub const NEW: &str = "2026-07-28";
/// The older era, with protocol sessions.
pub const OLD: &str = "2025-11-25";

/// A raw MCP client of one era.
pub struct Mcp {
    pub http: reqwest::Client,
    pub url: String,
    pub key: Option<String>,
    pub version: &'static str,
    pub session: Option<String>,
    pub next_id: u64,
}

/// One HTTP answer: status, headers and the JSON-RPC message, if any.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub message: Option<Value>,
}

/// The JSON-RPC message of a body: plain JSON, or the SSE event that carries an id.
pub fn parse_body(body: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return Some(v);
    }
    // An SSE stream: the response is the `data:` line that carries an id.
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
}

impl Mcp {
    pub fn new(server: &Server, key: Option<&str>, version: &'static str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: format!("{}/mcp", server.url),
            key: key.map(str::to_owned),
            version,
            session: None,
            next_id: 1,
        }
    }

    pub async fn send(&self, body: &Value, extra: &[(&str, &str)]) -> Answer {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", self.version);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        if self.version == NEW {
            if let Some(m) = body["method"].as_str() {
                req = req.header("mcp-method", m);
            }
            if let Some(n) = body["params"]["name"].as_str() {
                req = req.header("mcp-name", n);
            }
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.json(body).send().await.expect("POST /mcp");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            message: parse_body(&text),
        }
    }

    pub fn request(&mut self, method: &str, mut params: Value) -> Value {
        if self.version == NEW {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": NEW,
                "io.modelcontextprotocol/clientInfo": {"name": "mcp-test", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}
            });
        }
        self.next_id += 1;
        json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
    }

    /// Sends a request; returns its `result`, failing the test on a protocol error.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let body = self.request(method, params);
        let a = self.send(&body, &[]).await;
        assert_eq!(a.status, StatusCode::OK, "{method}: {:?}", a.message);
        let msg = a.message.expect("a JSON-RPC response");
        assert!(msg.get("error").is_none(), "{method}: {msg}");
        msg["result"].clone()
    }

    /// Calls a tool; returns the whole tool result.
    pub async fn tool(&mut self, name: &str, args: Value) -> Value {
        self.call("tools/call", json!({"name": name, "arguments": args}))
            .await
    }

    /// The older era's handshake: initialize, then the initialized notification.
    pub async fn initialize(&mut self) -> String {
        let body = self.request(
            "initialize",
            json!({
                "protocolVersion": OLD,
                "capabilities": {},
                "clientInfo": {"name": "mcp-test", "version": "1"}
            }),
        );
        let a = self.send(&body, &[]).await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.message);
        let result = &a.message.expect("initialize result")["result"];
        assert_eq!(result["protocolVersion"], OLD);
        let session = a
            .headers
            .get("mcp-session-id")
            .expect("an Mcp-Session-Id")
            .to_str()
            .unwrap()
            .to_owned();
        self.session = Some(session.clone());
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let a = self.send(&note, &[]).await;
        assert!(a.status.is_success(), "initialized: {}", a.status);
        session
    }
}

/// The structured result of a successful tool call (checked against its text twin).
pub fn ok(result: &Value) -> &Value {
    assert_eq!(result["isError"], false, "tool failed: {result}");
    let text = result["content"][0]["text"].as_str().expect("text content");
    let from_text: Value = serde_json::from_str(text).expect("text is the JSON");
    assert_eq!(from_text, result["structuredContent"]);
    &result["structuredContent"]
}

/// The error text of a failed tool call.
pub fn failed(result: &Value) -> String {
    assert_eq!(result["isError"], true, "tool should fail: {result}");
    result["content"][0]["text"]
        .as_str()
        .expect("an error message")
        .to_owned()
}
