//! Data safety against the real binary: a poisoned record is skipped, not a
//! 500 for every list, search and export; exports end with a trailer and
//! refuse before their headers when the store is down; readiness follows
//! the store; imports scan lines in linear time, bound each line, and check
//! an export's trailer.

use std::time::{Duration, Instant};

use memory_client::{ListMemories, NewMemory, SearchRequest};
use serde_json::{Value, json};
use vector_index::store::{EmbeddedStore, Expect, Store};

use crate::support::redis_server::RedisServer;
use crate::support::{Server, config_toml, free_port};

fn memory(text: &str) -> NewMemory {
    NewMemory {
        namespace: "ns".into(),
        text: text.into(),
        ..NewMemory::default()
    }
}

/// The memories collection's file in a server's data directory.
fn memories_file(data: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("memories-") && name.ends_with(".redb")
        })
        .expect("the memories collection file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_is_skipped_logged_and_counted_never_failing_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let toml = config_toml(free_port(), &data, None, "");
    let server = Server::start(dir.path(), &toml);
    let c = server.client();
    let mut ids = Vec::new();
    for text in [
        "alpha deploy notes",
        "beta deploy notes",
        "gamma deploy notes",
    ] {
        ids.push(c.create(&memory(text)).await.unwrap().memory.id);
    }
    assert!(server.terminate().success());

    // Damage one stored document in place: the record is whole (the store
    // reads it) but its document is not a memory any more.
    {
        let store = EmbeddedStore::open(memories_file(&data)).unwrap();
        let record = store.get(ids[1]).await.unwrap().unwrap();
        store
            .put_document(
                ids[1],
                &record.vector,
                &record.payload,
                b"{\"text\": [[[",
                Expect::Any,
            )
            .await
            .unwrap();
    }

    let server = Server::start(dir.path(), &toml);
    let c = server.client();
    let page = c
        .list(&ListMemories {
            namespace: "ns".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    let listed: Vec<_> = page.memories.iter().map(|m| m.id).collect();
    assert_eq!(listed, vec![ids[2], ids[0]], "the other two, newest first");
    let found = c
        .search(&SearchRequest {
            namespace: "ns".into(),
            query: Some("deploy notes".into()),
            ..SearchRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(found.results.len(), 2, "{found:?}");
    // The export is complete and says what it left out.
    let raw = reqwest::get(format!("{}/v1/export?namespace=ns", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let last: Value = serde_json::from_str(raw.trim_end().lines().last().unwrap()).unwrap();
    assert_eq!(
        last,
        json!({"export_complete": {"memories": 2, "skipped_unreadable": 1}})
    );
    assert_eq!(c.export("ns", false).await.unwrap().len(), 2);
    // The damaged one itself is a server-side fault, said as such.
    let err = c.get(ids[1]).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    // Counted for operators (each skip is also logged with the id).
    let metrics = server.metrics().await;
    let skipped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("memory_unreadable_records_total "))
        .expect("the counter")
        .parse()
        .unwrap();
    assert!(
        skipped >= 3.0,
        "list, search and export skipped it: {skipped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_the_server_is_not_ready_and_exports_fail_before_their_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start(dir.path());
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), dir.path(), Some(&redis.url()), ""),
    );
    let c = server.client();
    let kept = c
        .create(&memory("kept across the outage"))
        .await
        .unwrap()
        .memory;
    let readyz = || async {
        let r = reqwest::get(format!("{}/readyz", server.url))
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(readyz().await.0, 200);

    redis.kill();
    // Not ready soon after (the follower's next read fails), with the reason.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body) = readyz().await;
        if status == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "still ready with Redis down: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["ready"], false);
    assert!(body["reason"].as_str().unwrap().contains("store"), "{body}");
    // Reads need the store too: a JSON 503, never a 200 that breaks off.
    let export = reqwest::get(format!("{}/v1/export?namespace=ns", server.url))
        .await
        .unwrap();
    assert_eq!(export.status(), 503);
    let err: Value = export.json().await.unwrap();
    assert_eq!(err["error"]["code"], "unavailable", "{err}");
    assert_eq!(c.get(kept.id).await.unwrap_err().status(), Some(503));

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz().await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.get(kept.id).await.unwrap(), kept);
    assert_eq!(c.export("ns", false).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_bound_each_line_and_check_an_exports_trailer() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(
            free_port(),
            &dir.path().join("data"),
            None,
            "[limits]\nmax_body_bytes = 65536\n",
        ),
    );
    let c = server.client();
    for text in ["one", "two", "three"] {
        c.create(&memory(text)).await.unwrap();
    }
    let http = reqwest::Client::new();
    let export = http
        .get(format!("{}/v1/export?namespace=ns", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = export.lines().collect();
    assert_eq!(lines.len(), 4, "three memories and the trailer: {export}");
    let import = |body: String| {
        let http = http.clone();
        let url = format!("{}/v1/import", server.url);
        async move {
            let r = http.post(url).body(body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // A whole export imports back, its trailer checked and skipped.
    let (status, v) = import(export.clone()).await;
    assert_eq!((status, v["imported"].as_u64()), (200, Some(3)), "{v}");
    // A cut export (a line lost) is refused whole, naming the trailer line.
    let cut = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[3]);
    let (status, v) = import(cut).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["details"]["line"], 3, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cut short"),
        "{v}"
    );
    // Nothing may follow the trailer.
    let (status, v) = import(format!("{export}{}\n", lines[0])).await;
    assert_eq!(
        (status, v["error"]["details"]["line"].as_u64()),
        (400, Some(5)),
        "{v}"
    );

    // One line is at most a request body: a longer one is refused by number,
    // whether it ends in a newline or the body ends first.
    let long = format!(
        "{{\"namespace\":\"ns\",\"text\":\"{}\"}}",
        "x".repeat(70_000)
    );
    for body in [
        format!("{}\n{long}\n", lines[0]),
        format!("{}\n{long}", lines[0]),
    ] {
        let (status, v) = import(body).await;
        assert_eq!(status, 413, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("line 2 "),
            "{v}"
        );
    }
    let all = c
        .list(&ListMemories {
            namespace: "ns".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    assert_eq!(all.memories.len(), 3, "refused imports wrote nothing");
}
