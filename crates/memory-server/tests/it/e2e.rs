//! End to end: the real binary, driven through `memory-client`, on the embedded
//! store and on a Redis the test starts; two servers sharing one Redis.

use std::time::{Duration, Instant};

use crate::support::{Server, config_toml, free_port, two_servers_on_one_redis};
use memory_client::{
    BulkDelete, Kind, ListMemories, MemoryClient, MemoryFilter, MemoryPatch, NewMemory, Recency,
    SearchMode, SearchRequest, Visibility,
};
use serde_json::json;

fn memory(ns: &str, text: &str) -> NewMemory {
    NewMemory {
        namespace: ns.into(),
        text: text.into(),
        ..NewMemory::default()
    }
}

fn search(ns: &str, query: &str) -> SearchRequest {
    SearchRequest {
        namespace: ns.into(),
        query: Some(query.into()),
        ..SearchRequest::default()
    }
}

/// Every endpoint once, checking what each returns and what it changed.
async fn every_endpoint(c: &MemoryClient) {
    let ns = "e2e";
    // Create: new, then the same memory again (text, user, author, session,
    // metadata) is the same memory, flagged.
    let tea_input = NewMemory {
        user_id: Some("alice".into()),
        agent_id: Some("planner".into()),
        tags: vec!["prefs".into(), "drinks".into()],
        metadata: serde_json::from_value(json!({"source": "chat", "turn": 3})).unwrap(),
        ..memory(ns, "Alice prefers green tea in the morning")
    };
    let tea = c.create(&tea_input).await.unwrap();
    assert!(!tea.duplicate && !tea.replayed);
    assert_eq!(tea.memory.embedding_model, "builtin-hash-v1-384");
    assert_eq!(tea.memory.kind, Kind::Semantic);
    let again = c
        .create(&NewMemory {
            tags: Vec::new(),
            ..tea_input.clone()
        })
        .await
        .unwrap();
    assert!(again.duplicate, "tags do not tell two memories apart");
    assert_eq!(again.memory.id, tea.memory.id);

    // Idempotency: a retry with the same key returns the first memory.
    let first = c
        .create(&NewMemory {
            idempotency_key: Some("req-1".into()),
            ..memory(ns, "The deploy to staging failed at 14:02")
        })
        .await
        .unwrap();
    let retry = c
        .create(&NewMemory {
            idempotency_key: Some("req-1".into()),
            ..memory(ns, "The deploy to staging failed at 14:02 (retry)")
        })
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.memory.id, first.memory.id);

    // Batch.
    let batch = c
        .create_many(vec![
            NewMemory {
                kind: Kind::Episodic,
                session_id: Some("s1".into()),
                tags: vec!["ops".into()],
                ..memory(ns, "Bob rotated the database password on Monday")
            },
            NewMemory {
                kind: Kind::Procedural,
                tags: vec!["ops".into(), "runbook".into()],
                ..memory(
                    ns,
                    "To roll back, run deploy/rollback.sh with the environment",
                )
            },
            // The same words in the same session: a repeat.
            NewMemory {
                session_id: Some("s1".into()),
                ..memory(ns, "Bob rotated the database password on Monday")
            },
        ])
        .await
        .unwrap();
    assert_eq!(batch.memories.len(), 3);
    assert!(!batch.memories[0].duplicate && !batch.memories[1].duplicate);
    assert!(batch.memories[2].duplicate, "a repeat within the batch");
    assert_eq!(batch.memories[2].memory.id, batch.memories[0].memory.id);

    // Get, and read-your-writes through search at once.
    let got = c.get(tea.memory.id).await.unwrap();
    assert_eq!(got, tea.memory);
    let found = c
        .search(&search(ns, "what does alice drink, green tea?"))
        .await
        .unwrap();
    assert_eq!(found.results[0].memory.id, tea.memory.id);
    assert!(found.results[0].score > 0.0 && found.took_ms >= 0.0);
    assert_eq!(found.plan, "exact");

    // Search filters: tags, kind, session, metadata, time, min_score, recency.
    // The filter decides even where the text matches only what it leaves out
    // (`min_score` 0 keeps results of relevance 0).
    let ops = c
        .search(&SearchRequest {
            filter: MemoryFilter {
                tags_all: vec!["ops".into(), "runbook".into()],
                ..MemoryFilter::default()
            },
            min_score: Some(0.0),
            ..search(ns, "password")
        })
        .await
        .unwrap();
    assert_eq!(ops.results.len(), 1);
    assert_eq!(ops.results[0].memory.id, batch.memories[1].memory.id);
    let by_meta = c
        .search(&SearchRequest {
            filter: MemoryFilter {
                metadata: serde_json::from_value(json!({"source": "chat"})).unwrap(),
                kind: Some(Kind::Semantic),
                user_id: Some("alice".into()),
                ..MemoryFilter::default()
            },
            min_score: Some(0.0),
            ..search(ns, "anything at all")
        })
        .await
        .unwrap();
    assert_eq!(by_meta.results.len(), 1);
    let none = c
        .search(&SearchRequest {
            filter: MemoryFilter {
                created_before: Some(time::OffsetDateTime::UNIX_EPOCH),
                ..MemoryFilter::default()
            },
            ..search(ns, "tea")
        })
        .await
        .unwrap();
    assert!(none.results.is_empty());
    let strict = c
        .search(&SearchRequest {
            min_score: Some(0.99),
            ..search(ns, "tea")
        })
        .await
        .unwrap();
    assert!(strict.results.iter().all(|r| r.score >= 0.99));
    let recent = c
        .search(&SearchRequest {
            recency: Some(Recency {
                half_life_hours: 1.0,
                weight: 0.5,
            }),
            mode: Some(SearchMode::Vector),
            ..search(ns, "tea")
        })
        .await
        .unwrap();
    let r = &recent.results[0];
    assert!(
        r.recency.unwrap() > 0.9,
        "just written, so recency is near 1"
    );
    assert!((r.score - (0.5 * r.similarity.unwrap() + 0.5 * r.recency.unwrap())).abs() < 1e-3);

    // Update with If-Match; a stale version is a 412 and changes nothing.
    let v1 = tea.memory.version;
    let updated = c
        .update(
            tea.memory.id,
            &MemoryPatch {
                text: Some("Alice now prefers oolong tea".into()),
                tags: Some(vec!["prefs".into()]),
                ..MemoryPatch::default()
            },
            Some(v1),
        )
        .await
        .unwrap();
    assert!(updated.version > v1);
    assert_eq!(updated.text, "Alice now prefers oolong tea");
    assert_eq!(updated.created_at, tea.memory.created_at);
    let stale = c
        .update(
            tea.memory.id,
            &MemoryPatch {
                text: Some("lost update".into()),
                ..MemoryPatch::default()
            },
            Some(v1),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.status(), Some(412));
    assert_eq!(c.get(tea.memory.id).await.unwrap(), updated);
    // Re-embedded: the new text is what search finds.
    let oolong = c.search(&search(ns, "oolong")).await.unwrap();
    assert_eq!(oolong.results[0].memory.id, tea.memory.id);

    // History: newest first, the original text kept.
    let h = c.history(tea.memory.id).await.unwrap();
    assert_eq!(h.revisions.len(), 2);
    assert_eq!(h.revisions[0].version, updated.version);
    assert_eq!(
        h.revisions[1].text,
        "Alice prefers green tea in the morning"
    );

    // List with a cursor: pages of 2 cover every memory exactly once, newest first.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = c
            .list(&ListMemories {
                namespace: ns.into(),
                limit: Some(2),
                cursor: cursor.clone(),
                ..ListMemories::default()
            })
            .await
            .unwrap();
        assert!(page.memories.len() <= 2);
        seen.extend(page.memories.iter().map(|m| m.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "tea, deploy, password, rollback");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");
    let ops_page = c
        .list(&ListMemories {
            namespace: ns.into(),
            tags_any: Some("ops,nothing".into()),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    assert_eq!(ops_page.memories.len(), 2);

    // Bulk delete: a dry run counts, the real one deletes, only what matched.
    let filter = MemoryFilter {
        tags_any: vec!["ops".into()],
        ..MemoryFilter::default()
    };
    let dry = c
        .bulk_delete(&BulkDelete {
            namespace: ns.into(),
            filter: filter.clone(),
            dry_run: true,
            as_agent: None,
        })
        .await
        .unwrap();
    assert_eq!((dry.matched, dry.deleted), (2, 0));
    let done = c
        .bulk_delete(&BulkDelete {
            namespace: ns.into(),
            filter,
            dry_run: false,
            as_agent: None,
        })
        .await
        .unwrap();
    assert_eq!((done.matched, done.deleted), (2, 2));
    let err = c.get(batch.memories[0].memory.id).await.unwrap_err();
    assert_eq!(err.status(), Some(404));

    // Delete: a stale If-Match is refused; then gone from get, list and search.
    let err = c
        .delete(first.memory.id, Some(first.memory.version + 100))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(412));
    c.delete(first.memory.id, None).await.unwrap();
    assert_eq!(
        c.get(first.memory.id).await.unwrap_err().status(),
        Some(404)
    );
    assert_eq!(
        c.delete(first.memory.id, None).await.unwrap_err().status(),
        Some(404)
    );
    let after = c
        .search(&search(ns, "deploy staging failed"))
        .await
        .unwrap();
    assert!(after.results.iter().all(|r| r.memory.id != first.memory.id));

    // Private memories: visible to their author only.
    let secret = c
        .create(&NewMemory {
            agent_id: Some("planner".into()),
            visibility: Visibility::Private,
            ..memory(ns, "planner's private scratch note about tea")
        })
        .await
        .unwrap();
    let as_other = c
        .search(&SearchRequest {
            as_agent: Some("critic".into()),
            ..search(ns, "private scratch note")
        })
        .await
        .unwrap();
    assert!(
        as_other
            .results
            .iter()
            .all(|r| r.memory.id != secret.memory.id)
    );
    let as_author = c
        .search(&SearchRequest {
            as_agent: Some("planner".into()),
            ..search(ns, "private scratch note")
        })
        .await
        .unwrap();
    assert_eq!(as_author.results[0].memory.id, secret.memory.id);
    assert_eq!(
        c.get(secret.memory.id).await.unwrap_err().status(),
        Some(404)
    );
    let planner = c.clone().as_agent("planner");
    assert_eq!(
        planner.get(secret.memory.id).await.unwrap().id,
        secret.memory.id
    );

    // Expiry: a memory past its expires_at is gone everywhere.
    let soon = c
        .create(&NewMemory {
            expires_at: Some(time::OffsetDateTime::now_utc() + Duration::from_millis(300)),
            ..memory(ns, "ephemeral tea reminder")
        })
        .await
        .unwrap();
    assert_eq!(c.get(soon.memory.id).await.unwrap().id, soon.memory.id);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(c.get(soon.memory.id).await.unwrap_err().status(), Some(404));
    let gone = c
        .search(&search(ns, "ephemeral tea reminder"))
        .await
        .unwrap();
    assert!(gone.results.iter().all(|r| r.memory.id != soon.memory.id));

    assert!(c.ready().await.unwrap());
}

/// A memory found again comes from the embedded store's entry cache; a
/// change to it (here its metadata alone, which leaves the index's vector as
/// it was) shows in the very next search, and a delete removes it.
async fn search_hits_follow_changes_through_the_entry_cache(c: &MemoryClient) {
    let ns = "entry-cache";
    let id = c
        .create(&memory(ns, "decoded memories are kept for the next search"))
        .await
        .unwrap()
        .memory
        .id;
    let shown = || async move {
        c.search(&search(ns, "decoded memories kept"))
            .await
            .unwrap()
            .results
            .into_iter()
            .find(|h| h.memory.id == id)
            .map(|h| h.memory.metadata)
    };
    for round in 1..=3 {
        let metadata = json!({ "round": round }).as_object().unwrap().clone();
        c.update(
            id,
            &MemoryPatch {
                metadata: Some(metadata.clone()),
                ..MemoryPatch::default()
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(shown().await, Some(metadata.clone()), "round {round}");
        assert_eq!(shown().await, Some(metadata), "round {round}, found again");
    }
    c.delete(id, None).await.unwrap();
    assert_eq!(shown().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_on_the_embedded_store_and_data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config_toml(free_port(), &dir.path().join("data"), None, "");
    let server = Server::start(dir.path(), &toml);
    let c = server.client();
    every_endpoint(&c).await;
    search_hits_follow_changes_through_the_entry_cache(&c).await;
    let metrics = server.metrics().await;
    for outcome in ["hit", "miss"] {
        let line = format!("memory_store_entry_cache_lookups_total{{outcome=\"{outcome}\"}} ");
        let n = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("{line} missing from\n{metrics}"));
        assert!(n.trim().parse::<u64>().unwrap() > 0, "{line}{n}");
    }
    for line in [
        "memory_http_requests_total{method=\"POST\",route=\"/v1/memories\",status=\"201\"}",
        "memory_http_requests_total{method=\"GET\",route=\"/v1/memories/{id}\",status=\"404\"}",
        "memory_http_request_duration_seconds_bucket{",
        "memory_store_operation_duration_seconds_count{op=\"put\"}",
        "memory_embed_duration_seconds_count ",
        "memory_index_ready 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("memory_index_memories "))
        .unwrap();
    assert!(count.trim().parse::<u64>().unwrap() >= 2, "{count}");
    for gauge in ["memory_index_keyword_bytes ", "memory_index_graph_bytes "] {
        let bytes = metrics
            .lines()
            .find_map(|l| l.strip_prefix(gauge))
            .unwrap_or_else(|| panic!("{gauge} missing"));
        assert!(bytes.trim().parse::<u64>().unwrap() > 0, "{gauge}{bytes}");
    }
    let before = c
        .list(&ListMemories {
            namespace: "e2e".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    // Export, then import into an empty server: the same memories, ids and times.
    let exported = c.export("e2e", true).await.unwrap();
    assert_eq!(exported.len(), before.memories.len());
    assert!(
        exported
            .iter()
            .all(|m| m.vector.as_ref().is_some_and(|v| v.len() == 384))
    );
    let dir2 = tempfile::tempdir().unwrap();
    let other = Server::start(
        dir2.path(),
        &config_toml(free_port(), &dir2.path().join("data"), None, ""),
    );
    let imported = other.client().import(&exported).await.unwrap();
    assert_eq!(imported.imported, exported.len() as u64);
    let copy = other
        .client()
        .list(&ListMemories {
            namespace: "e2e".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    let strip = |ms: &[memory_client::Memory]| -> Vec<(uuid::Uuid, String, Vec<String>, time::OffsetDateTime)> {
        ms.iter().map(|m| (m.id, m.text.clone(), m.tags.clone(), m.created_at)).collect()
    };
    assert_eq!(strip(&copy.memories), strip(&before.memories));
    // A bad line anywhere rejects the whole import, naming the line.
    let mut bad = exported.clone();
    bad[0].text = String::new();
    let err = other.client().import(&bad).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("line 1"), "{err}");
    drop(other);

    // SIGTERM: a clean exit; the restarted server has the same memories.
    assert!(server.terminate().success());
    let server = Server::start(dir.path(), &toml);
    let after = server
        .client()
        .list(&ListMemories {
            namespace: "e2e".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    assert_eq!(before, after);
    assert!(!after.memories.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_on_redis_and_two_servers_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let (redis, a, b) = two_servers_on_one_redis(dir.path(), "");
    let (ca, cb) = (a.client(), b.client());
    // Readiness says which Redis the server uses (no silent default).
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", a.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["store"]["backend"], "redis");
    assert_eq!(ready["store"]["location"], redis.url().as_str());
    every_endpoint(&ca).await;

    // A memory written through A is found by a search on B.
    let started = Instant::now();
    let m = ca
        .create(&memory("shared", "the quarterly report is due on Friday"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = cb
            .search(&search("shared", "quarterly report due"))
            .await
            .unwrap();
        if r.results
            .first()
            .is_some_and(|h| h.memory.id == m.memory.id)
        {
            break;
        }
        assert!(Instant::now() < deadline, "B never saw A's memory");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("A -> B visible after {:?}", started.elapsed());
    // B reads it directly too, and a delete on B disappears from A's searches.
    assert_eq!(cb.get(m.memory.id).await.unwrap().text, m.memory.text);
    cb.delete(m.memory.id, None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = ca
            .search(&search("shared", "quarterly report due"))
            .await
            .unwrap();
        if r.results.iter().all(|h| h.memory.id != m.memory.id) {
            break;
        }
        assert!(Instant::now() < deadline, "A still finds B's delete");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
