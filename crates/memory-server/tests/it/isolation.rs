//! Tenant isolation, enumerated: every route of `/openapi.json` and every MCP
//! tool (in both protocol eras) is tried by each key that must not reach
//! tenant A's private data, on A's ids, namespace, session and idempotency
//! key. Nothing of A's may be returned, changed, counted or deleted.
//!
//! A route or tool without a case here fails the test, so a new one cannot
//! ship without its isolation check.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::mcp::{Mcp, NEW, OLD, failed, ok};
use crate::support::{Server, auth_keys, config_toml, free_port};

/// The keys of these tests.
fn keys() -> String {
    auth_keys(&[
        ("a1", "k-a1", "write", &["team"], Some("a1")),
        ("a2", "k-a2", "write", &["team"], Some("a2")),
        ("r", "k-r", "read", &["team"], Some("r")),
        ("w", "k-w", "write", &["team"], None),
        ("b", "k-b", "admin", &["other"], None),
    ])
}

/// A key that must not reach a1's private data, and why.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Attacker {
    /// Tenant B's admin key.
    OtherTenant,
    /// Agent a2 of tenant A.
    OtherAgent,
    /// A read key of tenant A (agent r).
    ReadKey,
    /// A write key of tenant A bound to no agent (claiming none).
    Unbound,
}

impl Attacker {
    const ALL: [Attacker; 4] = [
        Attacker::OtherTenant,
        Attacker::OtherAgent,
        Attacker::ReadKey,
        Attacker::Unbound,
    ];

    fn key(self) -> &'static str {
        match self {
            Attacker::OtherTenant => "k-b",
            Attacker::OtherAgent => "k-a2",
            Attacker::ReadKey => "k-r",
            Attacker::Unbound => "k-w",
        }
    }

    fn other_tenant(self) -> bool {
        self == Attacker::OtherTenant
    }

    /// Its own namespace: where it may write.
    fn namespace(self) -> &'static str {
        if self.other_tenant() { "other" } else { "team" }
    }
}

