//! Namespace memory policies (read by readers, set by admins, shared by
//! every instance) and the near-duplicate check they turn on: a very similar
//! memory in the same scope is reported, not stored, unless the caller
//! insists; another scope's memories are never reported.

use memory_client::{ClientError, MemoryClient, MemoryPolicy, NewMemory, PolicySource};
use serde_json::json;

use crate::support::{
    Server, auth_keys, config_toml, eventually, free_port, two_servers_on_one_redis,
};

fn keys() -> String {
    auth_keys(&[
        ("admin", "k-admin", "admin", &["team"], None),
        ("a1", "k-a1", "write", &["team"], Some("a1")),
        ("a2", "k-a2", "write", &["team"], Some("a2")),
        ("reader", "k-reader", "read", &["team"], None),
        ("other", "k-other", "admin", &["other"], None),
    ])
}

/// A server on an embedded store in `dir`, with `extra` configuration.
fn start(dir: &std::path::Path, extra: &str) -> Server {
    Server::start(
        dir,
        &config_toml(free_port(), &dir.join("data"), None, extra),
    )
}

fn memory(text: &str, user: Option<&str>) -> NewMemory {
    NewMemory {
        namespace: "team".into(),
        text: text.into(),
        user_id: user.map(str::to_owned),
        ..NewMemory::default()
    }
}

fn threshold(t: f32) -> MemoryPolicy {
    MemoryPolicy {
        near_duplicate_threshold: Some(t),
        ..MemoryPolicy::default()
    }
}

