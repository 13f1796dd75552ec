//! The OpenAI-compatible embedder against a loopback stub that speaks the
//! OpenAI `/v1/embeddings` wire format: batching, ordering, cache, retries,
//! errors; then the real server using it end to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{Server, config_toml, create_and_find, free_port, serve_stub};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use memory_client::{ListMemories, NewMemory, SearchRequest};
use parking_lot::Mutex;
use providers::ProviderError;
use providers::embed::{
    BuiltinEmbedder, Embedder, OpenAiEmbedder, OpenAiSettings, Purpose, RemoteSettings,
};
use serde_json::{Value, json};

const DIMS: usize = 64;

/// What the stub does with the next requests.
#[derive(Default)]
struct Stub {
    calls: AtomicUsize,
    batch_sizes: Mutex<Vec<usize>>,
    /// Statuses to answer before answering normally (front first).
    script: Mutex<Vec<u16>>,
    /// Answer this status to every request.
    always: Mutex<Option<u16>>,
    /// Return vectors of this length instead of DIMS.
    wrong_dims: Mutex<Option<usize>>,
}

async fn embeddings(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    stub.calls.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}))).into_response();
    }
    if let Some(code) = *stub.always.lock() {
        return (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"error": {"message": "stub failure"}})),
        )
            .into_response();
    }
    let scripted = {
        let mut s = stub.script.lock();
        (!s.is_empty()).then(|| s.remove(0))
    };
    if let Some(code) = scripted {
        let mut r = (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"error": {"message": "Rate limit reached", "type": "requests"}})),
        )
            .into_response();
        if code == 429 {
            r.headers_mut().insert("retry-after", "0".parse().unwrap());
        }
        return r;
    }
    if body["model"] != "stub-model" || body["encoding_format"] != "float" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "bad request"}})),
        )
            .into_response();
    }
    let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap();
    stub.batch_sizes.lock().push(inputs.len());
    let dims = stub.wrong_dims.lock().unwrap_or(DIMS);
    let e = BuiltinEmbedder::new(dims);
    // Reversed, as the spec allows any order: the client must sort by index.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": e.vector(t)}))
        .collect();
    Json(json!({
        "object": "list",
        "data": data,
        "model": "stub-model",
        "usage": {"prompt_tokens": 1, "total_tokens": 1}
    }))
    .into_response()
}

/// Starts the stub on a free port; returns its base URL (with `/v1`).
async fn start_stub(stub: Arc<Stub>) -> String {
    let app = axum::Router::new()
        .route("/v1/embeddings", axum::routing::post(embeddings))
        .with_state(stub);
    format!("{}/v1", serve_stub(app).await)
}

fn settings(base_url: &str) -> OpenAiSettings {
    OpenAiSettings {
        base_url: base_url.into(),
        model: "stub-model".into(),
        api_key: Some("sk-test".into()),
        send_dimensions: false,
        remote: RemoteSettings {
            dims: DIMS,
            timeout: Duration::from_secs(5),
            max_retries: 3,
            backoff: Duration::from_millis(5),
            batch_size: 96,
            cache_entries: 1000,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_orders_caches_and_retries() {
    let stub = Arc::new(Stub::default());
    let url = start_stub(Arc::clone(&stub)).await;
    let e = OpenAiEmbedder::from_settings(settings(&url)).unwrap();
    assert_eq!(e.model_id(), "openai:stub-model:64");

    // 250 texts, batches of 96: three calls, answers in input order.
    let texts: Vec<String> = (0..250).map(|i| format!("text number {i}")).collect();
    let got = e.embed(&texts, Purpose::Document).await.unwrap();
    let reference = BuiltinEmbedder::new(DIMS);
    for (t, v) in texts.iter().zip(&got) {
        assert_eq!(v, &reference.vector(t));
    }
    assert_eq!(*stub.batch_sizes.lock(), vec![96, 96, 58]);

    // Cached: asking again costs no call; a repeated text inside a batch is sent once.
    let before = stub.calls.load(Ordering::SeqCst);
    e.embed(&texts[..10], Purpose::Document).await.unwrap();
    assert_eq!(stub.calls.load(Ordering::SeqCst), before);
    let twice = vec!["fresh".to_string(), "fresh".to_string()];
    let v = e.embed(&twice, Purpose::Document).await.unwrap();
    assert_eq!(v[0], v[1]);
    assert_eq!(stub.batch_sizes.lock().last(), Some(&1));

    // 429 (Retry-After: 0) then 503: retried, then it succeeds.
    *stub.script.lock() = vec![429, 503];
    let before = stub.calls.load(Ordering::SeqCst);
    e.embed(&["after retries".to_string()], Purpose::Document)
        .await
        .unwrap();
    assert_eq!(stub.calls.load(Ordering::SeqCst) - before, 3);

    // Always 500: unavailable after 1 + max_retries calls.
    *stub.always.lock() = Some(500);
    let before = stub.calls.load(Ordering::SeqCst);
    let err = e
        .embed(&["never".to_string()], Purpose::Document)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err}");
    assert_eq!(stub.calls.load(Ordering::SeqCst) - before, 4);

    // A 400 is not retried and says what the provider said.
    *stub.always.lock() = Some(400);
    let before = stub.calls.load(Ordering::SeqCst);
    let err = e
        .embed(&["bad".to_string()], Purpose::Document)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Provider(ref m) if m.contains("stub failure")),
        "{err}"
    );
    assert_eq!(stub.calls.load(Ordering::SeqCst) - before, 1);
    *stub.always.lock() = None;

    // Wrong dimension from the model: an error, not a wrong vector.
    *stub.wrong_dims.lock() = Some(DIMS + 1);
    let err = e
        .embed(&["wrong size".to_string()], Purpose::Document)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("dimensions"), "{err}");
    *stub.wrong_dims.lock() = None;

    // A wrong key is the provider's 401: not retried.
    let mut bad_key = settings(&url);
    bad_key.api_key = Some("sk-wrong".into());
    let err = OpenAiEmbedder::from_settings(bad_key)
        .unwrap()
        .embed(&["x".to_string()], Purpose::Document)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_embeds_through_the_provider_and_fails_cleanly_without_it() {
    let stub = Arc::new(Stub::default());
    let url = start_stub(Arc::clone(&stub)).await;
    let dir = tempfile::tempdir().unwrap();
    let embedder = format!(
        "[embedder]\nprovider = \"openai\"\nbase_url = \"{url}\"\nmodel = \"stub-model\"\ndims = {DIMS}\napi_key = \"sk-test\"\nmax_retries = 1\nbackoff_ms = 5\n"
    );
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, &embedder),
    );
    let c = server.client();
    let m = create_and_find(&c, "p").await;
    assert_eq!(m.embedding_model, "openai:stub-model:64");

    // Provider down: a clear 503, and nothing is stored.
    *stub.always.lock() = Some(503);
    let err = c
        .create(&NewMemory {
            namespace: "p".into(),
            text: "written while the provider is down".into(),
            ..NewMemory::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    let listed = c
        .list(&ListMemories {
            namespace: "p".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.memories.len(), 1);
    // Searching by an already-cached query text still works.
    assert!(
        c.search(&SearchRequest {
            namespace: "p".into(),
            query: Some("overdue invoice".into()),
            ..SearchRequest::default()
        })
        .await
        .is_ok()
    );
}
