//! Restart from a stored snapshot plus the changes after it, on both stores;
//! a damaged snapshot is detected and the index rebuilt from records.

use std::time::{Duration, Instant};

use test_support::redis_server::RedisServer;
use vector_index::durable::DurableCollection;
use vector_index::store::{
    EmbeddedStore, Expect, NewPoint, Record, RedisConfig, RedisStore, Store,
};
use vector_index::synthetic::clustered;
use vector_index::vector::{dot, normalized};
use vector_index::{CollectionConfig, Field, Filter, Payload, Query, Strategy, Uuid};

const DIM: usize = 16;

fn config() -> CollectionConfig {
    CollectionConfig::new(DIM)
}

/// 1,000 points, a snapshot, then a 10% tail of inserts, updates and deletes.
async fn write_with_tail<S: Store>(c: &DurableCollection<S>, data: &[f32]) {
    let rows: Vec<&[f32]> = data.chunks_exact(DIM).collect();
    let items = (0..1000)
        .map(|i| {
            NewPoint::new(
                Uuid::from_u128(i as u128 + 1),
                rows[i].to_vec(),
                Payload::new("ns"),
            )
        })
        .collect();
    c.upsert_many(items).await.unwrap();
    assert!(c.snapshot().await.unwrap() > 1000 * DIM * 4);
    for (i, row) in rows.iter().enumerate().skip(1000).take(60) {
        put(c, i, row, "ns").await;
    }
    for i in (0..200).step_by(10) {
        put(c, i, rows[1500 + i], "moved").await;
    }
    // Payload only: the same vector, another namespace.
    for (i, row) in rows.iter().enumerate().skip(600).take(10) {
        put(c, i, row, "retagged").await;
    }
    for i in (5..300).step_by(15) {
        c.delete(Uuid::from_u128(i as u128 + 1), Expect::Any)
            .await
            .unwrap();
    }
}

/// Writes point `i` (id `i + 1`) with `row` in namespace `ns`.
async fn put<S: Store>(c: &DurableCollection<S>, i: usize, row: &[f32], ns: &str) {
    c.upsert(
        Uuid::from_u128(i as u128 + 1),
        row,
        Payload::new(ns),
        Expect::Any,
    )
    .await
    .unwrap();
}

/// Exact top-10 for a few queries equals brute force over the stored records.
async fn matches_brute_force<S: Store>(c: &DurableCollection<S>, queries: &[f32]) {
    let retagged = c
        .index()
        .ids_matching(&Filter::all().eq(Field::Namespace, "retagged"));
    assert_eq!(
        retagged.len(),
        10,
        "payload-only changes after the snapshot"
    );
    let records = crate::common::all_records(c.store()).await;
    assert_eq!(c.index().len() as usize, records.len());
    for q in queries.chunks_exact(DIM).take(30) {
        let got = c
            .search(&Query::new(q.to_vec(), 10).strategy(Strategy::Exact))
            .unwrap();
        let got: Vec<Uuid> = got.hits.iter().map(|h| h.id).collect();
        assert_eq!(got, top10(&records, q));
    }
}

/// The exact top 10 of `records` for the query `q`, best first (ties by id).
fn top10(records: &[Record], q: &[f32]) -> Vec<Uuid> {
    let unit = normalized(q, DIM).unwrap();
    let mut scored: Vec<(Uuid, f32)> = records
        .iter()
        .map(|r| (r.id, dot(&unit, &normalized(&r.vector, DIM).unwrap())))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().take(10).map(|(id, _)| id).collect()
}

/// An embedded store's snapshot leaves the vectors to the records: every
/// point of it takes its vector back but the 34 the tail moved or deleted
/// (20 moved, 20 deleted, 6 of them both), which are written again or
/// deleted. A follower's snapshot keeps its vectors: nothing to take back.
fn assert_stale_after_tail<S: Store>(c: &DurableCollection<S>, expected: u64) {
    assert_eq!(c.replication().snapshot_points_stale, expected);
}

