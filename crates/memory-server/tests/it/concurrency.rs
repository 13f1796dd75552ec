//! Concurrent writers: every acknowledged memory is readable and searchable the
//! moment its create returns, and none is lost.

use std::collections::HashSet;

use crate::support::{Server, config_toml, free_port};
use memory_client::{ListMemories, MemoryClient, MemoryFilter, NewMemory, SearchRequest};
use uuid::Uuid;

/// Creates `n` memories with unique tags, checking each at once by get and by search.
async fn write_and_check(c: MemoryClient, ns: &'static str, writer: usize, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let tag = format!("w{writer}-{i}");
        let text = format!(
            "writer {writer} note {i}: the {} is ready",
            ["build", "report", "deploy"][i % 3]
        );
        let m = c
            .create(&NewMemory {
                namespace: ns.into(),
                text: text.clone(),
                tags: vec![tag.clone()],
                ..NewMemory::default()
            })
            .await
            .unwrap()
            .memory;
        assert!(!m.text.is_empty());
        assert_eq!(c.get(m.id).await.unwrap().id, m.id, "readable on return");
        let found = c
            .search(&SearchRequest {
                namespace: ns.into(),
                query: Some(text),
                filter: MemoryFilter {
                    tags_any: vec![tag],
                    ..MemoryFilter::default()
                },
                ..SearchRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(found.results.len(), 1, "searchable on return");
        assert_eq!(found.results[0].memory.id, m.id);
        ids.push(m.id);
    }
    ids
}

async fn all_ids(c: &MemoryClient, ns: &str) -> HashSet<Uuid> {
    let mut out = HashSet::new();
    let mut cursor = None;
    loop {
        let page = c
            .list(&ListMemories {
                namespace: ns.into(),
                limit: Some(1000),
                cursor,
                ..ListMemories::default()
            })
            .await
            .unwrap();
        out.extend(page.memories.iter().map(|m| m.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_then_a_burst_of_ten_thousand_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config_toml(free_port(), &dir.path().join("data"), None, "");
    let server = Server::start(dir.path(), &toml);
    let c = server.client();

    // Eight clients into one new namespace at once.
    let tasks: Vec<_> = (0..8)
        .map(|w| tokio::spawn(write_and_check(c.clone(), "fresh", w, 60)))
        .collect();
    let mut written = HashSet::new();
    for t in tasks {
        written.extend(t.await.unwrap());
    }
    assert_eq!(written.len(), 480);
    assert_eq!(all_ids(&c, "fresh").await, written);

    // A burst of 10,000 creates from 16 concurrent clients.
    let tasks: Vec<_> = (0..16)
        .map(|w| tokio::spawn(write_and_check(c.clone(), "burst", 100 + w, 625)))
        .collect();
    let mut burst = HashSet::new();
    for t in tasks {
        burst.extend(t.await.unwrap());
    }
    assert_eq!(burst.len(), 10_000);
    assert_eq!(all_ids(&c, "burst").await, burst);

    // And after a restart, still all there.
    assert!(server.terminate().success());
    let server = Server::start(dir.path(), &toml);
    assert_eq!(all_ids(&server.client(), "burst").await, burst);
}
