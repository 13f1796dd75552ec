//! Fault tests on a real redis-server: `kill -9` under a write load.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use test_support::redis_server::RedisServer;
use vector_index::store::{Expect, RedisConfig, RedisStore, Store};
use vector_index::{IndexError, Payload, Uuid};

fn vector(i: u64) -> Vec<f32> {
    (0..8).map(|j| (i * 8 + j) as f32).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9_and_none_is_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start(dir.path());
    let mut config = RedisConfig::new(server.url(), "faults");
    config.op_timeout = Duration::from_millis(500);
    let store = RedisStore::connect(config).await.unwrap();
    let acked: Arc<Mutex<Vec<(Uuid, u64, u64)>>> = Arc::default();

    // Four writers, each write a fresh id, until Redis dies under them.
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let (store, acked) = (store.clone(), Arc::clone(&acked));
            tokio::spawn(async move {
                let mut failures = 0;
                for i in 0.. {
                    let n = w * 1_000_000 + i;
                    let id = Uuid::now_v7();
                    let mut p = Payload::new("ns");
                    p.created_at = n as i64;
                    match store.put(id, &vector(n), &p, Expect::Absent).await {
                        Ok(v) => acked.lock().push((id, v, n)),
                        Err(IndexError::Unavailable(_)) => {
                            failures += 1;
                            if failures > 3 {
                                return;
                            }
                        }
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
            })
        })
        .collect();
    while acked.lock().len() < 500 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    for w in writers {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .unwrap()
            .unwrap();
    }
    server.restart();

    let acked = acked.lock().clone();
    assert!(acked.len() >= 500);
    let mut ok = false;
    for _ in 0..50 {
        if store.get(acked[0].0).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "store reconnects after the restart");
    for (id, version, n) in &acked {
        let r = store
            .get(*id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {id} lost"));
        assert_eq!(
            (r.version, r.vector, r.payload.created_at),
            (*version, vector(*n), *n as i64)
        );
    }
    // Every stored record parses whole, and each has exactly one stream entry:
    // the record and its change were written together or not at all.
    let stored = crate::common::all_records(&store).await;
    for r in &stored {
        assert_eq!(r.vector, vector(r.payload.created_at as u64));
    }
    let records = stored.len() as u64;
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stream_len: u64 = redis::cmd("XLEN")
        .arg(store.stream_key())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stream_len, records);
    assert!(records >= acked.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_replicas_acknowledges_only_replicated_writes() {
    let (primary_dir, replica_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = RedisServer::start(primary_dir.path());
    let mut replica = RedisServer::start_replica(replica_dir.path(), &primary);
    let mut config = RedisConfig::new(primary.url(), "wait");
    config.wait_replicas = 1;
    // WAIT gets half of this: long enough for a live replica on a loaded
    // test machine (250 ms once was not), short enough for the dead one.
    config.op_timeout = Duration::from_millis(2_000);
    let store = RedisStore::connect(config).await.unwrap();
    let p = Payload::new("ns");
    // Once the replica has synced, writes are acknowledged.
    let mut synced = false;
    for _ in 0..100 {
        if store
            .put(Uuid::now_v7(), &vector(1), &p, Expect::Any)
            .await
            .is_ok()
        {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(synced, "the replica never acknowledged a write");
    let id = Uuid::now_v7();
    store.put(id, &vector(2), &p, Expect::Absent).await.unwrap();
    // The replica is gone: the write reaches the primary, but is not acknowledged.
    replica.kill();
    let late = Uuid::now_v7();
    let err = store
        .put(late, &vector(3), &p, Expect::Absent)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, IndexError::Unavailable(m) if m.contains("0 of 1 replicas")),
        "{err}"
    );
    assert!(store.get(late).await.unwrap().is_some());
    assert_eq!(store.get(id).await.unwrap().unwrap().vector, vector(2));
}

/// A damaged embedded store file is an error that names the file, never a
/// panic, wherever the damage lies: flipped bytes at offsets across the file
/// (headers, region tables, B-tree pages), each opened and fully loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_redb_file_is_an_error_naming_it_not_a_panic() {
    use vector_index::durable::DurableCollection;
    use vector_index::store::EmbeddedStore;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.redb");
    {
        let store = EmbeddedStore::open(&good).unwrap();
        for i in 0..200u64 {
            let mut p = Payload::new("ns");
            p.text = format!("record {i}");
            store
                .put(Uuid::now_v7(), &vector(i), &p, Expect::Any)
                .await
                .unwrap();
        }
    }
    let bytes = std::fs::read(&good).unwrap();
    let step = (bytes.len() / 97).max(1);
    let (mut refused, mut opened) = (0, 0);
    for (n, at) in (0..bytes.len()).step_by(step).enumerate() {
        let mut damaged = bytes.clone();
        for b in damaged.iter_mut().skip(at).take(64) {
            *b ^= 0xA5;
        }
        let path = dir.path().join(format!("damaged-{n}.redb"));
        std::fs::write(&path, &damaged).unwrap();
        // Opening, then loading every record as a server start does.
        let outcome = match EmbeddedStore::open(&path) {
            Ok(store) => DurableCollection::open(vector_index::CollectionConfig::new(8), store)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => opened += 1,
            Err(e) => {
                refused += 1;
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("damaged-{n}.redb")),
                    "offset {at}: {msg}"
                );
            }
        }
    }
    // Some damage is caught (and, where redb repairs or never reads the bytes, opens).
    assert!(refused > 0, "no damage detected ({opened} opened)");
}
