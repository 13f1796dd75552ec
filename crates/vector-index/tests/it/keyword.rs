//! Keyword (BM25) search kept in step with the vector index: read-your-writes,
//! updates, deletes, filters, expiry, snapshots, and replication between two
//! instances on a real Redis.

use std::sync::Arc;

use test_support::redis_server::RedisServer;
use test_support::wait_until;
use vector_index::durable::{DurableCollection, now_millis};
use vector_index::store::{EmbeddedStore, Expect, RedisConfig, RedisStore, Store};
use vector_index::{
    AnalyzerSettings, Collection, CollectionConfig, Field, Filter, KeywordQuery, Language, Payload,
    TextConfig, Uuid,
};

const DIM: usize = 4;

fn point(ns: &str, text: &str) -> (Uuid, Vec<f32>, Payload) {
    let mut p = Payload::new(ns);
    p.text = text.to_owned();
    (Uuid::now_v7(), vec![1.0, 0.5, 0.25, 0.125], p)
}

fn ids(c: &Collection, ns: &str, text: &str) -> Vec<Uuid> {
    c.search_keyword(&KeywordQuery::new(ns, text, 10))
        .unwrap()
        .hits
        .iter()
        .map(|h| h.id)
        .collect()
}

#[test]
fn writes_are_searchable_at_once_and_updates_replace_the_text() {
    let c = Collection::new(CollectionConfig::new(DIM)).unwrap();
    let (id, v, p) = point("a", "Booked a flight to Lisbon for the conference");
    c.upsert(id, &v, p.clone()).unwrap();
    assert_eq!(ids(&c, "a", "lisbon"), vec![id]);
    assert_eq!(
        ids(&c, "a", "flights"),
        vec![id],
        "stemmed: flights ~ flight"
    );
    let mut moved = p;
    moved.text = "Moved the trip to Porto".into();
    c.upsert(id, &v, moved).unwrap();
    assert!(ids(&c, "a", "lisbon").is_empty(), "the old text is gone");
    assert_eq!(ids(&c, "a", "porto"), vec![id]);
    assert!(c.delete(id).unwrap());
    assert!(ids(&c, "a", "porto").is_empty());
    assert_eq!(c.stats().lexical_bytes, 0);
}

#[test]
fn namespaces_and_filters_bound_the_answer() {
    let c = Collection::new(CollectionConfig::new(DIM)).unwrap();
    let (a1, v, mut p) = point("a", "alice likes green tea");
    p.user_id = Some("alice".into());
    c.upsert(a1, &v, p).unwrap();
    let (a2, v, mut p) = point("a", "bob likes black tea");
    p.user_id = Some("bob".into());
    c.upsert(a2, &v, p).unwrap();
    let (b1, v, p) = point("b", "tea in another tenant");
    c.upsert(b1, &v, p).unwrap();
    let mut both = ids(&c, "a", "tea");
    both.sort();
    let mut want = vec![a1, a2];
    want.sort();
    assert_eq!(both, want, "never another namespace's memories");
    let only_bob = c
        .search_keyword(
            &KeywordQuery::new("a", "tea", 10).filter(Filter::all().eq(Field::User, "bob")),
        )
        .unwrap();
    assert_eq!(only_bob.hits.len(), 1);
    assert_eq!(only_bob.hits[0].id, a2);
    assert_eq!(only_bob.allowed, 1);
    assert_eq!(ids(&c, "b", "tea"), vec![b1]);
}

#[test]
fn any_query_text_gives_results_or_nothing_never_an_error() {
    let c = Collection::new(CollectionConfig::new(DIM)).unwrap();
    let (id, v, p) = point("a", "The meeting with O'Brien is at 10:30 in room B-12");
    c.upsert(id, &v, p).unwrap();
    for q in [
        "",
        " ",
        "the of",
        "the the meeting",
        "\"",
        "AND OR NOT",
        "*",
        "(",
        "room:",
        "b",
        "?!",
        "🙂",
        "o'brien",
        "\\\\",
        "-- ; DROP TABLE",
    ] {
        let r = c.search_keyword(&KeywordQuery::new("a", q, 5));
        assert!(r.is_ok(), "{q:?}: {r:?}");
    }
    assert_eq!(ids(&c, "a", "the the meeting"), vec![id]);
    assert_eq!(ids(&c, "a", "O'Brien?"), vec![id]);
    assert!(ids(&c, "a", "the of").is_empty());
    assert!(c.search_keyword(&KeywordQuery::new("a", "x", 0)).is_err());
}

