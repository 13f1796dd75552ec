//! Chat providers against loopback stubs speaking the real wire formats,
//! written from the providers' public documentation: OpenAI
//! `chat/completions` SSE with `tool_calls` deltas, and Gemini
//! `streamGenerateContent?alt=sse` (Vertex AI and the Gemini API) with
//! `functionCall` parts and `usageMetadata`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use parking_lot::Mutex;
use providers::chat::gemini::GeminiWire;
use providers::chat::openai_compat::OpenAiWire;
use providers::chat::remote::RemoteChat;
use providers::chat::{
    ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatRole, FinishReason, ToolSpec, complete,
};
use providers::google::StaticToken;
use providers::retry::RetryPolicy;
use serde_json::{Value, json};

/// What a stub saw.
#[derive(Default)]
struct Seen {
    calls: AtomicUsize,
    bodies: Mutex<Vec<Value>>,
    headers: Mutex<Vec<HeaderMap>>,
    uris: Mutex<Vec<String>>,
}

fn sse(chunks: &[Value], done: bool) -> Response {
    let mut body = String::new();
    for c in chunks {
        body.push_str(&format!("data: {c}\n\n"));
    }
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    ([("content-type", "text/event-stream")], body).into_response()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        backoff: Duration::from_millis(10),
    }
}

