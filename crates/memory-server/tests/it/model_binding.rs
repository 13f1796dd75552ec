//! A namespace is bound to the embedding model of its first write: a server
//! configured with another model gets a 409 `model_mismatch` for it, on
//! every namespace-scoped endpoint, and nothing changes. The default
//! provider, `auto`, does not start on a store of another model at all.

use crate::support::redis_server::RedisServer;
use crate::support::{Server, config_dir, config_toml, free_port, refused_start};
use memory_client::{
    AppendMessages, BulkDelete, ClientError, ListMemories, MemoryClient, MemoryFilter, NewMemory,
    NewMessage, SearchRequest,
};

fn memory(ns: &str, text: &str) -> NewMemory {
    NewMemory {
        namespace: ns.into(),
        text: text.into(),
        ..NewMemory::default()
    }
}

fn search(ns: &str) -> SearchRequest {
    SearchRequest {
        namespace: ns.into(),
        query: Some("green tea".into()),
        ..SearchRequest::default()
    }
}

fn append(ns: &str) -> AppendMessages {
    AppendMessages {
        namespace: ns.into(),
        messages: vec![NewMessage {
            role: "user".into(),
            content: "hello".into(),
            agent_id: None,
        }],
        ..AppendMessages::default()
    }
}

/// The built-in embedder at `dims`, asked for by name (not `auto`).
fn with_dims(dims: usize) -> String {
    format!("[embedder]\nprovider = \"builtin\"\ndims = {dims}\n")
}

/// Asserts `result` is the 409 naming `ns`, its model and the server's.
fn assert_mismatch<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    ns: &str,
    bound: usize,
    server: usize,
) {
    match result {
        Err(ClientError::Api {
            status,
            code,
            message,
            details,
        }) => {
            assert_eq!(
                (status, code.as_str()),
                (409, "model_mismatch"),
                "{message}"
            );
            assert_eq!(details["namespace"], ns);
            assert_eq!(
                details["namespace_model"],
                format!("builtin-hash-v1-{bound}")
            );
            assert_eq!(details["namespace_dims"], bound);
            assert_eq!(details["server_model"], format!("builtin-hash-v1-{server}"));
            assert_eq!(details["server_dims"], server);
            assert!(message.contains("export"), "says what to do: {message}");
        }
        other => panic!("expected a 409 model_mismatch, got {other:?}"),
    }
}

/// Every namespace-scoped endpoint refuses a namespace bound to another model.
async fn every_endpoint_refuses(c: &MemoryClient, ns: &str, bound: usize, server: usize) {
    assert_mismatch(c.create(&memory(ns, "oolong")).await, ns, bound, server);
    assert_mismatch(
        c.create_many(vec![memory("elsewhere", "x"), memory(ns, "y")])
            .await,
        ns,
        bound,
        server,
    );
    assert_mismatch(c.search(&search(ns)).await, ns, bound, server);
    assert_mismatch(
        c.list(&ListMemories {
            namespace: ns.into(),
            ..ListMemories::default()
        })
        .await,
        ns,
        bound,
        server,
    );
    assert_mismatch(
        c.bulk_delete(&BulkDelete {
            namespace: ns.into(),
            filter: MemoryFilter::default(),
            dry_run: true,
            as_agent: None,
        })
        .await,
        ns,
        bound,
        server,
    );
    assert_mismatch(c.export(ns, false).await, ns, bound, server);
    assert_mismatch(
        c.append_messages("s1", &append(ns)).await,
        ns,
        bound,
        server,
    );
    assert_mismatch(c.get_session(ns, "s1").await, ns, bound, server);
    assert_mismatch(c.list_sessions(ns, None).await, ns, bound, server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_another_model_refuses_the_bound_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();

    let a = Server::start(dir.path(), &config_toml(port, &data, None, &with_dims(64)));
    let tea = a
        .client()
        .create(&memory("tea", "Alice likes green tea"))
        .await
        .unwrap();
    a.terminate();

    // `auto` will not run a model the store was not written with.
    let said = refused_start(
        &config_dir(
            dir.path(),
            &config_toml(port, &data, None, "[embedder]\ndims = 32\n"),
        ),
        &[],
    );
    assert!(
        said.contains("builtin-hash-v1-64") && said.contains("set embedder.provider"),
        "{said}"
    );

    let b = Server::start(dir.path(), &config_toml(port, &data, None, &with_dims(32)));
    let c = b.client();
    every_endpoint_refuses(&c, "tea", 64, 32).await;
    // The batch that named "tea" wrote nothing, not even its other entry.
    let elsewhere = c
        .list(&ListMemories {
            namespace: "elsewhere".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    assert!(elsewhere.memories.is_empty());
    // A new namespace binds to this server's model.
    c.create(&memory("coffee", "Bob likes espresso"))
        .await
        .unwrap();
    b.terminate();

    // Back on the first model, "tea" is intact and "coffee" is refused.
    let a = Server::start(dir.path(), &config_toml(port, &data, None, &with_dims(64)));
    let c = a.client();
    let hits = c.search(&search("tea")).await.unwrap().results;
    assert_eq!(hits.first().map(|h| h.memory.id), Some(tea.memory.id));
    assert_mismatch(c.search(&search("coffee")).await, "coffee", 32, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_with_different_models_on_one_redis_share_the_bindings() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let data = dir.path().join("unused");
    let start = |dims| {
        Server::start(
            dir.path(),
            &config_toml(free_port(), &data, Some(&redis.url()), &with_dims(dims)),
        )
    };
    let (a, b) = (start(64), start(48));
    let (ca, cb) = (a.client(), b.client());

    ca.create(&memory("tea", "Alice likes green tea"))
        .await
        .unwrap();
    // B learns A's binding through the change stream (or the store, at worst).
    every_endpoint_refuses(&cb, "tea", 64, 48).await;

    // Both race to bind fresh namespaces: for each, exactly one model wins
    // and the other server is refused.
    for i in 0..8 {
        let ns = format!("race-{i}");
        let (from_a, from_b) = (memory(&ns, "from a"), memory(&ns, "from b"));
        let (ra, rb) = tokio::join!(ca.create(&from_a), cb.create(&from_b));
        match (ra, rb) {
            (Ok(_), Err(e)) => assert_mismatch::<()>(Err(e), &ns, 64, 48),
            (Err(e), Ok(_)) => assert_mismatch::<()>(Err(e), &ns, 48, 64),
            other => panic!("{ns}: expected exactly one winner, got {other:?}"),
        }
    }
}
