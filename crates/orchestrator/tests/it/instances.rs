//! Two orchestrator instances on one test-started redis-server: a run started
//! on one is streamed, cancelled and taken over through the other.

use serde_json::json;

use crate::support::{AGENTS, Api, Storage, eventually, kinds, orchestrator};
use test_support::redis_server::RedisServer;

const FAST_LEASES: &str = "[runs]\nlease_ms = 1000\nheartbeat_ms = 200\n";

#[tokio::test]
async fn a_run_on_one_instance_streams_and_cancels_through_another() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let url = redis.url();
    let a = orchestrator(dir.path(), AGENTS, Storage::Redis(&url), FAST_LEASES);
    let b = orchestrator(dir.path(), AGENTS, Storage::Redis(&url), FAST_LEASES);
    let (api_a, api_b) = (Api::new(&a.url), Api::new(&b.url));
    let thread = api_a.thread("team", None).await;

    // Started on A, streamed whole from B.
    let started = api_a
        .post(
            &format!("/v1/threads/{thread}/runs"),
            json!({"agent": "slow", "input": "one", "deadline_ms": 20}),
        )
        .await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let run = started.body["run"]["id"].as_str().unwrap().to_owned();
    let events = api_b
        .sse(
            &format!("/v1/threads/{thread}/runs/{run}/stream"),
            None,
            None,
        )
        .await;
    let k = kinds(&events);
    assert_eq!(k.first().map(String::as_str), Some("run.started"), "{k:?}");
    assert_eq!(k.last().map(String::as_str), Some("run.completed"), "{k:?}");
    // B sees the thread busy while A runs, and the finished run after.
    let run_b = api_b
        .get(&format!("/v1/threads/{thread}/runs/{run}"))
        .await
        .body;
    assert_eq!(run_b["output"], "slow: one");

    // Started on A, cancelled through B: A sees it at its next heartbeat.
    let started = api_a
        .post(
            &format!("/v1/threads/{thread}/runs"),
            json!({"agent": "slow", "input": "two", "deadline_ms": 20}),
        )
        .await;
    let run = started.body["run"]["id"].as_str().unwrap().to_owned();
    let busy = api_b.run(&thread, "echo", "three").await;
    assert_eq!(busy.status, 409, "{:?}", busy.body);
    let c = api_b
        .post(
            &format!("/v1/threads/{thread}/runs/{run}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(c.status, 202, "{:?}", c.body);
    let events = api_b
        .sse(
            &format!("/v1/threads/{thread}/runs/{run}/stream"),
            None,
            None,
        )
        .await;
    assert_eq!(
        kinds(&events).last().map(String::as_str),
        Some("run.cancelled")
    );
    let done = api_a
        .get(&format!("/v1/threads/{thread}/runs/{run}"))
        .await
        .body;
    assert_eq!(done["status"], "cancelled");
    assert!(done["output"].is_null());
}

#[tokio::test]
async fn a_run_whose_instance_dies_is_failed_by_another_and_the_thread_freed() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let url = redis.url();
    let mut a = orchestrator(dir.path(), AGENTS, Storage::Redis(&url), FAST_LEASES);
    let b = orchestrator(dir.path(), AGENTS, Storage::Redis(&url), FAST_LEASES);
    let (api_a, api_b) = (Api::new(&a.url), Api::new(&b.url));
    let thread = api_a.thread("team", None).await;
    let started = api_a
        .post(
            &format!("/v1/threads/{thread}/runs"),
            json!({"agent": "slow", "input": "one", "deadline_ms": 20}),
        )
        .await;
    let run = started.body["run"]["id"].as_str().unwrap().to_owned();
    // Queued behind it through B.
    let queued = api_b
        .post(
            &format!("/v1/threads/{thread}/runs"),
            json!({"agent": "echo", "input": "two", "queue": true, "deadline_ms": 20}),
        )
        .await;
    assert_eq!(queued.status, 202, "{:?}", queued.body);
    assert_eq!(queued.body["run"]["status"], "queued");
    let queued_id = queued.body["run"]["id"].as_str().unwrap().to_owned();
    a.kill();
    let failed = eventually(&api_b, &format!("/v1/threads/{thread}/runs/{run}"), |r| {
        r["status"] != "running"
    })
    .await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "instance_lost");
    let events = api_b
        .get(&format!("/v1/threads/{thread}/runs/{run}/events"))
        .await
        .body;
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "run.failed");
    assert_eq!(last["seq"], failed["last_event"]);
    // The queued run then ran on B.
    let next = eventually(
        &api_b,
        &format!("/v1/threads/{thread}/runs/{queued_id}"),
        |r| r["status"] == "completed",
    )
    .await;
    assert!(next["output"].as_str().unwrap().starts_with("echo: two"));
}
