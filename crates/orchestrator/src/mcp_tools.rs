//! Tools served by remote MCP servers (`[mcp_servers.<name>]` in the agents
//! file), through rmcp's client over streamable HTTP or stdio.
//!
//! A server is connected on first use and its tool list cached; a broken
//! connection is dropped and made again at the next call. Only the tools in
//! the server's `tools` allowlist exist for agents, and an agent gets only
//! those it names (`"<server>.<tool>"`); the model sees them as
//! `<server>__<tool>`. Arguments a model sends are data, with one exception
//! made for tenancy: wherever a tool's input schema declares a `namespace` or
//! `user_id` property (at the top, in nested objects, in array items), the
//! run's own values are written over the model's, so no model output can
//! point a tool at another tenant or user.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use providers::chat::ToolSpec;
use rmcp::model::{CallToolRequestParams, Tool};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The separator between server and tool in the names models see.
pub const MODEL_SEPARATOR: &str = "__";

/// One remote MCP server as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// Streamable HTTP endpoint (`http://host:port/mcp`).
    #[serde(default)]
    pub url: Option<String>,
    /// Or a program speaking MCP on stdin/stdout, with its arguments.
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment of the stdio program.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Name of the variable holding the bearer key (HTTP).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The tools agents may be given; others are never offered.
    pub tools: Vec<String>,
    /// Longest wait for one call, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Per-tool timeouts in milliseconds, overriding `timeout_ms`.
    #[serde(default)]
    pub tool_timeouts_ms: BTreeMap<String, u64>,
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl McpServerConfig {
    /// What is wrong with it, if anything.
    pub fn check(&self) -> Result<(), String> {
        match (&self.url, self.command.is_empty()) {
            (Some(u), true) if u.starts_with("http://") || u.starts_with("https://") => {}
            (Some(_), true) => return Err("url must be an http(s) URL".into()),
            (None, false) => {}
            _ => return Err("give either `url` (streamable HTTP) or `command` (stdio)".into()),
        }
        if self.tools.is_empty() {
            return Err("tools (the allowlist) must name at least one tool".into());
        }
        if let Some(t) = self
            .tool_timeouts_ms
            .keys()
            .find(|t| !self.tools.contains(t))
        {
            return Err(format!("tool_timeouts_ms names {t}, which is not in tools"));
        }
        Ok(())
    }
}

struct Connection {
    service: RunningService<RoleClient, ()>,
    tools: Vec<Tool>,
}