/// The record id the server derives for session `id` of `ns` (a UUIDv8 of
/// the first 16 bytes of SHA-256 over the NUL-terminated parts).
fn session_record_id(ns: &str, id: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [ns, "session", id] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&h.finalize()[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

/// What a1 owns, and how to reach the server.
struct World {
    url: String,
    http: reqwest::Client,
    /// a1's private memory, written with idempotency key `order-42`.
    private: Value,
    /// a1's shared memory.
    shared: Value,
    /// a1's memory that was a private draft and is now shared.
    published: Value,
}

/// a1's private text and draft, which no attacker may ever read.
const SECRET: &str = "vault 1234 opens the safe";
const DRAFT: &str = "draft: acquire Initech quietly";
const SESSION: &str = "s-a1";

impl World {
    async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    async fn json(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.call(key, method, path, body).await;
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    fn id(m: &Value) -> &str {
        m["id"].as_str().expect("a memory id")
    }

    fn private_id(&self) -> &str {
        Self::id(&self.private)
    }

    /// Nothing private of a1's is in `text` (a response body, a line, a log).
    fn assert_clean(&self, what: &str, text: &str) {
        assert!(
            !text.contains(self.private_id()),
            "{what}: a1's private id in {text}"
        );
        assert!(
            !text.contains(SECRET),
            "{what}: a1's private text in {text}"
        );
        assert!(
            !text.contains(DRAFT),
            "{what}: a1's private draft in {text}"
        );
    }

    /// Probes one REST operation as `at`; false when the route has no case.
    async fn probe_rest(&self, at: Attacker, method: &str, path: &str) -> bool {
        let key = at.key();
        let (p, s, d) = (
            self.private_id().to_owned(),
            Self::id(&self.shared).to_owned(),
            Self::id(&self.published).to_owned(),
        );
        let b = at.other_tenant();
        match (method, path) {
            ("post", "/v1/memories") => {
                // A reused idempotency key, by body, header and batch, and a1's
                // private text again: never a replay or duplicate of a1's memory.
                let one = json!({"namespace": at.namespace(), "text": "attack one", "idempotency_key": "order-42"});
                let dup = json!({"namespace": at.namespace(), "text": SECRET,
                    "visibility": if at == Attacker::OtherAgent { "private" } else { "shared" }});
                let batch = json!({"memories": [{"namespace": at.namespace(), "text": "attack batch", "idempotency_key": "order-42"}]});
                for body in [one, dup, batch] {
                    let (status, v) = self
                        .json(key, Method::POST, "/v1/memories", Some(body.clone()))
                        .await;
                    if at == Attacker::ReadKey {
                        assert_eq!(status, 403, "{at:?} {body}: {v}");
                        continue;
                    }
                    assert!(
                        status == 200 || status == 201,
                        "{at:?} {body}: {status} {v}"
                    );
                    let text = v.to_string();
                    assert!(!text.contains(&p), "{at:?} got a1's memory back: {text}");
                    // A replay may return only the caller's own earlier create.
                    // Its own copy of a1's text goes again, so later probes
                    // can look for a1's text anywhere.
                    if body["text"] == SECRET {
                        let own = v["memory"]["id"].as_str().unwrap();
                        let (status, _) = self
                            .json(key, Method::DELETE, &format!("/v1/memories/{own}"), None)
                            .await;
                        assert_eq!(status, 204);
                    }
                }
                let (status, v) = self
                    .json(
                        key,
                        Method::POST,
                        "/v1/memories",
                        Some(json!({"namespace": "team", "text": "planted"})),
                    )
                    .await;
                if b || at == Attacker::ReadKey {
                    assert_eq!(status, 403, "{at:?}: {v}");
                }
                // The header form of the idempotency key.
                let r = self
                    .http
                    .post(format!("{}/v1/memories", self.url))
                    .bearer_auth(key)
                    .header("idempotency-key", "order-42")
                    .json(&json!({"namespace": at.namespace(), "text": "attack header"}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                if at == Attacker::ReadKey {
                    assert_eq!(status, 403);
                } else {
                    assert!(status == 200 || status == 201, "{text}");
                    self.assert_clean("create with Idempotency-Key", &text);
                }
            }
            ("get", "/v1/memories") => {
                for q in ["", "&as_agent=a1", "&agent_id=a1"] {
                    let (status, v) = self
                        .json(
                            key,
                            Method::GET,
                            &format!("/v1/memories?namespace=team{q}"),
                            None,
                        )
                        .await;
                    if b {
                        assert_eq!(status, 403, "{v}");
                    } else {
                        assert_eq!(status, 200, "{v}");
                        // An unbound key claiming a1 would be trusted: it claims nothing here.
                        if !(at == Attacker::Unbound && q.contains("as_agent")) {
                            self.assert_clean("list", &v.to_string());
                        }
                    }
                }
            }
            ("get", "/v1/memories/{id}") => {
                self.refused_as_unknown(key, Method::GET, &format!("/v1/memories/{p}"), None)
                    .await;
                let (status, _) = self
                    .json(key, Method::GET, &format!("/v1/memories/{s}"), None)
                    .await;
                assert_eq!(
                    status,
                    if b { 404 } else { 200 },
                    "{at:?} on a1's shared memory"
                );
            }
            ("patch", "/v1/memories/{id}") => {
                let body = json!({"text": "pwned"});
                self.refused_as_unknown(
                    key,
                    Method::PATCH,
                    &format!("/v1/memories/{p}"),
                    Some(body.clone()),
                )
                .await;
                if b {
                    self.refused_as_unknown(
                        key,
                        Method::PATCH,
                        &format!("/v1/memories/{s}"),
                        Some(body),
                    )
                    .await;
                }
            }
            ("delete", "/v1/memories/{id}") => {
                self.refused_as_unknown(key, Method::DELETE, &format!("/v1/memories/{p}"), None)
                    .await;
                if b {
                    self.refused_as_unknown(
                        key,
                        Method::DELETE,
                        &format!("/v1/memories/{s}"),
                        None,
                    )
                    .await;
                }
            }
            ("post", "/v1/memories/{id}/supersede") => {
                let body = json!({"text": "pwned", "reason": "attack"});
                self.refused_as_unknown(
                    key,
                    Method::POST,
                    &format!("/v1/memories/{p}/supersede"),
                    Some(body.clone()),
                )
                .await;
                if b {
                    self.refused_as_unknown(
                        key,
                        Method::POST,
                        &format!("/v1/memories/{s}/supersede"),
                        Some(body),
                    )
                    .await;
                }
            }
            ("get", "/v1/memories/{id}/history") => {
                self.refused_as_unknown(
                    key,
                    Method::GET,
                    &format!("/v1/memories/{p}/history"),
                    None,
                )
                .await;
                let (status, v) = self
                    .json(key, Method::GET, &format!("/v1/memories/{d}/history"), None)
                    .await;
                if b {
                    assert_eq!(status, 404);
                } else {
                    // The memory is shared now; its private draft stays a1's.
                    assert_eq!(status, 200, "{v}");
                    self.assert_clean("history", &v.to_string());
                    assert!(v.to_string().contains("public summary"), "{v}");
                }
            }
            ("post", "/v1/memories/search") => {
                for extra in [
                    json!({}),
                    json!({"as_agent": "a1"}),
                    json!({"mode": "keyword"}),
                    json!({"min_score": 0.0}),
                    json!({"include_superseded": true}),
                    json!({"as_of": "2100-01-01T00:00:00Z"}),
                ] {
                    let mut body = json!({"namespace": "team", "query": "vault 1234 safe"});
                    for (k, v) in extra.as_object().unwrap() {
                        body[k] = v.clone();
                    }
                    if at == Attacker::Unbound && extra.get("as_agent").is_some() {
                        continue;
                    }
                    let (status, v) = self
                        .json(key, Method::POST, "/v1/memories/search", Some(body))
                        .await;
                    if b {
                        assert_eq!(status, 403);
                    } else {
                        assert_eq!(status, 200, "{v}");
                        self.assert_clean("search", &v.to_string());
                    }
                }
            }
            ("post", "/v1/memories/delete") => {
                for dry_run in [true, false] {
                    let body = json!({"namespace": "team", "filter": {"agent_id": "a1"}, "dry_run": dry_run});
                    let (status, v) = self
                        .json(key, Method::POST, "/v1/memories/delete", Some(body))
                        .await;
                    // Bulk delete needs admin; no attacker holds it on team.
                    assert_eq!(status, 403, "{at:?}: {v}");
                }
            }
            ("get", "/v1/namespaces") => {
                let (status, v) = self.json(key, Method::GET, "/v1/namespaces", None).await;
                assert_eq!(status, 200);
                let team = v["namespaces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|n| n["namespace"] == "team")
                    .map(|n| n["memories"].as_u64().unwrap());
                if b {
                    assert_eq!(team, None, "B sees namespace team: {v}");
                } else {
                    // The count is what the key can list: a1's private memory is not in it.
                    let (_, page) = self
                        .json(
                            key,
                            Method::GET,
                            "/v1/memories?namespace=team&limit=1000",
                            None,
                        )
                        .await;
                    let listed = page["memories"].as_array().unwrap().len() as u64;
                    assert_eq!(team, Some(listed), "{v}");
                }
            }
            (
                "get",
                "/v1/namespaces/{namespace}/settings" | "/v1/namespaces/{namespace}/policy",
            ) => {
                let team = path.replace("{namespace}", "team");
                let (status, v) = self.json(key, Method::GET, &team, None).await;
                if b {
                    assert_eq!(status, 403, "{v}");
                } else {
                    assert_eq!(status, 200, "{v}");
                    assert_eq!(v["namespace"], "team");
                }
            }
            ("put", "/v1/namespaces/{namespace}/policy")
            | ("delete", "/v1/namespaces/{namespace}/policy") => {
                let m = if method == "put" {
                    Method::PUT
                } else {
                    Method::DELETE
                };
                let body = (method == "put").then(|| json!({"near_duplicate_threshold": 0.1}));
                let (status, v) = self.json(key, m, "/v1/namespaces/team/policy", body).await;
                // Setting a policy needs admin; no attacker holds it on team.
                assert_eq!(status, 403, "{at:?}: {v}");
                let (_, now) = self
                    .json("k-a1", Method::GET, "/v1/namespaces/team/policy", None)
                    .await;
                assert_eq!(now["source"], "config", "{now}");
            }
            ("put", "/v1/namespaces/{namespace}/settings")
            | ("delete", "/v1/namespaces/{namespace}/settings") => {
                let m = if method == "put" {
                    Method::PUT
                } else {
                    Method::DELETE
                };
                let body = (method == "put").then(|| json!({"template": "{agent_id}: {text}"}));
                let (status, v) = self
                    .json(key, m, "/v1/namespaces/team/settings", body)
                    .await;
                // Changing settings needs admin; no attacker holds it on team.
                assert_eq!(status, 403, "{at:?}: {v}");
                let (_, now) = self
                    .json("k-a1", Method::GET, "/v1/namespaces/team/settings", None)
                    .await;
                assert_eq!(now["source"], "default", "{now}");
                assert_eq!(
                    now["template"], "{?{metadata.speaker} ({created_at:human}): }{text}",
                    "{now}"
                );
            }
            ("get", "/v1/export") => {
                let (status, text) = self
                    .call(key, Method::GET, "/v1/export?namespace=team", None)
                    .await;
                if b {
                    assert_eq!(status, 403);
                } else {
                    assert_eq!(status, 200, "{text}");
                    self.assert_clean("export", &text);
                    assert!(
                        text.trim_end()
                            .lines()
                            .last()
                            .unwrap()
                            .contains("export_complete"),
                        "{text}"
                    );
                }
            }
            ("post", "/v1/import") => {
                // Naming a1's ids to take them over, into the caller's own
                // namespace: its memories, and its session's record, whose id
                // anyone can derive from the namespace and session id.
                let session_record = session_record_id("team", SESSION);
                for id in [&p, &s, &session_record] {
                    let expected = if at == Attacker::ReadKey {
                        403
                    } else if id == &s && !b {
                        // A shared memory of its own namespace is the caller's to
                        // replace (it could PATCH it too): not an attack.
                        continue;
                    } else {
                        409
                    };
                    let line = json!({"id": id, "namespace": at.namespace(), "text": "taken over"});
                    let r = self
                        .http
                        .post(format!("{}/v1/import", self.url))
                        .bearer_auth(key)
                        .body(format!("{line}\n"))
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    let body = r.text().await.unwrap();
                    assert_eq!(status, expected, "{at:?} import over {id}: {body}");
                }
            }
            ("put", "/v1/sessions/{id}") => {
                let body = json!({"namespace": "team", "messages": [{"role": "user", "content": "overwritten"}]});
                let (status, _) = self
                    .json(
                        key,
                        Method::PUT,
                        &format!("/v1/sessions/{SESSION}"),
                        Some(body),
                    )
                    .await;
                if b || at == Attacker::ReadKey {
                    assert_eq!(status, 403);
                } else {
                    // Sessions are shared by the namespace's agents (docs/api.md): a
                    // same-tenant writer may replace one; the state check below
                    // excludes them.
                    assert_eq!(status, 200);
                }
                if b {
                    // The same session id in B's own namespace is B's own session.
                    let mine = json!({"namespace": "other", "messages": [{"role": "user", "content": "b's"}]});
                    let (status, v) = self
                        .json(
                            key,
                            Method::PUT,
                            &format!("/v1/sessions/{SESSION}"),
                            Some(mine),
                        )
                        .await;
                    assert_eq!(status, 200, "{v}");
                    self.assert_clean("B's own session", &v.to_string());
                }
            }
            ("get", "/v1/sessions/{id}") => {
                let (status, v) = self
                    .json(
                        key,
                        Method::GET,
                        &format!("/v1/sessions/{SESSION}?namespace=team"),
                        None,
                    )
                    .await;
                assert_eq!(status, if b { 403 } else { 200 }, "{v}");
                if b {
                    let (_, v) = self
                        .json(
                            key,
                            Method::GET,
                            &format!("/v1/sessions/{SESSION}?namespace=other"),
                            None,
                        )
                        .await;
                    assert!(!v.to_string().contains("a1 session secret"), "{v}");
                }
            }
            ("delete", "/v1/sessions/{id}") => {
                if b || at == Attacker::ReadKey {
                    let (status, _) = self
                        .json(
                            key,
                            Method::DELETE,
                            &format!("/v1/sessions/{SESSION}?namespace=team"),
                            None,
                        )
                        .await;
                    assert_eq!(status, 403);
                }
            }
            ("post", "/v1/sessions/{id}/messages") => {
                if b || at == Attacker::ReadKey {
                    let body = json!({"namespace": "team", "messages": [{"role": "user", "content": "injected"}]});
                    let (status, _) = self
                        .json(
                            key,
                            Method::POST,
                            &format!("/v1/sessions/{SESSION}/messages"),
                            Some(body),
                        )
                        .await;
                    assert_eq!(status, 403);
                }
            }
            ("get", "/v1/sessions") => {
                let (status, v) = self
                    .json(key, Method::GET, "/v1/sessions?namespace=team", None)
                    .await;
                assert_eq!(status, if b { 403 } else { 200 }, "{v}");
            }
            ("post", "/v1/sessions/{id}/promote") => {
                if b || at == Attacker::ReadKey {
                    let (status, _) = self
                        .json(
                            key,
                            Method::POST,
                            &format!("/v1/sessions/{SESSION}/promote"),
                            Some(json!({"namespace": "team"})),
                        )
                        .await;
                    assert_eq!(status, 403);
                }
            }
            ("post", "/v1/sessions/{id}/extract") => {
                let (status, v) = self
                    .json(
                        key,
                        Method::POST,
                        &format!("/v1/sessions/{SESSION}/extract"),
                        Some(json!({"namespace": "team"})),
                    )
                    .await;
                if b || at == Attacker::ReadKey {
                    assert_eq!(status, 403, "{at:?}: {v}");
                } else {
                    // Extraction is off here: nothing queued, nothing shown.
                    assert_eq!(status, 409, "{at:?}: {v}");
                    self.assert_clean("extract", &v.to_string());
                }
            }
            ("get", "/v1/jobs") => {
                for q in ["", &format!("&session_id={SESSION}"), "&state=failed"] {
                    let (status, v) = self
                        .json(
                            key,
                            Method::GET,
                            &format!("/v1/jobs?namespace=team{q}"),
                            None,
                        )
                        .await;
                    if b {
                        assert_eq!(status, 403, "{v}");
                    } else {
                        assert_eq!(status, 200, "{v}");
                        self.assert_clean("jobs", &v.to_string());
                    }
                }
            }
            ("get", "/healthz") => {
                let (status, v) = self.json(key, Method::GET, "/healthz", None).await;
                assert_eq!((status, v), (200, json!({"status": "ok"})));
            }
            ("get", "/readyz") => {
                let (status, v) = self.json(key, Method::GET, "/readyz", None).await;
                assert_eq!(status, 200);
                // The count is the key's own view: A's private memory (and, for
                // B, all of A) is not counted.
                let (_, ns) = self.json(key, Method::GET, "/v1/namespaces", None).await;
                let visible: u64 = ns["namespaces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["memories"].as_u64().unwrap())
                    .sum();
                assert_eq!(v["memories"].as_u64(), Some(visible), "{at:?}: {v}");
            }
            ("get", "/metrics") => {
                // Server-wide aggregates for operators: no namespace, id or text.
                let (status, text) = self.call(key, Method::GET, "/metrics", None).await;
                assert_eq!(status, 200);
                self.assert_clean("metrics", &text);
                assert!(!text.contains("team"), "a namespace in /metrics");
            }
            _ => return false,
        }
        true
    }

    /// a1's memories and their histories, as a1 reads them.
    async fn a1_state(&self) -> Vec<(u16, Value)> {
        let ids = [
            self.private_id().to_owned(),
            Self::id(&self.shared).to_owned(),
            Self::id(&self.published).to_owned(),
        ];
        let mut state = Vec::new();
        for id in ids {
            state.push(
                self.json("k-a1", Method::GET, &format!("/v1/memories/{id}"), None)
                    .await,
            );
            state.push(
                self.json(
                    "k-a1",
                    Method::GET,
                    &format!("/v1/memories/{id}/history"),
                    None,
                )
                .await,
            );
        }
        state
    }

    /// `key` gets the same 404 for a1's id as for an id that never existed
    /// (the same code, and the same message but for the id it was given).
    async fn refused_as_unknown(&self, key: &str, method: Method, path: &str, body: Option<Value>) {
        let (status, v) = self.json(key, method.clone(), path, body.clone()).await;
        assert_eq!(status, 404, "{method} {path} with {key}: {v}");
        let text = v.to_string();
        assert!(!text.contains(SECRET) && !text.contains(DRAFT), "{text}");
        let unknown = uuid::Uuid::now_v7().to_string();
        let mut swapped = path.to_owned();
        let mut message = v["error"]["message"].as_str().unwrap().to_owned();
        for id in [self.private_id(), Self::id(&self.shared)] {
            swapped = swapped.replace(id, &unknown);
            message = message.replace(id, &unknown);
        }
        let (status2, v2) = self.json(key, method, &swapped, body).await;
        assert_eq!(status2, 404);
        assert_eq!(v["error"]["code"], v2["error"]["code"]);
        assert_eq!(message, v2["error"]["message"].as_str().unwrap());
    }

    /// Calls one MCP tool as `at` in `era`; false when the tool has no case.
    async fn probe_tool(&self, mcp: &mut Mcp, at: Attacker, tool: &str) -> bool {
        let b = at.other_tenant();
        let (p, s) = (
            self.private_id().to_owned(),
            Self::id(&self.shared).to_owned(),
        );
        let refused = |r: &Value| {
            let msg = failed(r);
            assert!(
                msg.starts_with("not_found") || msg.starts_with("permission_denied"),
                "{at:?} {tool}: {msg}"
            );
        };
        match tool {
            "memory_get" => {
                refused(&mcp.tool(tool, json!({"id": p})).await);
                let r = mcp.tool(tool, json!({"id": p, "as_agent": "a1"})).await;
                if at != Attacker::Unbound {
                    refused(&r);
                }
                if b {
                    refused(&mcp.tool(tool, json!({"id": s})).await);
                }
            }
            "memory_update" => {
                refused(
                    &mcp.tool(tool, json!({"id": p, "changes": {"text": "pwned"}}))
                        .await,
                );
                if b {
                    refused(
                        &mcp.tool(tool, json!({"id": s, "changes": {"text": "pwned"}}))
                            .await,
                    );
                }
            }
            "memory_delete" => {
                refused(&mcp.tool(tool, json!({"id": p})).await);
                if b {
                    refused(&mcp.tool(tool, json!({"id": s})).await);
                }
            }
            "memory_list" | "memory_search" | "memory_context" => {
                let args = match tool {
                    "memory_list" => json!({"namespace": "team"}),
                    "memory_search" => json!({"namespace": "team", "query": "vault 1234 safe"}),
                    _ => {
                        json!({"namespace": "team", "query": "vault 1234 safe", "session_id": SESSION})
                    }
                };
                let r = mcp.tool(tool, args).await;
                if b {
                    refused(&r);
                } else {
                    self.assert_clean(tool, &ok(&r).to_string());
                }
            }
            "memory_store" => {
                let args = json!({"memories": [{"namespace": at.namespace(), "text": "mcp attack", "idempotency_key": "order-42"}]});
                let r = mcp.tool(tool, args).await;
                if at == Attacker::ReadKey {
                    refused(&r);
                } else {
                    let v = ok(&r).to_string();
                    self.assert_clean("memory_store", &v);
                }
                if b {
                    let planted = json!({"memories": [{"namespace": "team", "text": "planted"}]});
                    refused(&mcp.tool(tool, planted).await);
                }
            }
            "memory_policy" | "memory_settings" => {
                let r = mcp.tool(tool, json!({"namespace": "team"})).await;
                if b {
                    refused(&r);
                } else {
                    assert_eq!(ok(&r)["namespace"], "team");
                }
            }
            "memory_extract" => {
                let r = mcp
                    .tool(tool, json!({"namespace": "team", "session_id": SESSION}))
                    .await;
                if b || at == Attacker::ReadKey {
                    refused(&r);
                }
            }
            "session_get" => {
                let r = mcp
                    .tool(tool, json!({"namespace": "team", "session_id": SESSION}))
                    .await;
                if b {
                    refused(&r);
                }
            }
            "session_append" => {
                let args = json!({"namespace": "team", "session_id": SESSION,
                    "messages": [{"role": "user", "content": "injected"}]});
                if b || at == Attacker::ReadKey {
                    refused(&mcp.tool(tool, args).await);
                }
            }
            _ => return false,
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_or_tool_lets_another_key_reach_a_tenants_private_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, &keys()),
    );
    let mut world = World {
        url: server.url.clone(),
        http: reqwest::Client::new(),
        private: Value::Null,
        shared: Value::Null,
        published: Value::Null,
    };
    let created = |v: (u16, Value)| {
        assert!(v.0 == 201 || v.0 == 200, "{v:?}");
        v.1["memory"].clone()
    };
    world.private = created(
        world
            .json("k-a1", Method::POST, "/v1/memories",
                Some(json!({"namespace": "team", "text": SECRET, "visibility": "private", "idempotency_key": "order-42"})))
            .await,
    );
    world.shared = created(
        world
            .json(
                "k-a1",
                Method::POST,
                "/v1/memories",
                Some(json!({"namespace": "team", "text": "the team plans a canary release"})),
            )
            .await,
    );
    let draft = created(
        world
            .json(
                "k-a1",
                Method::POST,
                "/v1/memories",
                Some(json!({"namespace": "team", "text": DRAFT, "visibility": "private"})),
            )
            .await,
    );
    let (status, published) = world
        .json(
            "k-a1",
            Method::PATCH,
            &format!("/v1/memories/{}", World::id(&draft)),
            Some(json!({"text": "public summary", "visibility": "shared"})),
        )
        .await;
    assert_eq!(status, 200, "{published}");
    world.published = published;
    let (status, _) = world
        .json("k-a1", Method::PUT, &format!("/v1/sessions/{SESSION}"),
            Some(json!({"namespace": "team", "messages": [{"role": "user", "content": "a1 session secret"}]})))
        .await;
    assert_eq!(status, 200);
    // a1's view before any probe.
    let before = world.a1_state().await;
    assert!(before.iter().all(|(s, _)| *s == 200), "{before:?}");

    // Every route of the API description has a case.
    let (_, doc) = world.json("k-a1", Method::GET, "/openapi.json", None).await;
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.push((method.clone(), path.clone()));
            }
        }
    }
    assert!(routes.len() >= 20, "{routes:?}");
    let mut uncovered = Vec::new();
    for at in Attacker::ALL {
        for (method, path) in &routes {
            if !world.probe_rest(at, method, path).await {
                uncovered.push(format!("{method} {path}"));
            }
        }
    }
    uncovered.sort();
    uncovered.dedup();
    assert!(
        uncovered.is_empty(),
        "routes with no isolation case: {uncovered:?}"
    );

    // Every MCP tool, in both protocol eras, has a case.
    for era in [NEW, OLD] {
        for at in Attacker::ALL {
            let mut mcp = Mcp::new(&server, Some(at.key()), era);
            if era == OLD {
                mcp.initialize().await;
            }
            let tools = mcp.call("tools/list", json!({})).await;
            let names: Vec<String> = tools["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            assert!(names.len() >= 9, "{names:?}");
            for name in names {
                assert!(
                    world.probe_tool(&mut mcp, at, &name).await,
                    "MCP tool {name} has no isolation case"
                );
            }
            // The memory resource by URI, too.
            let body = mcp.request(
                "resources/read",
                json!({"uri": format!("memory://team/{}", world.private_id())}),
            );
            let a = mcp.send(&body, &[]).await;
            let answer = a.message.expect("a JSON-RPC answer");
            assert!(
                answer["error"].is_object(),
                "{at:?} read a1's memory: {answer}"
            );
            assert!(!answer.to_string().contains(SECRET), "{answer}");
        }
    }

    // a1's memories and their histories are exactly as they were.
    let after = world.a1_state().await;
    assert_eq!(before, after, "a1's state changed");
    let (status, session) = world
        .json(
            "k-a1",
            Method::GET,
            &format!("/v1/sessions/{SESSION}?namespace=team"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // Same-tenant writers may replace a shared session (sessions belong to the
    // namespace); B's and the read key's attempts left no trace of their own.
    for foreign in ["injected", "b's"] {
        assert!(!session.to_string().contains(foreign), "{session}");
    }
}
