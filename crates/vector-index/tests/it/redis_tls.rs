//! The Redis store over TLS with AUTH, as Memorystore with in-transit
//! encryption serves it: a real `redis-server` with a test CA. The right CA
//! and password work for the store and its change feed; a wrong CA or a
//! missing password are refused.

use std::time::Duration;

use test_support::redis_server::{RedisServer, TlsFiles};
use vector_index::durable::DurableCollection;
use vector_index::store::{Expect, RedisConfig, RedisStore};
use vector_index::{CollectionConfig, IndexError, Payload, Query, Uuid};

fn config(url: &str, ca: &std::path::Path, password: Option<&str>) -> RedisConfig {
    let mut c = RedisConfig::new(url, "tls-test");
    c.ca_cert = Some(std::fs::read(ca).unwrap());
    c.password = password.map(str::to_owned);
    c.connect_timeout = Duration::from_secs(2);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_auth_works_and_a_wrong_ca_or_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsFiles::make(&dir.path().join("certs"), "test-ca");
    let redis = RedisServer::start_tls(&dir.path().join("redis"), &tls, "s3cret");
    let url = redis.tls_url();

    // The right CA and password: writes, reads and the change feed all work.
    let store = RedisStore::connect(config(&url, &tls.ca, Some("s3cret")))
        .await
        .unwrap();
    let feed = store.feed().await.unwrap();
    let (a, _follower) = DurableCollection::open_following(CollectionConfig::new(4), store, feed)
        .await
        .unwrap();
    let id = Uuid::now_v7();
    a.upsert(
        id,
        &[1.0, 0.0, 0.0, 0.0],
        Payload::new("ns"),
        Expect::Absent,
    )
    .await
    .unwrap();
    assert_eq!(a.get(id).await.unwrap().map(|r| r.id), Some(id));
    // A second instance over TLS loads what the first wrote.
    let store = RedisStore::connect(config(&url, &tls.ca, Some("s3cret")))
        .await
        .unwrap();
    let b = DurableCollection::open(CollectionConfig::new(4), store)
        .await
        .unwrap();
    let hits = b.search(&Query::new(vec![1.0, 0.0, 0.0, 0.0], 1)).unwrap();
    assert_eq!(hits.hits.first().map(|h| h.id), Some(id));

    // Another CA: the server's certificate is not trusted.
    let other = TlsFiles::make(&dir.path().join("other"), "other-ca");
    let err = RedisStore::connect(config(&url, &other.ca, Some("s3cret")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, IndexError::Unavailable(_) | IndexError::Storage(_)),
        "{err}"
    );

    // No password: Redis refuses the commands.
    let err = match RedisStore::connect(config(&url, &tls.ca, None)).await {
        Ok(store) => DurableCollection::open(CollectionConfig::new(4), store)
            .await
            .map(|_| ())
            .unwrap_err(),
        Err(e) => e,
    };
    assert!(err.to_string().to_lowercase().contains("auth"), "{err}");
}
