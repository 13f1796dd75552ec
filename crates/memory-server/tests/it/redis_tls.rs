//! The server on Redis over TLS with AUTH (Memorystore with in-transit
//! encryption): a real `redis-server` with a test CA, the CA file and the
//! password from the config.

use crate::support::redis_server::{RedisServer, TlsFiles};
use crate::support::{Server, config_toml, free_port};
use memory_client::{NewMemory, SearchRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stores_and_searches_on_redis_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsFiles::make(&dir.path().join("certs"), "memorystore-ca");
    let redis = RedisServer::start_tls(&dir.path().join("redis"), &tls, "auth-string");
    let toml = config_toml(
        free_port(),
        &dir.path().join("unused"),
        Some(&redis.tls_url()),
        "",
    )
    .replace(
        "snapshot_every_secs = 0",
        &format!(
            "snapshot_every_secs = 0\nredis_password = \"auth-string\"\nredis_ca_cert_file = \"{}\"",
            tls.ca.display()
        ),
    );
    let server = Server::start(dir.path(), &toml);
    let c = server.client();
    let m = c
        .create(&NewMemory {
            namespace: "tls".into(),
            text: "the staging database moved to a new host".into(),
            ..NewMemory::default()
        })
        .await
        .unwrap()
        .memory;
    server.terminate();

    // A new process finds it in Redis: it was written over the TLS connection.
    let server = Server::start(dir.path(), &toml);
    let found = server
        .client()
        .search(&SearchRequest {
            namespace: "tls".into(),
            query: Some("staging database host".into()),
            ..SearchRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(found.results.first().map(|h| h.memory.id), Some(m.id));
}
