//! The HTTP surface: streaming and rejoining, bad input, and what another
//! tenant, a read-only key or a made-up id can reach.

use serde_json::json;

use crate::support::{AGENTS, Api, Storage, kinds, orchestrator};

const KEYS: &str = r#"[auth]
enabled = true
keys = [
  { name = "a", key = "key-a", role = "write", namespaces = ["team-a"] },
  { name = "a-read", key = "key-a-read", role = "read", namespaces = ["team-a"] },
  { name = "b", key = "key-b", role = "write", namespaces = ["team-b"] },
  { name = "multi", key = "key-multi", role = "write", namespaces = ["team-a", "team-b"] },
]
"#;

#[tokio::test]
async fn a_streamed_run_can_be_rejoined_from_any_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = orchestrator(dir.path(), AGENTS, Storage::Embedded(&data), "");
    let api = Api::new(&p.url);
    let thread = api.thread("team", None).await;
    let events = api
        .sse(
            &format!("/v1/threads/{thread}/runs/stream"),
            Some(json!({"agent": "pipeline", "input": "hello stream"})),
            None,
        )
        .await;
    let k = kinds(&events);
    assert_eq!(k.first().map(String::as_str), Some("run.started"));
    assert_eq!(k.last().map(String::as_str), Some("run.completed"));
    let run = events[0]["run_id"].as_str().unwrap();
    // Rejoin after event 3: exactly the rest, same numbers and content.
    let rest = api
        .sse(
            &format!("/v1/threads/{thread}/runs/{run}/stream"),
            None,
            Some(3),
        )
        .await;
    assert_eq!(rest, events[3..]);
    // `stream_mode=messages` leaves the deltas out.
    let whole = api
        .sse(
            &format!("/v1/threads/{thread}/runs/{run}/stream?stream_mode=messages"),
            None,
            None,
        )
        .await;
    assert!(!kinds(&whole).iter().any(|k| k == "message.delta"));
    assert!(kinds(&whole).iter().any(|k| k == "message.completed"));
    // A stateless run streams too and leaves no thread behind.
    let events = api
        .sse(
            "/v1/runs/stream",
            Some(json!({"agent": "echo", "input": "x", "namespace": "team"})),
            None,
        )
        .await;
    assert_eq!(
        kinds(&events).last().map(String::as_str),
        Some("run.completed")
    );
    let a = api
        .post(
            "/v1/runs",
            json!({"agent": "echo", "input": "y", "namespace": "team"}),
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.body["run"]["thread_id"].is_null());
    assert_eq!(
        api.get("/v1/threads?namespace=team").await.body["threads"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn bad_input_is_a_4xx_that_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = orchestrator(
        dir.path(),
        AGENTS,
        Storage::Embedded(&data),
        "[runs]\nmax_input_chars = 100\n",
    );
    let api = Api::new(&p.url);
    let thread = api.thread("team", None).await;
    let runs = format!("/v1/threads/{thread}/runs");
    let a = api
        .post(&runs, json!({"agent": "nobody", "input": "x"}))
        .await;
    assert_eq!(a.status, 404);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nobody")
    );
    for (body, field) in [
        (json!({"agent": "echo"}), "input"),
        (
            json!({"agent": "echo", "input": "x", "messages": [{"role": "user", "content": "y"}]}),
            "input",
        ),
        (
            json!({"agent": "echo", "input": "   "}),
            "messages[0].content",
        ),
        (
            json!({"agent": "echo", "input": "x", "surprise": 1}),
            "surprise",
        ),
        (json!({"agent": "echo", "input": 7}), "input"),
        (
            json!({"agent": "echo", "messages": [{"role": "wizard", "content": "y"}]}),
            "messages[0].role",
        ),
        (
            json!({"agent": "echo", "messages": [{"role": "assistant", "content": "y"}]}),
            "messages",
        ),
        (
            json!({"agent": "echo", "input": "x", "deadline_ms": 0}),
            "deadline_ms",
        ),
    ] {
        let a = api.post(&runs, body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {:?}", a.body);
        assert_eq!(a.body["error"]["code"], "invalid_argument");
        let named = a.body["error"]["details"]["field"]
            .as_str()
            .unwrap_or_default();
        assert!(
            named.contains(field) || a.body["error"]["message"].as_str().unwrap().contains(field),
            "{body}: {:?}",
            a.body
        );
    }
    let a = api
        .post(&runs, json!({"agent": "echo", "input": "x".repeat(101)}))
        .await;
    assert_eq!(a.status, 413);
    let a = api.post(&runs, json!(["agent", "echo"])).await;
    assert_eq!(a.status, 400);
    for path in [
        "/v1/threads/not-a-uuid",
        &format!("/v1/threads/{}", uuid::Uuid::now_v7()),
    ] {
        assert_eq!(api.get(path).await.status, 404, "{path}");
    }
    let a = api
        .get(&format!(
            "/v1/threads/{thread}/runs/{}",
            uuid::Uuid::now_v7()
        ))
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(api.get("/v1/threads?limit=0").await.status, 400);
    assert_eq!(api.get("/v1/threads?cursor=bogus").await.status, 400);
    assert_eq!(api.get("/v1/agents/nobody").await.status, 404);
    assert_eq!(api.get("/nowhere").await.status, 404);
    // Nothing stored was lost: the thread is there and still runs.
    assert_eq!(
        api.run(&thread, "echo", "still here").await.body["run"]["status"],
        "completed"
    );
}

#[tokio::test]
async fn keys_reach_only_their_namespaces_threads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = orchestrator(dir.path(), AGENTS, Storage::Embedded(&data), KEYS);
    let base = Api::new(&p.url);
    let (a, a_read, b, multi) = (
        base.with_key("key-a"),
        base.with_key("key-a-read"),
        base.with_key("key-b"),
        base.with_key("key-multi"),
    );
    assert_eq!(base.get("/v1/agents").await.status, 401);
    assert_eq!(base.with_key("wrong").get("/v1/agents").await.status, 401);
    // A key with one namespace need not name it; one with several must.
    let created = a.post("/v1/threads", json!({"user_id": "alice"})).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["namespace"], "team-a");
    assert_eq!(multi.post("/v1/threads", json!({})).await.status, 400);
    assert_eq!(
        b.post("/v1/threads", json!({"namespace": "team-a"}))
            .await
            .status,
        403
    );
    let thread = created.body["id"].as_str().unwrap().to_owned();
    let done = a.run(&thread, "echo", "secret plans").await;
    assert_eq!(done.status, 200);
    let run = done.body["run"]["id"].as_str().unwrap().to_owned();
    // Another tenant sees nothing of it, by any route, and cannot act on it.
    let t = format!("/v1/threads/{thread}");
    let r = format!("{t}/runs/{run}");
    for path in [
        t.clone(),
        format!("{t}/messages"),
        r.clone(),
        format!("{r}/events"),
    ] {
        let got = b.get(&path).await;
        assert_eq!(got.status, 404, "{path}: {:?}", got.body);
    }
    assert_eq!(
        b.post(&format!("{t}/runs"), json!({"agent": "echo", "input": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(b.post(&format!("{r}/cancel"), json!({})).await.status, 404);
    assert_eq!(
        b.post(&format!("{r}/resume"), json!({"decision": "approve"}))
            .await
            .status,
        404
    );
    assert_eq!(b.delete(&t).await.status, 404);
    let streamed = reqwest::Client::new()
        .get(format!("{}{r}/stream", p.url))
        .bearer_auth("key-b")
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status().as_u16(), 404);
    let listed = b.get("/v1/threads").await.body;
    assert_eq!(listed["threads"].as_array().unwrap().len(), 0);
    assert_eq!(b.get("/v1/threads?namespace=team-a").await.status, 403);
    // A stateless run cannot be pointed at another tenant's namespace.
    assert_eq!(
        b.post(
            "/v1/runs",
            json!({"agent": "echo", "input": "x", "namespace": "team-a"})
        )
        .await
        .status,
        403
    );
    // A thread's run cannot move to another namespace or user.
    let moved = a
        .post(
            &format!("{t}/runs"),
            json!({"agent": "echo", "input": "x", "user_id": "mallory"}),
        )
        .await;
    assert_eq!(moved.status, 400);
    // A read key reads but cannot start, cancel or delete.
    assert_eq!(a_read.get(&format!("{t}/messages")).await.status, 200);
    assert_eq!(
        a_read
            .post(&format!("{t}/runs"), json!({"agent": "echo", "input": "x"}))
            .await
            .status,
        403
    );
    assert_eq!(
        a_read.post(&format!("{r}/cancel"), json!({})).await.status,
        403
    );
    let resume = format!("{r}/resume");
    let resumed = a_read.post(&resume, json!({"decision": "approve"})).await;
    assert_eq!(resumed.status, 403);
    assert_eq!(a_read.delete(&t).await.status, 403);
    // The owner deletes it, with its runs and events.
    assert_eq!(a.delete(&t).await.status, 204);
    assert_eq!(a.get(&t).await.status, 404);
    assert_eq!(a.get(&format!("{r}/events")).await.status, 404);
}

#[tokio::test]
async fn the_openapi_document_declares_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = orchestrator(dir.path(), AGENTS, Storage::Embedded(&data), "");
    let doc = Api::new(&p.url).get("/openapi.json").await.body;
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/agents", "get"),
        ("/v1/agents/{name}", "get"),
        ("/v1/threads", "post"),
        ("/v1/threads", "get"),
        ("/v1/threads/{id}", "get"),
        ("/v1/threads/{id}", "delete"),
        ("/v1/threads/{id}/messages", "get"),
        ("/v1/threads/{id}/runs", "post"),
        ("/v1/threads/{id}/runs/stream", "post"),
        ("/v1/threads/{id}/runs/{run_id}", "get"),
        ("/v1/threads/{id}/runs/{run_id}/stream", "get"),
        ("/v1/threads/{id}/runs/{run_id}/events", "get"),
        ("/v1/threads/{id}/runs/{run_id}/cancel", "post"),
        ("/v1/threads/{id}/runs/{run_id}/resume", "post"),
        ("/v1/runs", "post"),
        ("/v1/runs/stream", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undeclared"
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", p.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("orchestrator_http_requests_total"),
        "{metrics}"
    );
}