struct Server {
    name: String,
    config: McpServerConfig,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

/// The configured MCP servers.
#[derive(Default)]
pub struct McpServers {
    servers: BTreeMap<String, Server>,
}

/// Deepest schema nesting followed when pinning (a recursive schema stops here).
const PIN_DEPTH: usize = 16;

/// Writes the run's `namespace` and `user_id` over `value`'s wherever
/// `schema` (resolved against `root` for `$ref`s) declares those properties:
/// at the top, in nested objects and in array items (a batch of memories
/// carries a namespace per item).
fn pin_scope(
    root: &Value,
    schema: &Value,
    value: &mut Value,
    namespace: &str,
    user_id: Option<&str>,
    depth: usize,
) {
    if depth > PIN_DEPTH {
        return;
    }
    let schema = resolve(root, schema);
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            for option in options {
                pin_scope(root, option, value, namespace, user_id, depth + 1);
            }
        }
    }
    match value {
        Value::Object(map) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            if properties.contains_key("namespace") {
                map.insert("namespace".into(), Value::String(namespace.to_owned()));
            }
            if properties.contains_key("user_id") {
                match user_id {
                    Some(u) => map.insert("user_id".into(), Value::String(u.to_owned())),
                    None => map.remove("user_id"),
                };
            }
            for (key, sub) in properties {
                if let Some(v) = map.get_mut(key) {
                    pin_scope(root, sub, v, namespace, user_id, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for v in items {
                    pin_scope(root, item_schema, v, namespace, user_id, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// `schema`, or what its local `$ref` (`#/$defs/X`, `#/definitions/X`) points at.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or(schema),
        None => schema,
    }
}

/// The pieces of a tool name `server.tool` (config) or `server__tool` (model).
pub fn split(name: &str) -> Option<(&str, &str)> {
    name.split_once('.')
        .or_else(|| name.split_once(MODEL_SEPARATOR))
}

impl McpServers {
    /// The servers of `configs` (not connected yet).
    pub fn new(configs: &BTreeMap<String, McpServerConfig>) -> Self {
        Self {
            servers: configs
                .iter()
                .map(|(name, config)| {
                    (
                        name.clone(),
                        Server {
                            name: name.clone(),
                            config: config.clone(),
                            connection: tokio::sync::Mutex::new(None),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Whether `server.tool` is allowed by the configuration.
    pub fn allows(&self, server: &str, tool: &str) -> bool {
        self.servers
            .get(server)
            .is_some_and(|s| s.config.tools.iter().any(|t| t == tool))
    }

    async fn connect(server: &Server) -> Result<Arc<Connection>, String> {
        let mut slot = server.connection.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.service.is_transport_closed()
        {
            return Ok(Arc::clone(c));
        }
        let timeout = Duration::from_millis(server.config.timeout_ms);
        let service = match &server.config.url {
            Some(url) => {
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.clone());
                if let Some(var) = &server.config.api_key_env {
                    let key = std::env::var(var).map_err(|_| {
                        format!("{var} (the key of MCP server {}) is not set", server.name)
                    })?;
                    config = config.auth_header(key);
                }
                let transport = StreamableHttpClientTransport::from_config(config);
                tokio::time::timeout(timeout, ().serve(transport)).await
            }
            None => {
                let (program, args) = server
                    .config
                    .command
                    .split_first()
                    .ok_or_else(|| "no command".to_owned())?;
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args).envs(&server.config.env).kill_on_drop(true);
                let transport = TokioChildProcess::new(cmd)
                    .map_err(|e| format!("cannot start MCP server {}: {e}", server.name))?;
                tokio::time::timeout(timeout, ().serve(transport)).await
            }
        }
        .map_err(|_| format!("MCP server {} did not answer in time", server.name))?
        .map_err(|e| format!("cannot connect to MCP server {}: {e}", server.name))?;
        let tools = tokio::time::timeout(timeout, service.peer().list_all_tools())
            .await
            .map_err(|_| format!("MCP server {} did not list its tools in time", server.name))?
            .map_err(|e| format!("MCP server {} tools/list: {e}", server.name))?;
        let connection = Arc::new(Connection { service, tools });
        *slot = Some(Arc::clone(&connection));
        Ok(connection)
    }

    /// The model-facing declarations of `names` (`server.tool` each).
    pub async fn specs(&self, names: &[String]) -> Result<Vec<ToolSpec>, String> {
        let mut specs = Vec::new();
        for name in names {
            let Some((server, tool)) = split(name) else {
                continue;
            };
            let s = self
                .servers
                .get(server)
                .ok_or_else(|| format!("no MCP server {server}"))?;
            let connection = Self::connect(s).await?;
            let found = connection
                .tools
                .iter()
                .find(|t| t.name == tool)
                .ok_or_else(|| format!("MCP server {server} has no tool {tool}"))?;
            specs.push(ToolSpec {
                name: format!("{server}{MODEL_SEPARATOR}{tool}"),
                description: found.description.as_deref().unwrap_or_default().to_owned(),
                parameters: Value::Object((*found.input_schema).clone()),
            });
        }
        Ok(specs)
    }

    /// Calls `tool` of `server` with the model's `raw` arguments; the run's
    /// `namespace` and `user_id` replace the model's where the schema has them.
    pub async fn call(
        &self,
        server: &str,
        tool: &str,
        raw: &str,
        namespace: &str,
        user_id: Option<&str>,
    ) -> Result<Value, String> {
        if !self.allows(server, tool) {
            return Err(format!("{server}.{tool} is not an allowed tool"));
        }
        let s = self
            .servers
            .get(server)
            .ok_or_else(|| format!("no MCP server {server}"))?;
        let connection = Self::connect(s).await?;
        let schema = connection
            .tools
            .iter()
            .find(|t| t.name == tool)
            .map(|t| Arc::clone(&t.input_schema))
            .ok_or_else(|| format!("MCP server {server} has no tool {tool}"))?;
        let raw = if raw.trim().is_empty() { "{}" } else { raw };
        let mut args: Map<String, Value> = serde_json::from_str(raw)
            .map_err(|e| format!("arguments must be a JSON object: {e}"))?;
        let root = Value::Object((*schema).clone());
        let mut value = Value::Object(std::mem::take(&mut args));
        pin_scope(&root, &root, &mut value, namespace, user_id, 0);
        if let Value::Object(pinned) = value {
            args = pinned;
        }
        let timeout = Duration::from_millis(
            s.config
                .tool_timeouts_ms
                .get(tool)
                .copied()
                .unwrap_or(s.config.timeout_ms),
        );
        let call = connection
            .service
            .peer()
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args));
        let result = match tokio::time::timeout(timeout, call).await {
            Err(_) => {
                return Err(format!(
                    "{server}.{tool} timed out after {} ms",
                    timeout.as_millis()
                ));
            }
            Ok(Err(e)) => {
                // A broken transport is made again at the next call.
                *s.connection.lock().await = None;
                return Err(format!("{server}.{tool}: {e}"));
            }
            Ok(Ok(r)) => r,
        };
        let text: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        if result.is_error == Some(true) {
            return Err(text.join("\n"));
        }
        Ok(match result.structured_content {
            Some(v) => v,
            None => Value::String(text.join("\n")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scope_is_pinned_at_every_depth_the_schema_declares_it() {
        let schema = json!({
            "type": "object",
            "properties": {
                "memories": {"type": "array", "items": {"$ref": "#/$defs/NewMemory"}},
                "filter": {"anyOf": [{"$ref": "#/$defs/Filter"}, {"type": "null"}]},
                "namespace": {"type": "string"},
                "note": {"type": "string"}
            },
            "$defs": {
                "NewMemory": {"type": "object", "properties": {"namespace": {}, "user_id": {}, "text": {}}},
                "Filter": {"type": "object", "properties": {"user_id": {}}}
            }
        });
        let mut args = json!({
            "namespace": "evil",
            "note": "namespace: evil",
            "memories": [{"namespace": "evil", "user_id": "bob", "text": "x"}, {"text": "y"}],
            "filter": {"user_id": "bob"}
        });
        pin_scope(&schema, &schema, &mut args, "mine", Some("alice"), 0);
        assert_eq!(args["namespace"], "mine");
        assert_eq!(
            args["note"], "namespace: evil",
            "only declared fields change"
        );
        assert_eq!(args["memories"][0]["namespace"], "mine");
        assert_eq!(args["memories"][0]["user_id"], "alice");
        assert_eq!(args["memories"][1]["namespace"], "mine");
        assert_eq!(args["filter"]["user_id"], "alice");
        let mut none = json!({"memories": [{"user_id": "bob"}]});
        pin_scope(&schema, &schema, &mut none, "mine", None, 0);
        assert!(none["memories"][0].get("user_id").is_none());
    }
}