fn status<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api {
            status, message, ..
        }) => (status, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn count(c: &MemoryClient) -> usize {
    let page = c
        .list(&memory_client::ListMemories {
            namespace: "team".into(),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    page.memories.len()
}

#[tokio::test]
async fn admins_set_a_namespace_policy_readers_see_it_and_bad_ones_are_400s() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("{}\n[policy]\nnear_duplicate_threshold = 0.99\n", keys());
    let server = start(dir.path(), &extra);
    let as_key = |k: &str| server.client().with_key(k);
    let admin = as_key("k-admin");

    let p = as_key("k-reader").policy("team").await.unwrap();
    assert_eq!(p.source, PolicySource::Config);
    assert_eq!(p.policy.near_duplicate_threshold, Some(0.99));

    let set = admin.set_policy("team", &threshold(0.9)).await.unwrap();
    assert_eq!(set.source, PolicySource::Stored);
    let p = as_key("k-a1").policy("team").await.unwrap();
    assert_eq!(
        (p.source, p.policy.near_duplicate_threshold),
        (PolicySource::Stored, Some(0.9))
    );

    // Not an admin of the namespace: refused, nothing changes.
    for k in ["k-a1", "k-reader", "k-other"] {
        let (s, _) = status(as_key(k).set_policy("team", &threshold(0.1)).await);
        assert_eq!(s, 403, "{k}");
        let (s, _) = status(as_key(k).reset_policy("team").await);
        assert_eq!(s, 403, "{k}");
    }
    let (s, _) = status(as_key("k-other").policy("team").await);
    assert_eq!(s, 403, "another tenant cannot read it");
    assert_eq!(admin.policy("team").await.unwrap().policy, threshold(0.9));

    // Out of range, or a field that does not exist: a 400 that says what to fix.
    for bad in [0.0, -0.5, 1.5] {
        let (s, message) = status(admin.set_policy("team", &threshold(bad)).await);
        assert_eq!(s, 400, "{bad}");
        assert!(message.contains("near_duplicate_threshold"), "{message}");
    }
    let raw = reqwest::Client::new()
        .put(format!("{}/v1/namespaces/team/policy", server.url))
        .bearer_auth("k-admin")
        .json(&json!({"near_duplicate_treshold": 0.9}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body = raw.text().await.unwrap();
    assert!(body.contains("near_duplicate_treshold"), "{body}");
    let (s, _) = status(admin.policy("bad namespace!").await);
    assert_eq!(s, 400);
    assert_eq!(
        admin.policy("team").await.unwrap().policy,
        threshold(0.9),
        "a refused change loses nothing"
    );

    let reset = admin.reset_policy("team").await.unwrap();
    assert_eq!(reset.source, PolicySource::Config);
    assert_eq!(reset.policy.near_duplicate_threshold, Some(0.99));
}

#[test]
fn a_bad_configured_policy_stops_the_server_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config_toml(
        free_port(),
        &dir.path().join("data"),
        None,
        "[policy]\nnear_duplicate_threshold = 2.0\n",
    );
    let config = crate::support::config_dir(dir.path(), &toml);
    let err = crate::support::refused_start(&config, &[]);
    assert!(
        err.contains("[policy]") && err.contains("near_duplicate_threshold"),
        "{err}"
    );
}

#[tokio::test]
async fn a_near_duplicate_is_reported_not_stored_unless_the_caller_insists() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &keys());
    let admin = server.client().with_key("k-admin");
    let a1 = server.client().with_key("k-a1");
    let first = a1
        .create(&memory(
            "Alice prefers green tea in the morning.",
            Some("alice"),
        ))
        .await
        .unwrap();
    assert!(first.near_duplicate.is_none());

    // Off by default: the near copy is stored.
    let near_text = "Alice prefers green tea in the morning!";
    let off = a1.create(&memory(near_text, Some("alice"))).await.unwrap();
    assert!(off.near_duplicate.is_none() && !off.duplicate);
    a1.delete(off.memory.id, None).await.unwrap();

    admin.set_policy("team", &threshold(0.9)).await.unwrap();
    let before = count(&a1).await;
    let refused = a1.create(&memory(near_text, Some("alice"))).await.unwrap();
    let near = refused.near_duplicate.clone().expect("reported");
    assert_eq!(near.id, first.memory.id);
    assert!(!near.stored);
    assert!(near.similarity >= 0.9, "{near:?}");
    assert_eq!(
        refused.memory.id, first.memory.id,
        "the similar memory comes back"
    );
    assert!(!refused.duplicate);
    assert_eq!(count(&a1).await, before, "nothing was stored");

    let insisted = a1
        .create(&NewMemory {
            allow_near_duplicate: true,
            ..memory(near_text, Some("alice"))
        })
        .await
        .unwrap();
    let near = insisted.near_duplicate.clone().expect("still reported");
    assert!(near.stored);
    assert_eq!(near.id, first.memory.id);
    assert_ne!(insisted.memory.id, first.memory.id);
    assert_eq!(insisted.memory.text, near_text);
    assert_eq!(count(&a1).await, before + 1);
    let metrics = server.metrics().await;
    for line in [
        "memory_near_duplicates_total{outcome=\"refused\"} 1",
        "memory_near_duplicates_total{outcome=\"stored\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // Identical text stays an exact duplicate, as before.
    let exact = a1
        .create(&memory(
            "Alice prefers green tea in the morning.",
            Some("alice"),
        ))
        .await
        .unwrap();
    assert!(exact.duplicate && exact.near_duplicate.is_none());

    // Unrelated text, or the same text about another user: stored.
    let other = a1
        .create(&memory(
            "The release train leaves on Fridays",
            Some("alice"),
        ))
        .await
        .unwrap();
    assert!(other.near_duplicate.is_none());
    let bob = a1
        .create(&memory(
            "Alice prefers green tea in the morning?",
            Some("bob"),
        ))
        .await
        .unwrap();
    assert!(bob.near_duplicate.is_none(), "{bob:?}");
    assert_eq!(bob.memory.user_id.as_deref(), Some("bob"));
}

#[tokio::test]
async fn a_near_duplicate_never_reveals_another_agents_private_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &keys());
    let admin = server.client().with_key("k-admin");
    admin.set_policy("team", &threshold(0.8)).await.unwrap();
    let a1 = server.client().with_key("k-a1");
    let a2 = server.client().with_key("k-a2");
    let secret = a1
        .create(&NewMemory {
            visibility: memory_client::Visibility::Private,
            ..memory("The vault code is 4417 and it opens at dawn.", None)
        })
        .await
        .unwrap();
    // a2 probes with near copies, shared and private: each is stored as its
    // own, and no answer names or quotes a1's memory.
    for visibility in [
        memory_client::Visibility::Shared,
        memory_client::Visibility::Private,
    ] {
        let probe = a2
            .create(&NewMemory {
                visibility,
                ..memory("The vault code is 4417 and it opens at dawn!", None)
            })
            .await
            .unwrap();
        assert!(probe.near_duplicate.is_none(), "{probe:?}");
        assert_ne!(probe.memory.id, secret.memory.id);
        let answer = serde_json::to_string(&probe).unwrap();
        assert!(!answer.contains(&secret.memory.id.to_string()), "{answer}");
    }
    // a1's own private near copy is reported against its own memory.
    let own = a1
        .create(&NewMemory {
            visibility: memory_client::Visibility::Private,
            ..memory("The vault code is 4417 and it opens at dawn?", None)
        })
        .await
        .unwrap();
    assert_eq!(own.near_duplicate.map(|n| n.id), Some(secret.memory.id));
}

#[tokio::test]
async fn a_policy_set_through_one_instance_applies_on_the_other_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, one, two) = two_servers_on_one_redis(dir.path(), &keys());
    let admin_one = one.client().with_key("k-admin");
    let a1_two = two.client().with_key("k-a1");
    a1_two
        .create(&memory("Standup is at 9:30 in room Ada.", None))
        .await
        .unwrap();
    admin_one.set_policy("team", &threshold(0.9)).await.unwrap();
    // The other instance reads the policy from the store's replica it
    // follows; wait for it to arrive, then the check applies there.
    let seen = eventually("the policy reaches instance two", || async {
        let p = a1_two.policy("team").await.unwrap();
        (p.source == PolicySource::Stored).then_some(p)
    })
    .await;
    assert_eq!(seen.policy, threshold(0.9));
    let refused = a1_two
        .create(&memory("Standup is at 9:30 in room Ada!", None))
        .await
        .unwrap();
    assert!(refused.near_duplicate.is_some(), "{refused:?}");
    admin_one.reset_policy("team").await.unwrap();
    let mut stored = false;
    for _ in 0..100 {
        if a1_two.policy("team").await.unwrap().source == PolicySource::Config {
            stored = a1_two
                .create(&memory("Standup is at 9:30 in room Ada?", None))
                .await
                .unwrap()
                .near_duplicate
                .is_none();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(stored, "after the reset the near copy is stored");
}
