//! Tenancy: keys per namespace and role, agent-bound keys, private memories,
//! checked endpoint by endpoint against the real binary.

use crate::support::{Server, auth_keys, config_toml, free_port};
use memory_client::{
    BulkDelete, ClientError, ListMemories, MemoryPatch, NewMemory, SearchRequest, Visibility,
};

/// The keys of these tests.
fn keys() -> String {
    auth_keys(&[
        ("admin-a", "k-admin-a", "admin", &["a"], None),
        ("writer-a", "k-writer-a", "write", &["a"], None),
        ("reader-a", "k-reader-a", "read", &["a"], None),
        ("bot-a", "k-bot-a", "write", &["a"], Some("bot")),
        ("admin-b", "k-admin-b", "admin", &["b"], None),
    ])
}

fn memory(ns: &str, text: &str) -> NewMemory {
    NewMemory {
        namespace: ns.into(),
        text: text.into(),
        ..NewMemory::default()
    }
}

fn search(ns: &str, q: &str) -> SearchRequest {
    SearchRequest {
        namespace: ns.into(),
        query: Some(q.into()),
        ..SearchRequest::default()
    }
}

fn status<T: std::fmt::Debug>(r: Result<T, ClientError>) -> u16 {
    r.unwrap_err().status().expect("an API error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_only_reach_their_namespaces_roles_and_agents() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, &keys()),
    );
    let key = |k: &str| server.client().with_key(k);
    let (admin_a, writer_a, reader_a, bot_a, admin_b) = (
        key("k-admin-a"),
        key("k-writer-a"),
        key("k-reader-a"),
        key("k-bot-a"),
        key("k-admin-b"),
    );

    // 401 without a key or with an unknown one, with a WWW-Authenticate challenge.
    assert_eq!(status(server.client().search(&search("a", "x")).await), 401);
    assert_eq!(status(key("nope").search(&search("a", "x")).await), 401);
    let raw = reqwest::get(format!("{}/v1/memories?namespace=a", server.url))
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
    assert_eq!(raw.headers()["www-authenticate"], "Bearer");

    // B's data, which no key of A may see or change.
    let b = admin_b
        .create(&memory("b", "namespace b's secret plan"))
        .await
        .unwrap()
        .memory;
    for c in [&admin_a, &writer_a, &reader_a, &bot_a] {
        // By id: "not found", so ids of other tenants do not leak.
        assert_eq!(status(c.get(b.id).await), 404);
        assert_eq!(status(c.history(b.id).await), 404);
        assert_eq!(
            status(
                c.update(
                    b.id,
                    &MemoryPatch {
                        text: Some("pwned".into()),
                        ..MemoryPatch::default()
                    },
                    None
                )
                .await
            ),
            404
        );
        assert_eq!(status(c.delete(b.id, None).await), 404);
        // By namespace: forbidden.
        assert_eq!(status(c.search(&search("b", "secret plan")).await), 403);
        assert_eq!(
            status(
                c.list(&ListMemories {
                    namespace: "b".into(),
                    ..ListMemories::default()
                })
                .await
            ),
            403
        );
        assert_eq!(status(c.create(&memory("b", "planted")).await), 403);
        assert_eq!(
            status(
                c.bulk_delete(&BulkDelete {
                    namespace: "b".into(),
                    ..BulkDelete::default()
                })
                .await
            ),
            403
        );
        assert_eq!(status(c.export("b", true).await), 403);
        let mut planted = memory_client::PortableMemory::from(b.clone());
        planted.text = "overwritten by import".into();
        assert_eq!(status(c.import(&[planted]).await), 403);
        assert_eq!(status(c.get_session("b", "any").await), 403);
        assert_eq!(status(c.list_sessions("b", None).await), 403);
    }
    assert_eq!(admin_b.get(b.id).await.unwrap(), b, "B unchanged");
    let b_list = admin_b
        .list(&ListMemories {
            namespace: "b".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    assert_eq!(b_list.memories, vec![b.clone()]);

    // Roles: read cannot write; write cannot bulk delete; admin can.
    let a1 = writer_a
        .create(&memory("a", "team a fact one"))
        .await
        .unwrap()
        .memory;
    assert_eq!(reader_a.get(a1.id).await.unwrap().id, a1.id);
    assert_eq!(
        reader_a
            .search(&search("a", "fact one"))
            .await
            .unwrap()
            .results
            .len(),
        1
    );
    assert_eq!(status(reader_a.create(&memory("a", "nope")).await), 403);
    assert_eq!(
        status(
            reader_a
                .update(
                    a1.id,
                    &MemoryPatch {
                        text: Some("x".into()),
                        ..MemoryPatch::default()
                    },
                    None
                )
                .await
        ),
        403
    );
    assert_eq!(status(reader_a.delete(a1.id, None).await), 403);
    let bulk = BulkDelete {
        namespace: "a".into(),
        dry_run: true,
        ..BulkDelete::default()
    };
    assert_eq!(status(writer_a.bulk_delete(&bulk).await), 403);
    assert_eq!(admin_a.bulk_delete(&bulk).await.unwrap().matched, 1);

    // An agent-bound key writes as its agent whatever the request says.
    let by_bot = bot_a
        .create(&NewMemory {
            agent_id: Some("planner".into()),
            ..memory("a", "bot wrote this")
        })
        .await
        .unwrap()
        .memory;
    assert_eq!(by_bot.agent_id.as_deref(), Some("bot"));

    // Private memories: the planner's stays hidden from the bot even when the
    // bot claims to be the planner; the bot's own stays hidden from others.
    let planners = writer_a
        .create(&NewMemory {
            agent_id: Some("planner".into()),
            visibility: Visibility::Private,
            ..memory("a", "planner private note on pricing")
        })
        .await
        .unwrap()
        .memory;
    let bots = bot_a
        .create(&NewMemory {
            visibility: Visibility::Private,
            ..memory("a", "bot private note on pricing")
        })
        .await
        .unwrap()
        .memory;
    let ids = |r: memory_client::SearchResponse| -> Vec<uuid::Uuid> {
        r.results.into_iter().map(|h| h.memory.id).collect()
    };
    let bot_view = ids(bot_a
        .search(&SearchRequest {
            as_agent: Some("planner".into()),
            ..search("a", "private note on pricing")
        })
        .await
        .unwrap());
    assert!(bot_view.contains(&bots.id) && !bot_view.contains(&planners.id));
    assert_eq!(
        status(bot_a.clone().as_agent("planner").get(planners.id).await),
        404
    );
    let critic_view = ids(writer_a
        .search(&SearchRequest {
            as_agent: Some("critic".into()),
            ..search("a", "private note on pricing")
        })
        .await
        .unwrap());
    assert!(!critic_view.contains(&bots.id) && !critic_view.contains(&planners.id));
    let listed = reader_a
        .list(&ListMemories {
            namespace: "a".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    assert!(
        listed
            .memories
            .iter()
            .all(|m| m.id != bots.id && m.id != planners.id)
    );
    // A read key learns nothing of a private memory it cannot see: changing
    // or deleting it is "not found" (as for an unknown id), never "forbidden".
    let unknown = uuid::Uuid::now_v7();
    for id in [bots.id, planners.id, unknown] {
        let patch = MemoryPatch {
            text: Some("x".into()),
            ..MemoryPatch::default()
        };
        assert_eq!(status(reader_a.update(id, &patch, None).await), 404);
        assert_eq!(status(reader_a.delete(id, None).await), 404);
    }
    // ...while on a memory it can see, the role still decides.
    let shared = writer_a
        .create(&memory("a", "a shared note"))
        .await
        .unwrap()
        .memory;
    assert_eq!(status(reader_a.delete(shared.id, None).await), 403);
    writer_a.delete(shared.id, None).await.unwrap();
    // Agent `*` stands for every agent: no memory may claim it, so no private
    // memory becomes everyone's.
    let star = writer_a
        .create(&NewMemory {
            agent_id: Some("*".into()),
            visibility: Visibility::Private,
            ..memory("a", "private to agent star")
        })
        .await;
    assert_eq!(status(star), 400);
    // Import keeps ids, and ids are global: another tenant importing into its
    // own namespace, or another agent of this tenant, cannot take over a
    // memory by naming its id. Nothing is written.
    let takeover = |ns: &str| memory_client::PortableMemory {
        namespace: ns.into(),
        text: "taken over".into(),
        ..memory_client::PortableMemory::from(planners.clone())
    };
    assert_eq!(status(admin_b.import(&[takeover("b")]).await), 409);
    assert_eq!(status(bot_a.import(&[takeover("a")]).await), 409);
    let mut own = memory_client::PortableMemory::from(bots.clone());
    own.text = "the bot's note, re-imported".into();
    assert_eq!(bot_a.import(&[own]).await.unwrap().imported, 1);
    let planner = writer_a.clone().as_agent("planner");
    assert_eq!(planner.get(planners.id).await.unwrap(), planners);
    // A bulk delete by another agent leaves private memories alone.
    let wiped = admin_a
        .bulk_delete(&BulkDelete {
            namespace: "a".into(),
            ..BulkDelete::default()
        })
        .await
        .unwrap();
    assert_eq!(wiped.deleted, 2, "a1 and the bot's shared memory");
    assert_eq!(bot_a.get(bots.id).await.unwrap().id, bots.id);
    assert_eq!(
        writer_a
            .clone()
            .as_agent("planner")
            .get(planners.id)
            .await
            .unwrap()
            .id,
        planners.id
    );
}

#[test]
fn auth_off_on_a_public_bind_refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("default.toml"),
        "[server]\nhost = \"0.0.0.0\"\nport = 1\n[auth]\nenabled = false\n",
    )
    .unwrap();
    let stderr = crate::support::refused_start(&config, &[]);
    assert!(stderr.contains("auth.enabled is false"), "{stderr}");
    assert!(stderr.contains("loopback"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_readiness_show_only_what_the_key_may_see() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, &keys()),
    );
    let key = |k: &str| server.client().with_key(k);
    let (admin_a, reader_a, bot_a, admin_b) = (
        key("k-admin-a"),
        key("k-reader-a"),
        key("k-bot-a"),
        key("k-admin-b"),
    );
    admin_b
        .create(&memory("b", "namespace b's plan"))
        .await
        .unwrap();
    bot_a
        .create(&NewMemory {
            visibility: Visibility::Private,
            ..memory("a", "the bot's own note")
        })
        .await
        .unwrap();
    let seen = |list: memory_client::NamespaceList| -> Vec<(String, u64)> {
        list.namespaces
            .into_iter()
            .map(|n| (n.namespace, n.memories))
            .collect()
    };
    assert_eq!(seen(admin_b.namespaces().await.unwrap()), [("b".into(), 1)]);
    assert_eq!(seen(bot_a.namespaces().await.unwrap()), [("a".into(), 1)]);
    // Namespace a holds only the bot's private memory: to other agents of
    // tenant A it does not show, and B's namespace never does.
    assert!(seen(reader_a.namespaces().await.unwrap()).is_empty());
    assert!(seen(admin_a.namespaces().await.unwrap()).is_empty());
    assert_eq!(status(server.client().namespaces().await), 401);

    // Readiness: a probe without a key learns only whether the server is ready.
    let readyz = |k: Option<&str>| {
        let mut r = reqwest::Client::new().get(format!("{}/readyz", server.url));
        if let Some(k) = k {
            r = r.bearer_auth(k);
        }
        async move {
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let anonymous = readyz(None).await;
    assert_eq!(anonymous["ready"], true);
    for detail in ["memories", "store", "embedder", "embedding_model"] {
        assert!(
            anonymous.get(detail).is_none(),
            "{detail} shown: {anonymous}"
        );
    }
    let keyed = readyz(Some("k-reader-a")).await;
    assert_eq!(keyed["store"]["backend"], "embedded");
    assert_eq!(keyed["embedder"]["semantic"], false);
    assert!(
        keyed["embedder"]["captures"]
            .as_str()
            .unwrap()
            .contains("not meaning"),
        "{keyed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_memories_do_not_move_anyone_elses_keyword_scores() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, &keys()),
    );
    let bot = server.client().with_key("k-bot-a");
    let planner = server.client().with_key("k-writer-a").as_agent("planner");
    bot.create(&memory("a", "the canary window opens at noon"))
        .await
        .unwrap();
    bot.create(&memory("a", "rollback steps for the release"))
        .await
        .unwrap();
    let score = || async {
        let r = bot
            .search(&SearchRequest {
                mode: Some(memory_client::SearchMode::Keyword),
                ..search("a", "canary window")
            })
            .await
            .unwrap();
        assert_eq!(r.results.len(), 1, "{r:?}");
        r.results[0].keyword_score.expect("a keyword score")
    };
    let before = score().await;
    // Another agent's private memories full of the searched words: the bot
    // cannot see them, so they must not change its scores (which would tell
    // it the words are there).
    for _ in 0..3 {
        planner
            .create(&NewMemory {
                agent_id: Some("planner".into()),
                visibility: Visibility::Private,
                ..memory("a", "canary canary window secret launch")
            })
            .await
            .unwrap();
    }
    assert_eq!(score().await, before);
    // A shared memory with the words is everyone's, and does move them.
    bot.create(&memory("a", "canary dashboards")).await.unwrap();
    let r = bot
        .search(&SearchRequest {
            mode: Some(memory_client::SearchMode::Keyword),
            ..search("a", "canary window")
        })
        .await
        .unwrap();
    let moved = r
        .results
        .iter()
        .find(|h| h.memory.text.contains("noon"))
        .and_then(|h| h.keyword_score)
        .unwrap();
    assert_ne!(moved, before);
}