#[test]
fn per_namespace_language_settings_apply_to_text_and_queries() {
    let mut config = CollectionConfig::new(DIM);
    config.text = TextConfig {
        default: AnalyzerSettings::default(),
        namespaces: [(
            "de".to_owned(),
            AnalyzerSettings {
                language: Language::German,
                ..AnalyzerSettings::default()
            },
        )]
        .into(),
    };
    let c = Collection::new(config).unwrap();
    let (id, v, p) = point("de", "Die Katzen schlafen im Garten");
    c.upsert(id, &v, p).unwrap();
    assert_eq!(ids(&c, "de", "Katze"), vec![id], "German stemming");
    assert!(ids(&c, "de", "die im").is_empty(), "German stop words");
}

#[test]
fn a_restored_snapshot_answers_keyword_queries_identically() {
    let c = Collection::new(CollectionConfig::new(DIM)).unwrap();
    let words = ["red", "green", "blue", "cyan", "magenta", "yellow"];
    for i in 0..200 {
        let text = format!(
            "{} {} item {i}",
            words[i % words.len()],
            words[(i / 7) % words.len()]
        );
        let (id, v, p) = point(if i % 3 == 0 { "x" } else { "y" }, &text);
        c.upsert(id, &v, p).unwrap();
        if i % 10 == 0 {
            c.delete(id).unwrap();
        }
    }
    let bytes = c.snapshot("meta").unwrap();
    let (restored, _) = Collection::restore(CollectionConfig::new(DIM), &bytes).unwrap();
    for ns in ["x", "y"] {
        for q in ["red", "green blue", "magenta item", "item"] {
            let a = c.search_keyword(&KeywordQuery::new(ns, q, 20)).unwrap();
            let b = restored
                .search_keyword(&KeywordQuery::new(ns, q, 20))
                .unwrap();
            assert_eq!(a.hits, b.hits, "{ns} {q}");
            assert!(!a.hits.is_empty());
        }
    }
}

fn keyword_ids<S: Store>(c: &DurableCollection<S>, text: &str) -> Vec<Uuid> {
    c.search_keyword(&KeywordQuery::new("ns", text, 10))
        .unwrap()
        .hits
        .iter()
        .map(|h| h.id)
        .collect()
}

#[tokio::test]
async fn expired_points_never_match() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("kw.redb")).unwrap();
    let c = DurableCollection::open(CollectionConfig::new(DIM), store)
        .await
        .unwrap();
    let (id, v, mut p) = point("ns", "short lived note");
    p.expires_at = Some(now_millis() + 300);
    c.upsert(id, &v, p, Expect::Any).await.unwrap();
    assert_eq!(keyword_ids(&c, "note"), vec![id]);
    wait_until("expiry", || keyword_ids(&c, "note").is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_follows_keyword_writes_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let url = redis.url();
    let open = |name: &'static str| {
        let url = url.clone();
        async move {
            let store = RedisStore::connect(RedisConfig::new(&url, name))
                .await
                .unwrap();
            let feed = store.feed().await.unwrap();
            DurableCollection::open_following(CollectionConfig::new(DIM), store, feed)
                .await
                .unwrap()
        }
    };
    let (writer, _t1): (Arc<DurableCollection<RedisStore>>, _) = open("kw").await;
    let (reader, _t2) = open("kw").await;
    let (id, v, p) = point("ns", "quarterly report for Helsinki office");
    writer.upsert(id, &v, p.clone(), Expect::Any).await.unwrap();
    assert_eq!(keyword_ids(&writer, "helsinki"), vec![id]);
    wait_until("the follower indexes the text", || {
        keyword_ids(&reader, "helsinki") == vec![id]
    })
    .await;
    let mut moved = p;
    moved.text = "quarterly report for Oslo office".into();
    writer.upsert(id, &v, moved, Expect::Any).await.unwrap();
    wait_until("the follower replaces the text", || {
        keyword_ids(&reader, "helsinki").is_empty() && keyword_ids(&reader, "oslo") == vec![id]
    })
    .await;
    writer.delete(id, Expect::Any).await.unwrap();
    wait_until("the follower drops it", || {
        keyword_ids(&reader, "oslo").is_empty()
    })
    .await;
    let (kept, v, p) = point("ns", "annual budget review");
    writer.upsert(kept, &v, p, Expect::Any).await.unwrap();
    wait_until("the follower indexes the second point", || {
        keyword_ids(&reader, "budget") == vec![kept]
    })
    .await;
    // A third instance started now loads the same state from the store.
    let (late, _t3) = open("kw").await;
    wait_until("a late instance is ready", || late.is_ready()).await;
    assert_eq!(keyword_ids(&late, "budget"), vec![kept]);
    assert!(keyword_ids(&late, "oslo").is_empty());
}