async fn wait_ready<S: Store>(c: &DurableCollection<S>) {
    let start = Instant::now();
    while !c.is_ready() {
        assert!(start.elapsed() < Duration::from_secs(15), "not ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_from_snapshot_and_tail_and_from_a_corrupt_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let mut small_chunks = RedisConfig::new(server.url(), "snap");
    small_chunks.snapshot_chunk_bytes = 16 * 1024;
    let store = RedisStore::connect(small_chunks.clone()).await.unwrap();
    let data = clustered(2000, DIM, 20, 0.5, 11);
    {
        let (a, _t) =
            DurableCollection::open_following(config(), store.clone(), store.feed().await.unwrap())
                .await
                .unwrap();
        write_with_tail(&a, &data).await;
    }
    let store = RedisStore::connect(small_chunks.clone()).await.unwrap();
    let (b, _t) =
        DurableCollection::open_following(config(), store.clone(), store.feed().await.unwrap())
            .await
            .unwrap();
    wait_ready(&b).await;
    assert!(b.replication().restored_from_snapshot);
    assert_stale_after_tail(&b, 0);
    matches_brute_force(&b, &data[1800 * DIM..]).await;

    // Damage one chunk: detected, and the index is rebuilt from records.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("vi:{snap}:snap:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        keys.len() > 2,
        "a 64 KiB+ snapshot in 16 KiB chunks: {keys:?}"
    );
    let chunk = keys.iter().find(|k| k.ends_with(":1")).unwrap();
    let () = redis::cmd("SETRANGE")
        .arg(chunk)
        .arg(100)
        .arg("garbage")
        .query_async(&mut conn)
        .await
        .unwrap();
    let store = RedisStore::connect(small_chunks).await.unwrap();
    let (c, _t) =
        DurableCollection::open_following(config(), store.clone(), store.feed().await.unwrap())
            .await
            .unwrap();
    wait_ready(&c).await;
    let stats = c.replication();
    assert!(!stats.restored_from_snapshot);
    assert_eq!(stats.snapshots_rejected, 1);
    matches_brute_force(&c, &data[1800 * DIM..]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_restart_from_snapshot_and_tail_and_from_a_corrupt_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("points.redb");
    let data = clustered(2000, DIM, 20, 0.5, 12);
    let snapshot_path = {
        let store = EmbeddedStore::open(&path).unwrap();
        let snapshot_path = store.snapshot_path().to_path_buf();
        let a = DurableCollection::open(config(), store).await.unwrap();
        write_with_tail(&a, &data).await;
        snapshot_path
    };
    let b = DurableCollection::open(config(), EmbeddedStore::open(&path).unwrap())
        .await
        .unwrap();
    assert!(b.replication().restored_from_snapshot);
    assert_stale_after_tail(&b, 34);
    matches_brute_force(&b, &data[1800 * DIM..]).await;
    drop(b);

    let mut bytes = std::fs::read(&snapshot_path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&snapshot_path, bytes).unwrap();
    let c = DurableCollection::open(config(), EmbeddedStore::open(&path).unwrap())
        .await
        .unwrap();
    let stats = c.replication();
    assert!(!stats.restored_from_snapshot);
    assert_eq!(stats.snapshots_rejected, 1);
    matches_brute_force(&c, &data[1800 * DIM..]).await;
}

/// An i8 index over an f16 store, as the server runs `index.quantization =
/// "i8"`: its snapshot leaves both the codes and the f16 rows to the records,
/// and a restart takes them back from them; searches then score by the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_i8_restart_takes_codes_and_rows_back_from_the_records() {
    i8_restart(vector_index::BackendKind::Usearch).await;
}

/// The same for our graph, whose i8 form is its f16 graph with codes made
/// again from the vectors at restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_graph_i8_restart_takes_its_vectors_back_and_scores_by_them() {
    i8_restart(vector_index::BackendKind::Graph).await;
}

