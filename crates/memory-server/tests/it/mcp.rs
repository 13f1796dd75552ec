//! MCP against the real binary: both protocol eras over streamable HTTP (raw
//! JSON-RPC, so every header and status is visible), sessions shared by two
//! instances on one Redis, auth and tenancy, Host/Origin checks, and stdio
//! through rmcp's own client.

use crate::support::mcp::{Mcp, NEW, OLD, failed, ok};
use crate::support::{Server, auth_keys, config_toml, free_port, two_servers_on_one_redis};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The keys of these tests.
fn keys() -> String {
    auth_keys(&[
        ("writer-a", "k-writer-a", "write", &["a"], None),
        ("reader-a", "k-reader-a", "read", &["a"], None),
        ("writer-b", "k-writer-b", "write", &["b"], None),
    ])
}

/// A server on `dir` with [`keys`].
fn start(dir: &std::path::Path) -> Server {
    Server::start(dir, &config_toml(free_port(), dir, None, &keys()))
}

const TOOLS: [&str; 12] = [
    "memory_context",
    "memory_delete",
    "memory_extract",
    "memory_get",
    "memory_list",
    "memory_policy",
    "memory_search",
    "memory_settings",
    "memory_store",
    "memory_update",
    "session_append",
    "session_get",
];

#[tokio::test]
async fn older_era_session_covers_tools_resources_and_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let mut mcp = Mcp::new(&server, Some("k-writer-a"), OLD);
    mcp.initialize().await;

    let tools = mcp.call("tools/list", json!({})).await;
    let mut names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);
    for t in tools["tools"].as_array().unwrap() {
        assert_eq!(t["inputSchema"]["type"], "object", "{}", t["name"]);
        assert_eq!(t["outputSchema"]["type"], "object", "{}", t["name"]);
        assert!(t["description"].as_str().unwrap().len() > 20);
        for hint in ["readOnlyHint", "destructiveHint", "idempotentHint"] {
            assert!(t["annotations"][hint].is_boolean(), "{} {hint}", t["name"]);
        }
    }
    let search_tool = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "memory_search")
        .unwrap();
    assert_eq!(search_tool["annotations"]["readOnlyHint"], true);
    assert!(
        search_tool["inputSchema"]["properties"]["query"]["description"]
            .as_str()
            .is_some()
    );

    let stored = mcp
        .tool(
            "memory_store",
            json!({"memories": [
                {"namespace": "a", "text": "Alice prefers green tea in the afternoon", "user_id": "alice"},
                {"namespace": "a", "text": "The staging deploy needs a canary first"}
            ]}),
        )
        .await;
    let stored = ok(&stored);
    let id = stored["memories"][0]["memory"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1 = stored["memories"][0]["memory"]["version"].as_u64().unwrap();
    assert_eq!(stored["memories"][1]["duplicate"], false);

    let again = mcp
        .tool(
            "memory_store",
            json!({"memories": [{"namespace": "a", "text": "Alice prefers green tea in the afternoon", "user_id": "alice"}]}),
        )
        .await;
    assert_eq!(ok(&again)["memories"][0]["duplicate"], true);

    let found = mcp
        .tool(
            "memory_search",
            json!({"namespace": "a", "query": "green tea"}),
        )
        .await;
    assert_eq!(ok(&found)["results"][0]["memory"]["id"], id.as_str());

    let got = mcp.tool("memory_get", json!({"id": id})).await;
    assert_eq!(ok(&got)["user_id"], "alice");

    let updated = mcp
        .tool(
            "memory_update",
            json!({"id": id, "changes": {"text": "Alice prefers jasmine tea", "version": v1}}),
        )
        .await;
    assert!(ok(&updated)["version"].as_u64().unwrap() > v1);
    let stale = mcp
        .tool(
            "memory_update",
            json!({"id": id, "changes": {"text": "stale write", "version": v1}}),
        )
        .await;
    assert!(failed(&stale).starts_with("precondition_failed"));

    let listed = mcp
        .tool("memory_list", json!({"namespace": "a", "limit": 10}))
        .await;
    assert_eq!(ok(&listed)["memories"].as_array().unwrap().len(), 2);

    let appended = mcp
        .tool(
            "session_append",
            json!({"namespace": "a", "session_id": "s1", "window": 2, "messages": [
                {"role": "user", "content": "what tea does Alice like?"},
                {"role": "assistant", "content": "let me check"},
                {"role": "user", "content": "and for the deploy?"}
            ]}),
        )
        .await;
    assert_eq!(ok(&appended)["trimmed_now"], 1);
    let session = mcp
        .tool("session_get", json!({"namespace": "a", "session_id": "s1"}))
        .await;
    assert_eq!(
        ok(&session)["messages"][1]["content"],
        "and for the deploy?"
    );

    let context = mcp
        .tool(
            "memory_context",
            json!({"namespace": "a", "query": "jasmine tea", "session_id": "s1", "max_chars": 400}),
        )
        .await;
    let context = ok(&context);
    let text = context["context"].as_str().unwrap();
    assert!(text.contains("- user: and for the deploy?"), "{text}");
    assert!(text.contains("Alice prefers jasmine tea"), "{text}");
    assert!(text.chars().count() <= 400);

    let templates = mcp.call("resources/templates/list", json!({})).await;
    assert_eq!(
        templates["resourceTemplates"][0]["uriTemplate"],
        "memory://{namespace}/{id}"
    );
    let read = mcp
        .call("resources/read", json!({"uri": format!("memory://a/{id}")}))
        .await;
    let body: Value = serde_json::from_str(read["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["text"], "Alice prefers jasmine tea");

    let prompts = mcp.call("prompts/list", json!({})).await;
    assert_eq!(prompts["prompts"][0]["name"], "recall");
    let prompt = mcp
        .call(
            "prompts/get",
            json!({"name": "recall", "arguments": {"namespace": "a", "task": "jasmine tea"}}),
        )
        .await;
    let said = prompt["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(said.contains("Alice prefers jasmine tea"), "{said}");

    let bad = mcp.tool("memory_get", json!({"id": "not-a-uuid"})).await;
    assert!(failed(&bad).contains("is not a memory id"));
    let blank = mcp
        .tool(
            "memory_store",
            json!({"memories": [{"namespace": "a", "text": "   "}]}),
        )
        .await;
    assert!(failed(&blank).starts_with("invalid_argument"));

    let deleted = mcp.tool("memory_delete", json!({"id": id})).await;
    assert_eq!(ok(&deleted)["deleted"], true);
    let gone = mcp.tool("memory_get", json!({"id": id})).await;
    assert!(failed(&gone).starts_with("not_found"));

    // DELETE ends the session; the id is then unknown.
    let resp = mcp
        .http
        .delete(&mcp.url)
        .bearer_auth("k-writer-a")
        .header("mcp-session-id", mcp.session.clone().unwrap())
        .header("mcp-protocol-version", OLD)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let body = mcp.request("tools/list", json!({}));
    let after = mcp.send(&body, &[]).await;
    assert_eq!(after.status, StatusCode::NOT_FOUND);
}

/// `memory_search` takes the REST search's conversation options: neighbouring
/// turns, a cap per session, and a time read from the question.
#[tokio::test]
async fn memory_search_takes_the_conversation_options() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let mut mcp = Mcp::new(&server, Some("k-writer-a"), OLD);
    mcp.initialize().await;
    let turn = |session: &str, n: u32, at: &str, text: &str| {
        json!({"namespace": "a", "user_id": "u", "session_id": session,
               "metadata": {"turn": n}, "created_at": at, "text": text})
    };
    let stored = mcp
        .tool(
            "memory_store",
            json!({"memories": [
                turn("may", 0, "2023-05-08T10:00:00Z", "Did you go anywhere?"),
                turn("may", 1, "2023-05-08T10:01:00Z", "We hiked the ridge trail."),
                turn("may", 2, "2023-05-08T10:02:00Z", "Sounds lovely."),
                turn("june", 0, "2023-06-02T10:00:00Z", "Another trail this weekend?"),
                turn("june", 1, "2023-06-02T10:01:00Z", "Yes, the coastal trail."),
            ]}),
        )
        .await;
    let ids: Vec<String> = ok(&stored)["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["memory"]["id"].as_str().unwrap().to_owned())
        .collect();
    let search = |args: Value| {
        let mut all = json!({"namespace": "a", "mode": "keyword"});
        all.as_object_mut()
            .unwrap()
            .extend(args.as_object().unwrap().clone());
        all
    };

    // The hit in May is followed by the turns before and after it, marked
    // as its neighbours.
    let found = mcp
        .tool(
            "memory_search",
            search(json!({"query": "ridge", "context_window": {"before": 1, "after": 1}})),
        )
        .await;
    let results = ok(&found)["results"].as_array().unwrap().clone();
    let listed: Vec<(&str, &Value)> = results
        .iter()
        .map(|r| (r["memory"]["id"].as_str().unwrap(), &r["neighbor"]))
        .collect();
    assert_eq!(listed.len(), 3, "{found}");
    assert_eq!(listed[0].0, ids[1]);
    assert!(listed[0].1.is_null(), "{found}");
    assert_eq!(
        listed[1],
        (ids[0].as_str(), &json!({"of": ids[1], "offset": -1}))
    );
    assert_eq!(
        listed[2],
        (ids[2].as_str(), &json!({"of": ids[1], "offset": 1}))
    );

    // Three turns match "trail"; at most one per session comes back.
    let capped = mcp
        .tool(
            "memory_search",
            search(json!({"query": "trail", "max_per_session": 1})),
        )
        .await;
    let sessions: Vec<&str> = ok(&capped)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["memory"]["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(sessions.len(), 2, "{capped}");
    assert_ne!(sessions[0], sessions[1]);

    // "last month", read from a reference time in June, keeps May's turns only.
    let dated = mcp
        .tool(
            "memory_search",
            search(json!({"query": "trail last month", "query_time": "filter",
                          "reference_time": "2023-06-10T00:00:00Z"})),
        )
        .await;
    let dated = ok(&dated);
    assert_eq!(dated["time_range"]["applied"], "filter", "{dated}");
    let hits: Vec<&str> = dated["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["memory"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(hits, [ids[1].as_str()], "{dated}");
}

#[tokio::test]
async fn stateless_era_enforces_keys_roles_and_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let mut writer_b = Mcp::new(&server, Some("k-writer-b"), NEW);
    let stored = writer_b
        .tool(
            "memory_store",
            json!({"memories": [{"namespace": "b", "text": "b's secret plan"}]}),
        )
        .await;
    let b_id = ok(&stored)["memories"][0]["memory"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // No key, and an unknown key: 401 with a Bearer challenge.
    for key in [None, Some("k-nobody")] {
        let mut anon = Mcp::new(&server, key, NEW);
        let body = anon.request("tools/list", json!({}));
        let a = anon.send(&body, &[]).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(a.headers["www-authenticate"], "Bearer");
    }

    let mut writer_a = Mcp::new(&server, Some("k-writer-a"), NEW);
    let cross = writer_a
        .tool(
            "memory_store",
            json!({"memories": [{"namespace": "b", "text": "planted"}]}),
        )
        .await;
    assert!(failed(&cross).starts_with("permission_denied"));
    for (tool, args) in [
        ("memory_search", json!({"namespace": "b", "query": "plan"})),
        ("memory_list", json!({"namespace": "b"})),
        ("memory_get", json!({"id": b_id})),
        ("memory_delete", json!({"id": b_id})),
        (
            "memory_update",
            json!({"id": b_id, "changes": {"text": "x"}}),
        ),
        ("session_get", json!({"namespace": "b", "session_id": "s"})),
        (
            "session_append",
            json!({"namespace": "b", "session_id": "s", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("memory_context", json!({"namespace": "b", "query": "plan"})),
    ] {
        let r = writer_a.tool(tool, args).await;
        let msg = failed(&r);
        assert!(
            msg.starts_with("permission_denied") || msg.starts_with("not_found"),
            "{tool}: {msg}"
        );
    }
    let body = writer_a.request(
        "resources/read",
        json!({"uri": format!("memory://b/{b_id}")}),
    );
    let a = writer_a.send(&body, &[]).await;
    assert!(a.message.unwrap()["error"].is_object());

    // With no allowlist configured, loopback pages pass and others are refused.
    let body = writer_a.request("tools/list", json!({}));
    let local = writer_a
        .send(&body, &[("origin", "http://localhost:5173")])
        .await;
    assert_eq!(local.status, StatusCode::OK);
    let foreign = writer_a
        .send(&body, &[("origin", "https://evil.example")])
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);

    let mut reader_a = Mcp::new(&server, Some("k-reader-a"), NEW);
    let write = reader_a
        .tool(
            "memory_store",
            json!({"memories": [{"namespace": "a", "text": "readers cannot write"}]}),
        )
        .await;
    assert!(failed(&write).starts_with("permission_denied"));

    // Nothing of b changed.
    let still = writer_b.tool("memory_get", json!({"id": b_id})).await;
    assert_eq!(ok(&still)["text"], "b's secret plan");
    let listed = writer_b
        .tool("memory_list", json!({"namespace": "b"}))
        .await;
    assert_eq!(ok(&listed)["memories"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(
            free_port(),
            dir.path(),
            None,
            "[mcp]\nallowed_origins = [\"https://app.example.com:443\"]\n",
        ),
    );
    let mut mcp = Mcp::new(&server, None, NEW);
    let body = mcp.request("tools/list", json!({}));
    let evil = mcp.send(&body, &[("origin", "https://evil.example")]).await;
    assert_eq!(evil.status, StatusCode::FORBIDDEN);
    let listed = mcp
        .send(&body, &[("origin", "https://app.example.com")])
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let rebound = mcp.send(&body, &[("host", "attacker.example")]).await;
    assert_eq!(rebound.status, StatusCode::FORBIDDEN);
    // A store through a refused request left nothing behind.
    let store = mcp.request(
        "tools/call",
        json!({"name": "memory_store", "arguments": {"memories": [{"namespace": "n", "text": "from evil"}]}}),
    );
    let refused = mcp
        .send(&store, &[("origin", "https://evil.example")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let listed = mcp.tool("memory_list", json!({"namespace": "n"})).await;
    assert_eq!(ok(&listed)["memories"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn an_older_era_session_moves_between_instances_on_one_redis() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, a, b) = two_servers_on_one_redis(dir.path(), "");
    let mut on_a = Mcp::new(&a, None, OLD);
    let session = on_a.initialize().await;
    let stored = on_a
        .tool(
            "memory_store",
            json!({"memories": [{"namespace": "shared", "text": "written through instance A"}]}),
        )
        .await;
    let id = ok(&stored)["memories"][0]["memory"]["id"].clone();

    // The load balancer sends the same session to B, which never saw its initialize.
    let mut on_b = Mcp::new(&b, None, OLD);
    on_b.session = Some(session);
    let got = on_b.tool("memory_get", json!({"id": id})).await;
    assert_eq!(ok(&got)["text"], "written through instance A");
    let found = on_b
        .tool(
            "memory_search",
            json!({"namespace": "shared", "query": "instance A"}),
        )
        .await;
    assert_eq!(ok(&found)["results"][0]["memory"]["id"], id);

    // An id no instance issued is still refused.
    let mut stranger = Mcp::new(&b, None, OLD);
    stranger.session = Some("no-such-session".into());
    let body = stranger.request("tools/list", json!({}));
    assert_eq!(
        stranger.send(&body, &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

/// A tool call through rmcp's client; returns the structured result (or the error text).
async fn rmcp_tool(
    client: &rmcp::Peer<rmcp::RoleClient>,
    name: &'static str,
    args: Value,
) -> Result<Value, String> {
    use rmcp::model::CallToolRequestParams;
    let args = args.as_object().cloned().expect("object arguments");
    let r = client
        .call_tool(CallToolRequestParams::new(name).with_arguments(args))
        .await
        .expect("tools/call");
    let text = r.content[0].as_text().map(|t| t.text.clone());
    if r.is_error == Some(true) {
        return Err(text.unwrap_or_default());
    }
    let structured = r.structured_content.expect("structured content");
    assert_eq!(
        serde_json::from_str::<Value>(&text.expect("text twin")).unwrap(),
        structured
    );
    Ok(structured)
}

/// Every tool, a resource read and the prompt through rmcp's client, as a
/// caller whose key writes namespace `a` only.
async fn exercise_rmcp(client: &rmcp::Peer<rmcp::RoleClient>) {
    use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams, ResourceContents};

    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);

    let stored = rmcp_tool(
        client,
        "memory_store",
        json!({"memories": [{"namespace": "a", "text": "stdio keeps the kettle warm", "user_id": "u1"}]}),
    )
    .await
    .unwrap();
    let memory = stored["memories"][0]["memory"].clone();
    let id = memory["id"].as_str().unwrap().to_owned();
    let found = rmcp_tool(
        client,
        "memory_search",
        json!({"namespace": "a", "query": "kettle"}),
    )
    .await
    .unwrap();
    assert_eq!(found["results"][0]["memory"]["id"], id.as_str());
    let got = rmcp_tool(client, "memory_get", json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(got["user_id"], "u1");
    let updated = rmcp_tool(
        client,
        "memory_update",
        json!({"id": id, "changes": {"text": "stdio keeps the teapot warm", "version": memory["version"]}}),
    )
    .await
    .unwrap();
    assert_eq!(updated["text"], "stdio keeps the teapot warm");
    let listed = rmcp_tool(client, "memory_list", json!({"namespace": "a"}))
        .await
        .unwrap();
    assert_eq!(listed["memories"].as_array().unwrap().len(), 1);
    rmcp_tool(
        client,
        "session_append",
        json!({"namespace": "a", "session_id": "s", "messages": [{"role": "user", "content": "is it warm?"}]}),
    )
    .await
    .unwrap();
    let session = rmcp_tool(
        client,
        "session_get",
        json!({"namespace": "a", "session_id": "s"}),
    )
    .await
    .unwrap();
    assert_eq!(session["messages"][0]["content"], "is it warm?");
    let context = rmcp_tool(
        client,
        "memory_context",
        json!({"namespace": "a", "query": "teapot", "session_id": "s"}),
    )
    .await
    .unwrap();
    let text = context["context"].as_str().unwrap();
    assert!(
        text.contains("is it warm?") && text.contains("teapot"),
        "{text}"
    );

    let read = client
        .read_resource(ReadResourceRequestParams::new(format!("memory://a/{id}")))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("a text resource");
    };
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap()["id"],
        id.as_str()
    );
    let prompt = client
        .get_prompt(
            GetPromptRequestParams::new("recall").with_arguments(
                json!({"namespace": "a", "task": "teapot"})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
        )
        .await
        .unwrap();
    let said = serde_json::to_string(&prompt.messages[0]).unwrap();
    assert!(said.contains("teapot"), "{said}");

    // stdio acts as its key: namespace b and bad input are refused.
    let cross = rmcp_tool(client, "memory_list", json!({"namespace": "b"})).await;
    assert!(cross.unwrap_err().starts_with("permission_denied"));
    let bad = rmcp_tool(
        client,
        "memory_search",
        json!({"namespace": "", "query": "x"}),
    )
    .await;
    assert!(bad.unwrap_err().starts_with("invalid_argument"));

    let deleted = rmcp_tool(client, "memory_delete", json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(deleted["deleted"], true);
    let gone = rmcp_tool(client, "memory_get", json!({"id": id})).await;
    assert!(gone.unwrap_err().starts_with("not_found"));
}

#[tokio::test]
async fn stdio_serves_every_operation_through_rmcp_client() {
    use rmcp::ServiceExt;
    use rmcp::transport::TokioChildProcess;

    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let stdio_key = "[mcp]\nstdio_key = \"k-writer-a\"\n";
    std::fs::write(
        config_dir.join("default.toml"),
        config_toml(
            free_port(),
            &dir.path().join("data"),
            None,
            &format!("{}\n{stdio_key}", keys()),
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_memory-server"));
    cmd.arg("--config-dir")
        .arg(&config_dir)
        .arg("mcp-stdio")
        .env_remove("ORCHESTRA_ENV")
        // Logs on: they must all go to stderr, or the client would choke.
        .env("ORCHESTRA__LOG__LEVEL", "info");
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();

    exercise_rmcp(client.peer()).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stdio_exits_when_stdin_closes_and_refuses_to_start_without_its_key() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let config_dir = crate::support::config_dir(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, ""),
    );
    // stdin is closed at once: the server sees EOF and exits by itself.
    let mut child = Command::new(env!("CARGO_BIN_EXE_memory-server"))
        .arg("--config-dir")
        .arg(&config_dir)
        .arg("mcp-stdio")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "mcp-stdio did not exit on EOF");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.is_empty(), "nothing but MCP on stdout: {out:?}");
    // A closed stdin before the handshake is the client's doing; either way it ends.
    let _ = status;

    // With auth on and no stdio key, it says what to set.
    std::fs::write(
        config_dir.join("default.toml"),
        config_toml(free_port(), &dir.path().join("data2"), None, &keys()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_memory-server"))
        .arg("--config-dir")
        .arg(&config_dir)
        .arg("mcp-stdio")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mcp.stdio_key"), "{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn an_oversize_body_is_refused_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(
            free_port(),
            dir.path(),
            None,
            "[limits]\nmax_body_bytes = 4096\n",
        ),
    );
    let mut mcp = Mcp::new(&server, None, NEW);
    let big = mcp.request(
        "tools/call",
        json!({"name": "memory_store", "arguments": {"memories": [{"namespace": "n", "text": "x".repeat(8000)}]}}),
    );
    let a = mcp.send(&big, &[]).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let listed = mcp.tool("memory_list", json!({"namespace": "n"})).await;
    assert_eq!(ok(&listed)["memories"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn http_serves_every_operation_through_rmcp_client_in_both_eras() {
    use rmcp::model::{ClientConfig, ProtocolVersion};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use rmcp::{ClientLifecycleMode, ClientServiceExt};

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    for (mode, era) in [
        (ClientLifecycleMode::Initialize, OLD),
        (
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
            NEW,
        ),
    ] {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", server.url))
                .auth_header("k-writer-a"),
        );
        let client = ClientConfig::default()
            .serve_with_lifecycle(transport, mode)
            .await
            .expect("the rmcp client connects");
        assert_eq!(
            client.peer_info().map(|i| i.protocol_version.to_string()),
            Some(era.to_owned())
        );
        exercise_rmcp(client.peer()).await;
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_session_answers_only_the_key_that_opened_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let mut owner = Mcp::new(&server, Some("k-writer-a"), OLD);
    let session = owner.initialize().await;
    // Another key of the same tenant, and another tenant's key, holding the id.
    for key in ["k-reader-a", "k-writer-b"] {
        let mut thief = Mcp::new(&server, Some(key), OLD);
        thief.session = Some(session.clone());
        let body = thief.request("tools/list", json!({}));
        let a = thief.send(&body, &[]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{key} used the session");
        let http = reqwest::Client::new();
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let r = http
                .request(method.clone(), &thief.url)
                .bearer_auth(key)
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", OLD)
                .header("accept", "application/json, text/event-stream")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{key}: {method}");
        }
    }
    // The opener's session is untouched and still answers it, until it ends it.
    let tools = owner.call("tools/list", json!({})).await;
    assert_eq!(tools["tools"].as_array().unwrap().len(), TOOLS.len());
    let r = reqwest::Client::new()
        .delete(&owner.url)
        .bearer_auth("k-writer-a")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", OLD)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let body = owner.request("tools/list", json!({}));
    assert_eq!(owner.send(&body, &[]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_messages_get_json_rpc_errors_in_both_eras() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    for era in [NEW, OLD] {
        let mut mcp = Mcp::new(&server, Some("k-writer-a"), era);
        if era == OLD {
            mcp.initialize().await;
        }
        let raw = |body: &'static str, content_type: &'static str| {
            let mut req = reqwest::Client::new()
                .post(&mcp.url)
                .bearer_auth("k-writer-a")
                .header("content-type", content_type)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", era);
            if let Some(s) = &mcp.session {
                req = req.header("mcp-session-id", s);
            }
            async move {
                let r = req.body(body).send().await.unwrap();
                let status = r.status();
                let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
                (status, ct, r.json::<Value>().await.expect("a JSON body"))
            }
        };
        // Not JSON: a JSON-RPC parse error, 400 (it was 415 in plain text).
        let (status, ct, v) = raw("{\"jsonrpc\": \"2.0\", \"id\": 1,", "application/json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{era}: {v}");
        assert!(ct.starts_with("application/json"));
        assert_eq!(v["error"]["code"], -32700, "{era}: {v}");
        // The wrong media type keeps its 415, as a JSON-RPC error body.
        let (status, _, v) = raw("{}", "text/plain").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{era}: {v}");
        assert_eq!(v["error"]["code"], -32600, "{era}: {v}");
        // A batch (an array) is refused as an invalid request.
        let (status, _, v) = raw("[]", "application/json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{era}: {v}");
        assert_eq!(v["error"]["code"], -32600);

        // Tool arguments that are not an object: "invalid params", with the
        // request's id, whatever the era (not "method not found").
        for arguments in [json!(["a", "b"]), json!("text"), json!(7)] {
            let mut body = mcp.request(
                "tools/call",
                json!({"name": "memory_list", "arguments": {}}),
            );
            body["params"]["arguments"] = arguments.clone();
            let a = mcp.send(&body, &[]).await;
            let msg = a.message.expect("a JSON-RPC answer");
            assert_eq!(msg["error"]["code"], -32602, "{era} {arguments}: {msg}");
            assert_eq!(msg["id"], body["id"]);
        }
        // Nested: an array where the tool's input schema has an object.
        for (tool, arguments) in [
            (
                "memory_store",
                json!({"memories": [["a", "stored from an array"]]}),
            ),
            ("memory_list", json!({"namespace": "a", "filter": ["x"]})),
            (
                "memory_update",
                json!({"id": "00000000-0000-0000-0000-000000000000", "changes": ["x"]}),
            ),
        ] {
            let body = mcp.request("tools/call", json!({"name": tool, "arguments": arguments}));
            let msg = mcp.send(&body, &[]).await.message.unwrap();
            assert_eq!(msg["error"]["code"], -32602, "{era} {tool}: {msg}");
            assert!(
                msg["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("expected an object"),
                "{msg}"
            );
        }
        let mut body = mcp.request("tools/list", json!({}));
        body["params"] = json!([1, 2]);
        let msg = mcp.send(&body, &[]).await.message.unwrap();
        assert_eq!(msg["error"]["code"], -32602, "{era}: {msg}");
        // Well-formed calls still work.
        let listed = mcp.tool("memory_list", json!({"namespace": "a"})).await;
        assert!(ok(&listed)["memories"].is_array());
    }
}