fn request_with_tool() -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::new(ChatRole::System, "Be brief."),
            ChatMessage::new(ChatRole::User, "What tea does Alice like?"),
        ],
        tools: vec![ToolSpec {
            name: "memory_search".into(),
            description: "Search memory".into(),
            parameters: json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
        }],
        temperature: Some(0.2),
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn openai_compat_streams_tool_call_deltas_and_retries_a_429() {
    let seen = Arc::new(Seen::default());
    async fn handler(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
        let n = seen.calls.fetch_add(1, Ordering::SeqCst);
        seen.bodies
            .lock()
            .push(serde_json::from_slice(&body).unwrap());
        seen.headers.lock().push(headers);
        if n == 0 {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                r#"{"error":{"message":"slow down"}}"#,
            )
                .into_response();
        }
        sse(
            &[
                json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"memory_search","arguments":""}}]},"finish_reason":null}]}),
                json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"query\": \"Ali"}}]},"finish_reason":null}]}),
                json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ce tea\"}"}}]},"finish_reason":null}]}),
                json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}),
                json!({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":42,"completion_tokens":9,"total_tokens":51}}),
            ],
            true,
        )
    }
    let url = test_support::serve_stub(
        Router::new()
            .route("/v1/chat/completions", post(handler))
            .with_state(Arc::clone(&seen)),
    )
    .await;
    let model = RemoteChat::new(
        OpenAiWire::new(&format!("{url}/v1"), "gpt-test", Some("sk-test".into())),
        "openai_compat:gpt-test".into(),
        Duration::from_secs(5),
        policy(),
    )
    .unwrap();
    let mut deltas = 0;
    let answer = complete(&model, &request_with_tool(), |e| {
        if matches!(e, ChatEvent::ToolCallDelta { .. }) {
            deltas += 1;
        }
    })
    .await
    .unwrap();
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        2,
        "the 429 was retried once"
    );
    assert_eq!(deltas, 3, "tool-call pieces stream as they come");
    assert_eq!(answer.finish, FinishReason::ToolCalls);
    assert_eq!(answer.tool_calls.len(), 1);
    assert_eq!(answer.tool_calls[0].id, "call_abc");
    assert_eq!(answer.tool_calls[0].name, "memory_search");
    let args: Value = serde_json::from_str(&answer.tool_calls[0].arguments).unwrap();
    assert_eq!(args["query"], "Alice tea");
    assert_eq!(
        (answer.usage.input_tokens, answer.usage.output_tokens),
        (42, 9)
    );
    let body = &seen.bodies.lock()[1];
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "memory_search");
    assert!((body["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    assert_eq!(seen.headers.lock()[1]["authorization"], "Bearer sk-test");
}

#[tokio::test]
async fn openai_compat_streams_text_and_asks_for_a_schema() {
    let seen = Arc::new(Seen::default());
    async fn handler(State(seen): State<Arc<Seen>>, body: Bytes) -> Response {
        seen.bodies
            .lock()
            .push(serde_json::from_slice(&body).unwrap());
        sse(
            &[
                json!({"choices":[{"index":0,"delta":{"role":"assistant","content":"{\"route\":"},"finish_reason":null}]}),
                json!({"choices":[{"index":0,"delta":{"content":" \"tea\"}"},"finish_reason":"stop"}]}),
            ],
            true,
        )
    }
    let url = test_support::serve_stub(
        Router::new()
            .route("/v1/chat/completions", post(handler))
            .with_state(Arc::clone(&seen)),
    )
    .await;
    let model = RemoteChat::new(
        OpenAiWire::new(&format!("{url}/v1"), "m", None),
        "openai_compat:m".into(),
        Duration::from_secs(5),
        policy(),
    )
    .unwrap();
    let request = ChatRequest {
        messages: vec![ChatMessage::new(ChatRole::User, "route me")],
        response_schema: Some(
            json!({"type": "object", "properties": {"route": {"type": "string"}}}),
        ),
        ..ChatRequest::default()
    };
    let mut texts = Vec::new();
    let answer = complete(&model, &request, |e| {
        if let ChatEvent::TextDelta(t) = e {
            texts.push(t.clone());
        }
    })
    .await
    .unwrap();
    assert_eq!(texts.len(), 2);
    assert_eq!(answer.text, r#"{"route": "tea"}"#);
    assert_eq!(answer.finish, FinishReason::Stop);
    let body = &seen.bodies.lock()[0];
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["properties"]["route"]["type"],
        "string"
    );
    assert!(body.get("tools").is_none());
}

#[tokio::test]
async fn a_400_is_not_retried_and_says_why() {
    let seen = Arc::new(Seen::default());
    async fn handler(State(seen): State<Arc<Seen>>) -> Response {
        seen.calls.fetch_add(1, Ordering::SeqCst);
        (
            StatusCode::BAD_REQUEST,
            r#"{"error":{"message":"model not found"}}"#,
        )
            .into_response()
    }
    let url = test_support::serve_stub(
        Router::new()
            .route("/v1/chat/completions", post(handler))
            .with_state(Arc::clone(&seen)),
    )
    .await;
    let model = RemoteChat::new(
        OpenAiWire::new(&format!("{url}/v1"), "m", None),
        "x".into(),
        Duration::from_secs(5),
        policy(),
    )
    .unwrap();
    let err = complete(&model, &request_with_tool(), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, providers::ProviderError::Provider(ref m) if m.contains("model not found")),
        "{err}"
    );
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
}

async fn gemini_handler(
    State(seen): State<Arc<Seen>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    seen.calls.fetch_add(1, Ordering::SeqCst);
    seen.uris.lock().push(uri.to_string());
    seen.headers.lock().push(headers);
    seen.bodies
        .lock()
        .push(serde_json::from_slice(&body).unwrap());
    sse(
        &[
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":"Let me "}]}}],"modelVersion":"gemini-2.5-flash"}),
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":"check."},{"functionCall":{"name":"memory_search","args":{"query":"Alice tea"}}}]}}]}),
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":31,"candidatesTokenCount":12,"totalTokenCount":43}}),
        ],
        false,
    )
}

fn check_gemini_answer(answer: &providers::chat::ChatResponse) {
    assert_eq!(answer.text, "Let me check.");
    assert_eq!(answer.tool_calls.len(), 1);
    assert_eq!(answer.tool_calls[0].name, "memory_search");
    let args: Value = serde_json::from_str(&answer.tool_calls[0].arguments).unwrap();
    assert_eq!(args["query"], "Alice tea");
    assert_eq!(answer.finish, FinishReason::ToolCalls);
    assert_eq!(
        (answer.usage.input_tokens, answer.usage.output_tokens),
        (31, 12)
    );
}

#[tokio::test]
async fn vertex_streams_function_calls_and_usage_with_a_bearer_token() {
    let seen = Arc::new(Seen::default());
    let url = test_support::serve_stub(
        Router::new()
            .route(
                "/v1/projects/proj-1/locations/europe-west4/publishers/google/models/gemini-2.5-flash:streamGenerateContent",
                post(gemini_handler),
            )
            .with_state(Arc::clone(&seen)),
    )
    .await;
    let wire = GeminiWire::vertex(
        &url,
        "proj-1",
        "europe-west4",
        "gemini-2.5-flash",
        Arc::new(StaticToken("ya29.test".into())),
    );
    let model = RemoteChat::new(
        wire,
        "vertex:gemini-2.5-flash".into(),
        Duration::from_secs(5),
        policy(),
    )
    .unwrap();
    assert_eq!(model.id(), "vertex:gemini-2.5-flash");
    let answer = complete(&model, &request_with_tool(), |_| {})
        .await
        .unwrap();
    check_gemini_answer(&answer);
    assert!(seen.uris.lock()[0].ends_with(":streamGenerateContent?alt=sse"));
    assert_eq!(seen.headers.lock()[0]["authorization"], "Bearer ya29.test");
    let body = &seen.bodies.lock()[0];
    assert_eq!(body["systemInstruction"]["parts"][0]["text"], "Be brief.");
    assert_eq!(body["contents"][0]["role"], "user");
    assert_eq!(
        body["tools"][0]["functionDeclarations"][0]["name"],
        "memory_search"
    );
    assert!((body["generationConfig"]["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
}

#[tokio::test]
async fn the_gemini_api_takes_an_api_key_header() {
    let seen = Arc::new(Seen::default());
    let url = test_support::serve_stub(
        Router::new()
            .route(
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                post(gemini_handler),
            )
            .with_state(Arc::clone(&seen)),
    )
    .await;
    let model = RemoteChat::new(
        GeminiWire::api(&url, "gemini-2.5-flash", "AIza-test".into()),
        "gemini:gemini-2.5-flash".into(),
        Duration::from_secs(5),
        policy(),
    )
    .unwrap();
    let answer = complete(&model, &request_with_tool(), |_| {})
        .await
        .unwrap();
    check_gemini_answer(&answer);
    let headers = &seen.headers.lock()[0];
    assert_eq!(headers["x-goog-api-key"], "AIza-test");
    assert!(headers.get("authorization").is_none());
}
