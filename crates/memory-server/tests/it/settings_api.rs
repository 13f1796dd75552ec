//! Namespace search settings changed through the API: admins only, checked
//! field by field, a new template re-indexing the stored memories in the
//! background with its progress shown, a new analysis re-analyzing the
//! keyword index at once, kept across a restart, and seen by every instance.

use memory_client::{
    ClientError, MemoryClient, NamespaceSettings, NewMemory, ReindexState, SearchMode,
    SearchRequest, SettingsChange,
};
use serde_json::{Map, Value, json};

use crate::support::{
    Server, auth_keys, config_toml, eventually, free_port, two_servers_on_one_redis,
};

fn keys() -> String {
    auth_keys(&[
        ("admin", "k-admin", "admin", &["team", "other"], None),
        ("a1", "k-a1", "write", &["team"], Some("a1")),
        ("reader", "k-reader", "read", &["team"], None),
        ("outsider", "k-outsider", "admin", &["elsewhere"], None),
    ])
}

/// A server whose configured template is `plain`, so that what the API
/// changes (a speaker made searchable) is not already the default's doing.
fn start(dir: &std::path::Path) -> Server {
    let extra = format!("{}\n[search]\ntemplate = \"plain\"\n", keys());
    Server::start(
        dir,
        &config_toml(free_port(), &dir.join("data"), None, &extra),
    )
}

/// A turn by `speaker` whose text does not name the speaker.
fn turn(ns: &str, speaker: &str, text: &str) -> NewMemory {
    let metadata: Map<String, Value> = [("speaker".to_owned(), json!(speaker))]
        .into_iter()
        .collect();
    NewMemory {
        namespace: ns.into(),
        text: text.into(),
        metadata,
        ..NewMemory::default()
    }
}

/// The texts a keyword search for `query` in `ns` finds.
async fn keyword(c: &MemoryClient, ns: &str, query: &str) -> Vec<String> {
    let r = c
        .search(&SearchRequest {
            namespace: ns.into(),
            query: Some(query.into()),
            mode: Some(SearchMode::Keyword),
            top_k: Some(50),
            ..SearchRequest::default()
        })
        .await
        .unwrap();
    r.results.into_iter().map(|h| h.memory.text).collect()
}

