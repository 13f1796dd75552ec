//! Every agent kind and failure mode, on scripted models, through the API.

use serde_json::Value;

use crate::support::{AGENTS, Api, Storage, first_event, kinds, orchestrator};

async fn setup() -> (tempfile::TempDir, crate::support::Process, Api, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = orchestrator(dir.path(), AGENTS, Storage::Embedded(&data), "");
    let api = Api::new(&p.url);
    let thread = api.thread("team", Some("alice")).await;
    (dir, p, api, thread)
}

#[tokio::test]
async fn an_llm_run_answers_counts_tokens_and_cost_and_keeps_the_thread() {
    let (_d, _p, api, thread) = setup().await;
    let a = api.run(&thread, "echo", "hello there").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let run = &a.body["run"];
    assert_eq!(run["status"], "completed");
    assert!(
        run["output"]
            .as_str()
            .unwrap()
            .starts_with("echo: hello there")
    );
    // Scripted tokens are words; prices 1 and 2 dollars per million.
    let usage = &run["usage"];
    let (i, o) = (
        usage["input_tokens"].as_u64().unwrap(),
        usage["output_tokens"].as_u64().unwrap(),
    );
    assert!(i > 0 && o > 0);
    let cost = usage["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - (i as f64 * 1.0 + o as f64 * 2.0) / 1e6).abs() < 1e-12,
        "{usage}"
    );
    assert_eq!(usage["by_model"]["scripted:script"]["calls"], 1);
    assert_eq!(usage["by_agent"]["echo"]["input_tokens"], i);
    assert_eq!(a.body["messages"][0]["content"], run["output"]);
    // A second run sees the first exchange as history.
    let b = api.run(&thread, "echo", "again").await;
    assert_eq!(b.body["run"]["status"], "completed");
    let messages = api
        .get(&format!("/v1/threads/{thread}/messages"))
        .await
        .body;
    let roles: Vec<&str> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    // The events: started, agent, usage, message, finished, completed, in order.
    let events = api.events(&thread, &a.body["run"]).await;
    let k = kinds(&events);
    assert_eq!(k.first().map(String::as_str), Some("run.started"));
    assert_eq!(k.last().map(String::as_str), Some("run.completed"));
    for kind in [
        "agent.started",
        "message.delta",
        "usage",
        "message.completed",
        "agent.finished",
    ] {
        assert!(k.iter().any(|x| x == kind), "{kind} missing from {k:?}");
    }
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(run["last_event"], seqs.len() as u64);
    // The deltas join to the answer.
    let text: String = events
        .iter()
        .filter(|e| e["event"] == "message.delta")
        .map(|e| e["data"]["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, run["output"].as_str().unwrap());
}

#[tokio::test]
async fn a_router_follows_its_model_and_falls_back_to_similarity() {
    let (_d, _p, api, thread) = setup().await;
    let a = api.run(&thread, "picker", "anything").await;
    let events = api.events(&thread, &a.body["run"]).await;
    let chosen: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "route.chosen")
        .collect();
    assert_eq!(chosen[0]["data"]["route"], "second");
    assert_eq!(chosen[0]["data"]["method"], "model");
    // No model: the closest description.
    let a = api
        .run(&thread, "similar", "how long should green tea brew")
        .await;
    let events = api.events(&thread, &a.body["run"]).await;
    let chosen = first_event(&events, "route.chosen");
    assert_eq!(chosen["data"]["route"], "tea");
    assert_eq!(chosen["data"]["method"], "similarity");
    let a = api.run(&thread, "similar", "a bug in my rust code").await;
    let events = api.events(&thread, &a.body["run"]).await;
    let chosen = first_event(&events, "route.chosen");
    assert_eq!(chosen["data"]["route"], "code");
    // A model answering outside the schema's enum: similarity decides.
    let a = api.run(&thread, "confused", "brewing green tea").await;
    assert_eq!(a.body["run"]["status"], "completed");
    let events = api.events(&thread, &a.body["run"]).await;
    let chosen = first_event(&events, "route.chosen");
    assert_eq!(chosen["data"]["route"], "tea");
    assert_eq!(chosen["data"]["method"], "similarity");
}

#[tokio::test]
async fn sequential_parallel_and_loop_agents_compose() {
    let (_d, _p, api, thread) = setup().await;
    // sequential: the second step sees the first's output.
    let a = api.run(&thread, "pipeline", "start").await;
    let out = a.body["run"]["output"].as_str().unwrap();
    assert!(
        out.starts_with("next saw: Output of first:\necho: start"),
        "{out}"
    );
    // parallel: both branches, then the join over their answers.
    let a = api.run(&thread, "fan", "go").await;
    let out = a.body["run"]["output"].as_str().unwrap();
    assert!(
        out.starts_with("joined: Answers of the branches:\n## first\n"),
        "{out}"
    );
    assert!(out.contains("## second\n"), "{out}");
    let started = |events: &[Value], agent: &str| {
        events
            .iter()
            .filter(|e| e["event"] == "agent.started" && e["data"]["agent"] == agent)
            .count()
    };
    // loop: exit_loop in the first step of the first pass stops it there.
    let a = api.run(&thread, "looper", "go").await;
    assert_eq!(a.body["run"]["status"], "completed", "{:?}", a.body);
    assert_eq!(a.body["run"]["output"], "exited");
    let events = api.events(&thread, &a.body["run"]).await;
    assert_eq!(started(&events, "exiting"), 1);
    assert_eq!(started(&events, "first"), 0);
    // loop: a state key set by output_key stops it after one pass.
    let a = api.run(&thread, "until", "go").await;
    let events = api.events(&thread, &a.body["run"]).await;
    assert_eq!(started(&events, "keyed"), 1);
    // loop: without a stop, exactly max_iterations passes.
    let a = api.run(&thread, "twice", "go").await;
    let events = api.events(&thread, &a.body["run"]).await;
    assert_eq!(started(&events, "first"), 2);
}

#[tokio::test]
async fn failures_end_runs_with_a_code() {
    let (_d, _p, api, thread) = setup().await;
    let a = api.run(&thread, "spin", "go").await;
    assert_eq!(a.body["run"]["status"], "failed");
    assert_eq!(a.body["run"]["error"]["code"], "max_steps");
    let events = api.events(&thread, &a.body["run"]).await;
    let k = kinds(&events);
    assert_eq!(k.iter().filter(|x| *x == "tool.call").count(), 3);
    assert_eq!(k.last().map(String::as_str), Some("run.failed"));
    let a = api.run(&thread, "hasty", "go").await;
    assert_eq!(a.body["run"]["error"]["code"], "timeout");
    let a = api.run(&thread, "down", "go").await;
    assert_eq!(a.body["run"]["error"]["code"], "model_unavailable");
    assert!(
        a.body["run"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the model is down")
    );
    // A tool the agent does not have is refused as a tool result, not run.
    let a = api.run(&thread, "echo", "use the forbidden tool").await;
    assert_eq!(a.body["run"]["status"], "completed");
    assert!(
        a.body["run"]["output"]
            .as_str()
            .unwrap()
            .contains("not one of this agent's tools")
    );
}

#[tokio::test]
async fn a_busy_thread_refuses_or_queues_and_cancel_stops_runs() {
    let (_d, _p, api, thread) = setup().await;
    // A slow run, not waited for.
    let slow = api
        .post(
            &format!("/v1/threads/{thread}/runs"),
            serde_json::json!({"agent": "slow", "input": "one", "deadline_ms": 50}),
        )
        .await;
    assert_eq!(slow.status, 202, "{:?}", slow.body);
    let slow_id = slow.body["run"]["id"].as_str().unwrap().to_owned();
    let busy = api.run(&thread, "echo", "two").await;
    assert_eq!(busy.status, 409);
    assert_eq!(busy.body["error"]["code"], "thread_busy");
    assert_eq!(
        busy.body["error"]["details"]["active_run"],
        slow_id.as_str()
    );
    // Queued behind it, it runs after it and sees its answer.
    let queued = api
        .post(
            &format!("/v1/threads/{thread}/runs"),
            serde_json::json!({"agent": "echo", "input": "three", "queue": true}),
        )
        .await;
    assert_eq!(queued.status, 200, "{:?}", queued.body);
    assert_eq!(queued.body["run"]["status"], "completed");
    let messages = api
        .get(&format!("/v1/threads/{thread}/messages"))
        .await
        .body;
    let contents: Vec<&str> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents[..2], ["one", "slow: one"]);
    assert_eq!(contents[2], "three");
    // Cancel: a slow run ends `cancelled` at once on this instance.
    let slow = api
        .post(
            &format!("/v1/threads/{thread}/runs"),
            serde_json::json!({"agent": "slow", "input": "four", "deadline_ms": 20}),
        )
        .await;
    let id = slow.body["run"]["id"].as_str().unwrap();
    let c = api
        .post(
            &format!("/v1/threads/{thread}/runs/{id}/cancel"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(c.status, 202, "{:?}", c.body);
    let run = crate::support::eventually(&api, &format!("/v1/threads/{thread}/runs/{id}"), |r| {
        r["status"] == "cancelled"
    })
    .await;
    assert!(run["finished_at"].is_string());
    let again = api
        .post(
            &format!("/v1/threads/{thread}/runs/{id}/cancel"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(again.status, 409);
    // The thread is free again.
    assert_eq!(
        api.run(&thread, "echo", "five").await.body["run"]["status"],
        "completed"
    );
}

#[tokio::test]
async fn a_tool_call_waits_for_approval_and_resumes_approved_rejected_or_edited() {
    use serde_json::json;
    let (_d, _p, api, thread) = setup().await;
    let runs = format!("/v1/threads/{thread}/runs");
    let interrupted = |a: &crate::support::Answer| {
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(a.body["run"]["status"], "interrupted", "{:?}", a.body);
        a.body["run"]["id"].as_str().unwrap().to_owned()
    };
    // Streamed: the stream ends at the interrupt, naming the call.
    let events = api
        .sse(
            &format!("{runs}/stream"),
            Some(json!({"agent": "careful", "input": "use the forbidden tool"})),
            None,
        )
        .await;
    let last = events.last().unwrap();
    assert_eq!(last["event"], "interrupt");
    assert_eq!(last["data"]["tool"], "exit_loop");
    let run = last["run_id"].as_str().unwrap().to_owned();
    let paused_at = last["seq"].as_u64().unwrap();
    assert!(
        !crate::support::kinds(&events)
            .iter()
            .any(|k| k == "tool.call"),
        "nothing ran before approval"
    );
    // Paused, it keeps its thread.
    assert_eq!(api.run(&thread, "echo", "meanwhile").await.status, 409);
    // Bad decisions change nothing.
    let resume = format!("{runs}/{run}/resume");
    assert_eq!(
        api.post(&resume, json!({"decision": "edit"})).await.status,
        400
    );
    assert_eq!(
        api.post(&resume, json!({"decision": "approve", "arguments": {}}))
            .await
            .status,
        400
    );
    assert_eq!(
        api.post(&resume, json!({"decision": "maybe"})).await.status,
        400
    );
    // Approved: the call runs, the run completes; a rejoin sees the rest.
    let a = api.post(&resume, json!({"decision": "approve"})).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["run"]["status"], "completed");
    assert_eq!(a.body["run"]["output"], "tool said: {\"ok\":true}");
    // The resumed run released its thread in its last write.
    let t = api.get(&format!("/v1/threads/{thread}")).await;
    assert_eq!(
        t.body["active_run"],
        serde_json::Value::Null,
        "{:?}",
        t.body
    );
    let rest = api
        .sse(&format!("{runs}/{run}/stream"), None, Some(paused_at))
        .await;
    let call = rest.iter().find(|e| e["event"] == "tool.call").unwrap();
    assert_eq!(call["data"]["approval"], "approved");
    assert_eq!(rest.last().unwrap()["event"], "run.completed");
    assert_eq!(rest[0]["seq"].as_u64().unwrap(), paused_at + 1);
    assert_eq!(
        api.post(&resume, json!({"decision": "approve"}))
            .await
            .status,
        409
    );
    // Usage counts both halves of the run.
    assert_eq!(
        a.body["run"]["usage"]["by_model"]["scripted:script"]["calls"],
        2
    );

    // Rejected: the model is told why; the call never runs.
    let id = interrupted(
        &api.post(
            &runs,
            json!({"agent": "careful", "input": "use the forbidden tool"}),
        )
        .await,
    );
    let a = api
        .post(
            &format!("{runs}/{id}/resume"),
            json!({"decision": "reject", "reason": "not now"}),
        )
        .await;
    assert!(
        a.body["run"]["output"]
            .as_str()
            .unwrap()
            .contains("a person rejected this call: not now"),
        "{:?}",
        a.body
    );

    // Edited: it runs with the person's arguments.
    let id = interrupted(
        &api.post(
            &runs,
            json!({"agent": "careful", "input": "use the forbidden tool"}),
        )
        .await,
    );
    let a = api
        .post(
            &format!("{runs}/{id}/resume"),
            json!({"decision": "edit", "arguments": {"why": "done"}}),
        )
        .await;
    assert_eq!(a.body["run"]["status"], "completed");
    let events = api.events(&thread, &a.body["run"]).await;
    let call = first_event(&events, "tool.call");
    assert_eq!(call["data"]["approval"], "edited");
    assert_eq!(call["data"]["arguments"], "{\"why\":\"done\"}");

    // Cancelled while paused: the thread is free again.
    let id = interrupted(
        &api.post(
            &runs,
            json!({"agent": "careful", "input": "use the forbidden tool"}),
        )
        .await,
    );
    let c = api.post(&format!("{runs}/{id}/cancel"), json!({})).await;
    assert_eq!(c.status, 202);
    assert_eq!(c.body["status"], "cancelled");
    assert_eq!(
        api.run(&thread, "echo", "free").await.body["run"]["status"],
        "completed"
    );
}