async fn i8_restart(backend: vector_index::BackendKind) {
    use vector_index::backend::Quantization;
    use vector_index::store::VectorPrecision;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("points.redb");
    let open = || EmbeddedStore::open_with(&path, 1 << 20, VectorPrecision::F16).unwrap();
    let mut config = config().with_backend(backend);
    config.graph.quantization = Quantization::I8;
    let data = clustered(2000, DIM, 20, 0.5, 13);
    {
        let a = DurableCollection::open(config.clone(), open())
            .await
            .unwrap();
        write_with_tail(&a, &data).await;
    }
    let b = DurableCollection::open(config, open()).await.unwrap();
    assert!(b.replication().restored_from_snapshot);
    // Every unchanged point took its codes and row back from its record.
    assert_stale_after_tail(&b, 34);
    let records = crate::common::all_records(b.store()).await;
    assert_eq!(b.index().len() as usize, records.len());
    let half = |v: &[f32]| -> Vec<f32> {
        let unit = normalized(v, DIM).unwrap();
        unit.iter()
            .map(|x| half::f16::from_f32(*x).to_f32())
            .collect()
    };
    let rows: Vec<(Uuid, Vec<f32>)> = records.iter().map(|r| (r.id, half(&r.vector))).collect();
    let mut found = 0;
    for q in data[1800 * DIM..].chunks_exact(DIM).take(30) {
        let unit = normalized(q, DIM).unwrap();
        let mut want: Vec<(Uuid, f32)> = rows.iter().map(|(id, v)| (*id, dot(&unit, v))).collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        want.truncate(10);
        let exact = b
            .search(&Query::new(q.to_vec(), 10).strategy(Strategy::Exact))
            .unwrap();
        let ids = |hits: &[vector_index::Hit]| hits.iter().map(|h| h.id).collect::<Vec<_>>();
        assert_eq!(
            ids(&exact.hits),
            ids_of(&want),
            "exact scans read the f16 rows"
        );
        let graph = b
            .search(&Query::new(q.to_vec(), 10).strategy(Strategy::Graph))
            .unwrap();
        for hit in &graph.hits {
            let row = &rows.iter().find(|(id, _)| *id == hit.id).unwrap().1;
            // The row's score, where the codes' cosine is 0.001 or more off.
            assert!((hit.score - dot(&unit, row)).abs() < 1e-5, "{hit:?}");
            found += usize::from(want.iter().any(|w| w.0 == hit.id));
        }
    }
    assert!(found >= 290, "{backend}: graph search found {found} of 300");
}

fn ids_of(scored: &[(Uuid, f32)]) -> Vec<Uuid> {
    scored.iter().map(|s| s.0).collect()
}

/// Our graph's snapshot leaves its live vectors to the records as usearch's
/// does, and keeps those of the slots removed before it (no record holds
/// them); a restart takes the live ones back and answers like the records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_graph_restart_takes_its_vectors_back_from_the_records() {
    use vector_index::BackendKind;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("points.redb");
    let config = config().with_backend(BackendKind::Graph);
    let data = clustered(2000, DIM, 20, 0.5, 14);
    let snapshot_path = {
        let store = EmbeddedStore::open(&path).unwrap();
        let snapshot_path = store.snapshot_path().to_path_buf();
        let a = DurableCollection::open(config.clone(), store)
            .await
            .unwrap();
        write_with_tail(&a, &data).await;
        assert!(
            a.index().stats().tombstones > 0,
            "removed slots in the graph"
        );
        a.snapshot().await.unwrap();
        snapshot_path
    };
    let b = DurableCollection::open(config, EmbeddedStore::open(&path).unwrap())
        .await
        .unwrap();
    assert!(b.replication().restored_from_snapshot);
    // Saved without the live vectors: 8 bytes of fingerprint for each one's 64.
    let saved = std::fs::metadata(&snapshot_path).unwrap().len() as usize;
    let whole = b.index().snapshot("").unwrap().len();
    let live = b.index().len() as usize;
    assert!(
        saved + live * (DIM * 4 - 8) / 2 < whole,
        "{saved} vs {whole}"
    );
    // Taken after the tail: every live point took its vector back.
    assert_stale_after_tail(&b, 0);
    assert!(b.index().stats().tombstones > 0, "removed slots came back");
    matches_brute_force(&b, &data[1800 * DIM..]).await;
    let records = crate::common::all_records(b.store()).await;
    let mut found = 0;
    for q in data[1800 * DIM..].chunks_exact(DIM).take(30) {
        let want = top10(&records, q);
        let graph = b
            .search(&Query::new(q.to_vec(), 10).strategy(Strategy::Graph))
            .unwrap();
        found += graph.hits.iter().filter(|h| want.contains(&h.id)).count();
    }
    assert!(found >= 285, "graph search found {found} of 300");
}