fn status<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api {
            status, message, ..
        }) => (status, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Polls `ns`'s settings until its re-index is done (or fails the test).
async fn reindexed(c: &MemoryClient, ns: &str) -> NamespaceSettings {
    eventually("the re-index finishes", || async {
        let s = c.settings(ns).await.unwrap();
        match s.reindex.as_ref().map(|r| r.state) {
            Some(ReindexState::Failed) => panic!("re-index failed: {s:?}"),
            Some(ReindexState::Done) => Some(s),
            _ => None,
        }
    })
    .await
}

#[tokio::test]
async fn a_new_template_re_indexes_the_namespace_in_the_background_and_a_reset_undoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let admin = server.client().with_key("k-admin");
    let a1 = server.client().with_key("k-a1");
    for (speaker, text) in [
        ("Melanie", "I painted a sunrise over the lake."),
        ("Caroline", "The adoption agency called back today."),
        ("Melanie", "My kids loved the camping trip."),
    ] {
        a1.create(&turn("team", speaker, text)).await.unwrap();
    }
    admin
        .create(&turn("other", "Melanie", "Another namespace's turn."))
        .await
        .unwrap();
    assert!(keyword(&a1, "team", "Melanie").await.is_empty());

    let set = admin
        .set_settings(
            "team",
            &SettingsChange {
                template: Some("chat".into()),
                alpha: Some(0.8),
                ..SettingsChange::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(set.source, "api");
    assert_eq!(set.template, "chat");
    assert!((set.alpha - 0.8).abs() < 1e-6);
    assert_eq!(
        set.set.as_ref().and_then(|s| s.template.as_deref()),
        Some("chat")
    );
    let first = set.reindex.expect("a template change starts a re-index");
    assert_eq!(first.total, 3, "the namespace's memories only");
    assert_eq!(first.template, set.template_expanded);

    let done = reindexed(&a1, "team").await;
    let progress = done.reindex.unwrap();
    assert_eq!((progress.done, progress.rewritten), (3, 3), "{progress:?}");
    // The speaker is now part of what is indexed, in this namespace only.
    let mut found = keyword(&a1, "team", "Melanie").await;
    found.sort();
    assert_eq!(
        found,
        [
            "I painted a sunrise over the lake.",
            "My kids loved the camping trip."
        ]
    );
    assert!(keyword(&admin, "other", "Melanie").await.is_empty());
    // New memories are written with the new template at once.
    a1.create(&turn("team", "Caroline", "We went to the pride parade."))
        .await
        .unwrap();
    assert_eq!(keyword(&a1, "team", "Caroline").await.len(), 2);

    let reset = admin.reset_settings("team").await.unwrap();
    assert_eq!((reset.source.as_str(), reset.set), ("default", None));
    assert_eq!(reset.template, "plain");
    assert!((reset.alpha - 0.5).abs() < 1e-6);
    let done = reindexed(&a1, "team").await;
    assert_eq!(done.reindex.unwrap().rewritten, 4);
    assert!(keyword(&a1, "team", "Melanie").await.is_empty());
    assert_eq!(keyword(&a1, "team", "sunrise").await.len(), 1);
}

#[tokio::test]
async fn a_new_analysis_applies_at_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let unstemmed = SettingsChange {
        stemming: Some(false),
        ..SettingsChange::default()
    };
    {
        let server = start(dir.path());
        let admin = server.client().with_key("k-admin");
        for ns in ["team", "other"] {
            admin
                .create(&turn(ns, "Ann", "The dogs were running."))
                .await
                .unwrap();
        }
        assert_eq!(keyword(&admin, "team", "run").await.len(), 1);
        let set = admin.set_settings("team", &unstemmed).await.unwrap();
        assert!(!set.stemming);
        assert!(set.reindex.is_none(), "no template change, no re-index");
        assert!(keyword(&admin, "team", "run").await.is_empty());
        assert_eq!(keyword(&admin, "team", "running").await.len(), 1);
        assert_eq!(
            keyword(&admin, "other", "run").await.len(),
            1,
            "another namespace keeps its analysis"
        );
    }
    let server = start(dir.path());
    let admin = server.client().with_key("k-admin");
    let s = admin.settings("team").await.unwrap();
    assert_eq!((s.source.as_str(), s.stemming), ("api", false));
    assert!(keyword(&admin, "team", "run").await.is_empty());
    assert_eq!(keyword(&admin, "team", "running").await.len(), 1);
    admin.reset_settings("team").await.unwrap();
    assert_eq!(keyword(&admin, "team", "run").await.len(), 1);
}

#[tokio::test]
async fn only_admins_change_settings_and_bad_ones_are_400s_that_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let as_key = |k: &str| server.client().with_key(k);
    let admin = as_key("k-admin");
    let chat = SettingsChange {
        template: Some("chat".into()),
        ..SettingsChange::default()
    };
    for k in ["k-a1", "k-reader", "k-outsider"] {
        let (s, _) = status(as_key(k).set_settings("team", &chat).await);
        assert_eq!(s, 403, "{k}");
        let (s, _) = status(as_key(k).reset_settings("team").await);
        assert_eq!(s, 403, "{k}");
    }
    let (s, _) = status(as_key("k-outsider").settings("team").await);
    assert_eq!(s, 403, "another tenant cannot read them");

    let http = reqwest::Client::new();
    for (body, field) in [
        (json!({"alpha": 1.5}), "alpha"),
        (json!({"rrf_k": 0}), "rrf_k"),
        (json!({"bm25_k1": 7}), "bm25_k1"),
        (json!({"language": "klingon"}), "language"),
        (json!({"template": "{speaker}: {text}"}), "template"),
        (json!({"template": "no text placeholder"}), "template"),
        (json!({"mode": "psychic"}), "mode"),
        (json!({"alpah": 0.5}), "alpah"),
    ] {
        let r = http
            .put(format!("{}/v1/namespaces/team/settings", server.url))
            .bearer_auth("k-admin")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(field), "{body} → {text}");
    }
    let (s, _) = status(admin.set_settings("bad namespace!", &chat).await);
    assert_eq!(s, 400);
    let now = as_key("k-reader").settings("team").await.unwrap();
    assert_eq!(
        (now.source.as_str(), now.template.as_str()),
        ("default", "plain"),
        "refused changes change nothing"
    );
}

