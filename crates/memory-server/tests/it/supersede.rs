//! Superseded memories: kept, frozen, left out of searches by default, shown
//! with `include_superseded`, and `as_of` shows what was believed then.

use std::time::Duration;

use memory_client::{
    ClientError, MemoryClient, MemoryPatch, NewMemory, SearchRequest, Supersede, Visibility,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::{Server, auth_keys, config_toml, free_port};

fn search(query: &str) -> SearchRequest {
    SearchRequest {
        namespace: "team".into(),
        query: Some(query.into()),
        top_k: Some(10),
        ..SearchRequest::default()
    }
}

async fn found(c: &MemoryClient, req: &SearchRequest) -> Vec<Uuid> {
    let r = c.search(req).await.unwrap();
    r.results.iter().map(|h| h.memory.id).collect()
}

fn api_status<T: std::fmt::Debug>(r: Result<T, ClientError>) -> u16 {
    match r {
        Err(ClientError::Api { status, .. }) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_memory_is_kept_frozen_and_hidden_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let keys = auth_keys(&[
        ("w", "kw", "write", &["team"], None),
        ("r", "kr", "read", &["team"], None),
        ("x", "kx", "admin", &["other"], None),
        ("bot", "kbot", "write", &["team"], Some("bot")),
    ]);
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, &keys),
    );
    let c = server.client().with_key("kw");
    let old = c
        .create(&NewMemory {
            namespace: "team".into(),
            text: "Alice lives in Paris".into(),
            user_id: Some("alice".into()),
            tags: vec!["home".into()],
            ..NewMemory::default()
        })
        .await
        .unwrap()
        .memory;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Another tenant, a reader, and a stale version cannot supersede it.
    let req = Supersede {
        text: "Alice lives in Lisbon".into(),
        reason: Some("she moved in November".into()),
        ..Supersede::default()
    };
    let other = server.client().with_key("kx");
    assert_eq!(api_status(other.supersede(old.id, &req).await), 404);
    let reader = server.client().with_key("kr");
    assert_eq!(api_status(reader.supersede(old.id, &req).await), 403);
    let stale = Supersede {
        version: Some(old.version + 7),
        ..req.clone()
    };
    assert_eq!(api_status(c.supersede(old.id, &stale).await), 412);
    let same = Supersede {
        text: old.text.clone(),
        ..Supersede::default()
    };
    assert_eq!(api_status(c.supersede(old.id, &same).await), 400);

    let done = c.supersede(old.id, &req).await.unwrap();
    let (prev, next) = (done.previous, done.successor);
    assert_eq!(prev.id, old.id);
    assert_eq!(prev.superseded_by, Some(next.id));
    assert!(prev.valid_until.is_some());
    assert_eq!(next.user_id.as_deref(), Some("alice"));
    assert_eq!(next.tags, vec!["home".to_owned()]);
    assert_eq!(next.superseded_by, None);

    // Default search: the successor only; include_superseded: both.
    let now = found(&c, &search("where does Alice live")).await;
    assert!(now.contains(&next.id), "{now:?}");
    assert!(
        !now.contains(&old.id),
        "superseded memory returned: {now:?}"
    );
    let all = found(
        &c,
        &SearchRequest {
            include_superseded: true,
            ..search("where does Alice live")
        },
    )
    .await;
    assert!(all.contains(&old.id) && all.contains(&next.id), "{all:?}");

    // As of before the change: the old belief, not the new one.
    let then = found(
        &c,
        &SearchRequest {
            as_of: Some(before),
            ..search("where does Alice live")
        },
    )
    .await;
    assert_eq!(then, vec![old.id]);

    // The old memory is frozen, and its history says why.
    let patch = MemoryPatch {
        text: Some("Alice lives in Rome".into()),
        ..MemoryPatch::default()
    };
    assert_eq!(api_status(c.update(old.id, &patch, None).await), 409);
    assert_eq!(api_status(c.supersede(old.id, &req).await), 409);
    let h = c.history(old.id).await.unwrap();
    let reason = h.revisions[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&next.id.to_string()) && reason.contains("she moved"),
        "{reason}"
    );
    assert_eq!(h.revisions[1].text, "Alice lives in Paris");

    // The same text stored again is a new live memory, not a duplicate of
    // the superseded one.
    let again = c
        .create(&NewMemory {
            namespace: "team".into(),
            text: "Alice lives in Paris".into(),
            user_id: Some("alice".into()),
            ..NewMemory::default()
        })
        .await
        .unwrap();
    assert!(!again.duplicate);
    assert_ne!(again.memory.id, old.id);

    // Another agent's private memory cannot be reached by id.
    let private = server
        .client()
        .with_key("kbot")
        .create(&NewMemory {
            namespace: "team".into(),
            text: "the bot's own note".into(),
            visibility: Visibility::Private,
            ..NewMemory::default()
        })
        .await
        .unwrap()
        .memory;
    let replace = Supersede {
        text: "overwritten".into(),
        ..Supersede::default()
    };
    assert_eq!(api_status(c.supersede(private.id, &replace).await), 404);
}