#[tokio::test]
async fn another_instance_applies_a_change_within_its_poll() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, one, two) = two_servers_on_one_redis(dir.path(), &keys());
    let admin_one = one.client().with_key("k-admin");
    let admin_two = two.client().with_key("k-admin");
    admin_two
        .create(&turn("team", "Ann", "The dogs were running."))
        .await
        .unwrap();
    admin_one
        .set_settings(
            "team",
            &SettingsChange {
                stemming: Some(false),
                template: Some("chat".into()),
                ..SettingsChange::default()
            },
        )
        .await
        .unwrap();
    let s = eventually("instance two applies the change", || async {
        let s = admin_two.settings("team").await.unwrap();
        (s.source == "api").then_some(s)
    })
    .await;
    assert_eq!(s.template, "chat");
    assert!(!s.stemming);
    reindexed(&admin_two, "team").await;
    // Instance two analyzes without stemming now, and finds the speaker the
    // re-index on instance one wrote into the indexed text.
    eventually("instance two serves the new settings", || async {
        let unstemmed = keyword(&admin_two, "team", "run").await.is_empty();
        (unstemmed && keyword(&admin_two, "team", "Ann").await.len() == 1).then_some(())
    })
    .await;
    admin_two
        .create(&turn("team", "Bob", "Walking home."))
        .await
        .unwrap();
    assert_eq!(keyword(&admin_two, "team", "Bob").await.len(), 1);
}

/// A stored setting this instance cannot apply (as one written by a newer
/// release might be) leaves the configured settings in force and is warned
/// about once, not at every poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_setting_this_instance_refuses_is_warned_about_once() {
    use vector_index::store::{Cursor, EmbeddedStore, Expect, Store};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let toml = config_toml(free_port(), &data, None, "");
    let server = Server::start(dir.path(), &toml);
    let chat = SettingsChange {
        template: Some("chat".into()),
        ..SettingsChange::default()
    };
    server.client().set_settings("conv", &chat).await.unwrap();
    assert!(server.terminate().success());
    {
        // The record rewritten with a template this release cannot parse.
        let store = EmbeddedStore::open(data.join("namespace-settings.redb")).unwrap();
        let page = store.scan(Cursor::default(), 100).await.unwrap();
        let record = page
            .records
            .into_iter()
            .find(|r| r.payload.attributes.iter().any(|a| a == "settings"))
            .expect("the settings record");
        let mut payload = record.payload;
        payload.attributes.retain(|a| !a.starts_with("hash:"));
        payload.attributes.push("hash:from-a-newer-release".into());
        let document = br#"{"template": "{text:shouted}"}"#;
        store
            .put_document(record.id, &[], &payload, document, Expect::Any)
            .await
            .unwrap();
    }

    let server = Server::start_logging(dir.path(), &toml);
    let now = server.client().settings("conv").await.unwrap();
    assert_ne!(now.source, "api", "{now:?}");
    assert_ne!(now.template, "chat", "{now:?}");
    // Several polls (one a second) go by.
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    let stderr = server.stop_logs();
    assert_eq!(
        stderr.matches("settings not applied").count(),
        1,
        "one warning for one stored version:\n{stderr}"
    );
}
