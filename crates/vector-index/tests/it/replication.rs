//! Durable collections on real stores: read-your-writes, replication between
//! instances on one Redis, restart, resync after a trimmed stream, expiry, outages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use test_support::redis_server::RedisServer;
use test_support::wait_until;
use vector_index::durable::{DurableCollection, now_millis};
use vector_index::store::{EmbeddedStore, Expect, NewPoint, RedisConfig, RedisStore, Store};
use vector_index::synthetic::clustered;
use vector_index::{CollectionConfig, Filter, IndexError, Payload, Plan, Query, Strategy, Uuid};

const DIM: usize = 16;

fn config() -> CollectionConfig {
    CollectionConfig::new(DIM)
}

fn payload(i: usize) -> Payload {
    let mut p = Payload::new("ns");
    p.created_at = i as i64;
    p
}

async fn redis_instance(
    url: &str,
    name: &str,
) -> (
    Arc<DurableCollection<RedisStore>>,
    tokio::task::JoinHandle<()>,
) {
    let store = RedisStore::connect(RedisConfig::new(url, name))
        .await
        .unwrap();
    let feed = store.feed().await.unwrap();
    DurableCollection::open_following(config(), store, feed)
        .await
        .unwrap()
}

fn finds(c: &DurableCollection<impl Store>, id: Uuid, v: &[f32]) -> bool {
    let r = c
        .search(&Query::new(v.to_vec(), 5).strategy(Strategy::Exact))
        .unwrap();
    r.hits.iter().any(|h| h.id == id)
}

/// Every stored record's id and vector, as the index should hold them.
async fn store_contents(s: &impl Store) -> Vec<(Uuid, Vec<f32>)> {
    crate::common::all_records(s)
        .await
        .into_iter()
        .map(|r| (r.id, r.vector))
        .collect()
}

/// The index holds exactly the store's records: same ids, each found at rank 1 by its own vector.
async fn assert_mirrors_store<S: Store>(c: &DurableCollection<S>) {
    let records = store_contents(c.store()).await;
    let mut ids = c.index().ids_matching(&Filter::all());
    ids.sort();
    assert_eq!(ids, records.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    for (id, v) in records.iter().take(50) {
        let r = c
            .search(&Query::new(v.clone(), 1).strategy(Strategy::Exact))
            .unwrap();
        assert_eq!(r.plan, Plan::Exact);
        assert!((r.hits[0].score - 1.0).abs() < 1e-5, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_one_instance_reach_the_other_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let (a, _ta) = redis_instance(&server.url(), "shared").await;
    let (b, _tb) = redis_instance(&server.url(), "shared").await;
    wait_until("both ready", || a.is_ready() && b.is_ready()).await;

    let data = clustered(200, DIM, 10, 0.5, 1);
    let mut lags = Vec::new();
    for (i, v) in data.chunks_exact(DIM).enumerate().take(100) {
        let id = Uuid::now_v7();
        a.upsert(id, v, payload(i), Expect::Absent).await.unwrap();
        // Read-your-writes: searchable on A the moment the write returns.
        if !finds(&a, id, v) {
            let r = a
                .search(&Query::new(v.to_vec(), 5).strategy(Strategy::Exact))
                .unwrap();
            let p = a.index().get(id);
            panic!(
                "read-your-writes: {id} missing; got {r:?}; index has it: {}; len {}",
                p.is_some(),
                a.index().len()
            );
        }
        lags.push(wait_until("A's write on B", || finds(&b, id, v)).await);
    }
    lags.sort();
    eprintln!(
        "replication lag A->B: p50 {:?}, max {:?}",
        lags[lags.len() / 2],
        lags[lags.len() - 1]
    );

    // A batch written on A: all searchable on A at once, and reaching B.
    let batch: Vec<_> = data
        .chunks_exact(DIM)
        .skip(100)
        .take(50)
        .enumerate()
        .map(|(i, v)| NewPoint::new(Uuid::now_v7(), v.to_vec(), payload(100 + i)))
        .collect();
    a.upsert_many(batch.clone()).await.unwrap();
    for p in &batch {
        assert!(finds(&a, p.id, &p.vector));
    }
    let last = batch.last().unwrap();
    wait_until("A's batch on B", || finds(&b, last.id, &last.vector)).await;

    // A conditional batch: refused, it changes neither the store nor the
    // index; accepted, all of it is searchable on A at once and reaches B.
    let v = &data[150 * DIM..][..DIM];
    let (fresh, held) = (Uuid::now_v7(), batch[0].id);
    let refused = vec![
        (
            NewPoint::new(fresh, v.to_vec(), payload(150)),
            Expect::Absent,
        ),
        (
            NewPoint::new(held, v.to_vec(), payload(151)),
            Expect::Absent,
        ),
    ];
    assert!(matches!(
        a.upsert_all(refused.clone()).await,
        Err(IndexError::VersionConflict { id, .. }) if id == held
    ));
    assert!(
        a.index().get(fresh).is_none(),
        "a refused batch is not indexed"
    );
    assert!(a.get(fresh).await.unwrap().is_none());
    let held_version = a.get(held).await.unwrap().unwrap().version;
    let accepted = vec![
        (
            NewPoint::new(fresh, v.to_vec(), payload(150)),
            Expect::Absent,
        ),
        (
            NewPoint::new(held, v.to_vec(), payload(151)),
            Expect::Version(held_version),
        ),
    ];
    a.upsert_all(accepted).await.unwrap();
    assert!(finds(&a, fresh, v) && finds(&a, held, v));
    wait_until("A's conditional batch on B", || {
        finds(&b, fresh, v) && finds(&b, held, v)
    })
    .await;

    // A delete on B disappears on A.
    let victim = a.index().ids_matching(&Filter::all())[0];
    let v = a.index().get(victim).unwrap().vector;
    assert!(b.delete(victim, Expect::Any).await.unwrap().is_some());
    assert!(!finds(&b, victim, &v));
    wait_until("B's delete on A", || !finds(&a, victim, &v)).await;

    // Optimistic concurrency across instances.
    let id = Uuid::now_v7();
    let v1 = a
        .upsert(id, &data[..DIM], payload(0), Expect::Absent)
        .await
        .unwrap();
    let v2 = b
        .upsert(id, &data[DIM..2 * DIM], payload(1), Expect::Version(v1))
        .await
        .unwrap();
    let err = a
        .upsert(id, &data[..DIM], payload(0), Expect::Version(v1))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        IndexError::VersionConflict {
            id,
            expected: Expect::Version(v1),
            found: Some(v2)
        }
    );
    wait_until("B's update on A", || finds(&a, id, &data[DIM..2 * DIM])).await;

    // A third instance starting now loads everything.
    let (c, _tc) = redis_instance(&server.url(), "shared").await;
    wait_until("C ready", || c.is_ready()).await;
    assert_mirrors_store(&c).await;
    assert_mirrors_store(&a).await;
    assert!(a.replication().position > Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_a_trimmed_stream_resyncs() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let mut small = RedisConfig::new(server.url(), "trim");
    small.stream_max_len = 10;
    let writer = DurableCollection::open(config(), RedisStore::connect(small).await.unwrap())
        .await
        .unwrap();
    let (b, follower) = redis_instance(&server.url(), "trim").await;
    let data = clustered(600, DIM, 10, 0.5, 2);
    let ids: Vec<Uuid> = (0..300).map(|_| Uuid::now_v7()).collect();
    for (i, id) in ids.iter().enumerate().take(50) {
        writer
            .upsert(*id, &data[i * DIM..][..DIM], payload(i), Expect::Any)
            .await
            .unwrap();
    }
    wait_until("B ready", || b.is_ready()).await;
    // B stops following; meanwhile far more changes than the stream keeps.
    follower.abort();
    for (i, id) in ids.iter().enumerate() {
        writer
            .upsert(
                *id,
                &data[(i + 300) * DIM..][..DIM],
                payload(i),
                Expect::Any,
            )
            .await
            .unwrap();
    }
    for id in ids.iter().step_by(3) {
        writer.delete(*id, Expect::Any).await.unwrap();
    }
    let feed = b.store().feed().await.unwrap();
    let _f = b.spawn_follower(feed);
    wait_until("B resynced", || b.replication().resyncs > 0).await;
    wait_until("B converged", || b.index().len() == 200).await;
    assert_mirrors_store(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_trimmed_to_empty_costs_one_resync_and_a_restart_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let (a, _ta) = redis_instance(&server.url(), "emptied").await;
    let data = clustered(20, DIM, 2, 0.5, 3);
    for i in 0..20 {
        a.upsert(
            Uuid::now_v7(),
            &data[i * DIM..][..DIM],
            payload(i),
            Expect::Any,
        )
        .await
        .unwrap();
    }
    let (b, _tb) = redis_instance(&server.url(), "emptied").await;
    wait_until("B ready", || b.is_ready()).await;
    // Someone trims the whole change stream (an operator, a MAXLEN of 0).
    let stream = b.store().stream_key();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let trimmed: u64 = redis::cmd("XTRIM")
        .arg(&stream)
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(trimmed, 20);
    // A follower that had read everything lost nothing: no resync at all, and
    // certainly not one per poll (it used to loop on full SCANs).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(b.replication().resyncs, 0, "{:?}", b.replication());
    assert!(b.is_ready());
    // An instance started now is ready without anyone writing first.
    let (c, _tc) = redis_instance(&server.url(), "emptied").await;
    wait_until("C ready on an empty stream", || c.is_ready()).await;
    assert_eq!(c.index().len(), 20);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(c.replication().resyncs, 0, "{:?}", c.replication());
    // And writes after the trim still reach both.
    let late = Uuid::now_v7();
    a.upsert(late, &data[..DIM], payload(0), Expect::Any)
        .await
        .unwrap();
    wait_until("B sees the late write", || b.index().contains(late)).await;
    wait_until("C sees the late write", || c.index().contains(late)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_writes_fast_keeps_searches_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start(dir.path());
    let (a, _t) = redis_instance(&server.url(), "outage").await;
    let v = vec![1.0; DIM];
    let id = Uuid::now_v7();
    a.upsert(id, &v, payload(0), Expect::Any).await.unwrap();
    server.kill();
    let started = Instant::now();
    let err = a
        .upsert(Uuid::now_v7(), &v, payload(1), Expect::Any)
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(finds(&a, id, &v), "searches keep working from memory");
    server.restart();
    let mut recovered = false;
    for _ in 0..100 {
        if a.upsert(Uuid::now_v7(), &v, payload(2), Expect::Any)
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the collection reconnects by itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_collection_reloads_and_sweeps_expired_points() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("points.redb");
    let data = clustered(100, DIM, 5, 0.5, 3);
    let expired = Uuid::now_v7();
    {
        let c = DurableCollection::open(config(), EmbeddedStore::open(&path).unwrap())
            .await
            .unwrap();
        for (i, v) in data.chunks_exact(DIM).enumerate() {
            c.upsert(Uuid::from_u128(i as u128 + 1), v, payload(i), Expect::Any)
                .await
                .unwrap();
        }
        let mut p = payload(0);
        p.expires_at = Some(now_millis() - 1);
        c.upsert(expired, &data[..DIM], p, Expect::Any)
            .await
            .unwrap();
        // Expired points are never returned, even before the sweeper runs.
        assert!(!finds(&c, expired, &data[..DIM]));
        // Bad input is refused before it reaches the store.
        let err = c
            .upsert(Uuid::now_v7(), &[f32::NAN; DIM], payload(0), Expect::Any)
            .await
            .unwrap_err();
        assert!(matches!(err, IndexError::NonFinite { .. }));
        assert_eq!(store_contents(c.store()).await.len(), 101);
    }
    let c = DurableCollection::open(config(), EmbeddedStore::open(&path).unwrap())
        .await
        .unwrap();
    assert!(c.is_ready());
    assert_eq!(c.index().len(), 101);
    assert_mirrors_store(&c).await;
    assert_eq!(c.sweep_expired(now_millis()).await.unwrap(), 1);
    assert!(c.get(expired).await.unwrap().is_none());
    assert_eq!(c.index().len(), 100);
    assert_eq!(c.sweep_expired(now_millis()).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_sweeper_and_snapshotter_run_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("bg.redb")).unwrap();
    let snapshot_path = store.snapshot_path().to_path_buf();
    let c = DurableCollection::open(config(), store).await.unwrap();
    let _sweeper = c.spawn_sweeper(Duration::from_millis(20));
    let _snapshotter = c.spawn_snapshotter(Duration::from_millis(20));
    let id = Uuid::now_v7();
    let mut p = payload(0);
    p.expires_at = Some(now_millis() + 50);
    c.upsert(id, &[1.0; DIM], p, Expect::Any).await.unwrap();
    c.upsert(Uuid::now_v7(), &[2.0; DIM], payload(1), Expect::Any)
        .await
        .unwrap();
    wait_until("the snapshot file", || snapshot_path.exists()).await;
    let start = Instant::now();
    // The store still holds it until the sweeper deletes it.
    while c.store().get(id).await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "expired point never swept"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.index().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_records_are_hidden_by_every_query_before_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("expiry.redb")).unwrap();
    let c = DurableCollection::open(config(), store).await.unwrap();
    let (gone, kept) = (Uuid::now_v7(), Uuid::now_v7());
    let mut p = payload(0);
    p.expires_at = Some(now_millis() + 30);
    c.upsert(gone, &[1.0; DIM], p, Expect::Any).await.unwrap();
    c.upsert(kept, &[2.0; DIM], payload(1), Expect::Any)
        .await
        .unwrap();
    let all = Filter::all();
    assert_eq!(c.ids_matching(&all).len(), 2);
    tokio::time::sleep(Duration::from_millis(60)).await;
    // No sweeper ran: the store and the index still hold it...
    assert!(c.store().get(gone).await.unwrap().is_some());
    assert!(c.index().contains(gone));
    // ...but no query of the collection returns or counts it.
    assert!(c.get(gone).await.unwrap().is_none());
    let many = c.get_many(&[gone, kept]).await.unwrap();
    assert!(many[0].is_none() && many[1].is_some());
    assert_eq!(c.ids_matching(&all), vec![kept]);
    assert_eq!(c.count_matching(&all), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_skips_its_own_writes_and_reads_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let (a, _fa) = redis_instance(&server.url(), "own").await;
    let (b, _fb) = redis_instance(&server.url(), "own").await;
    wait_until("both ready", || a.is_ready() && b.is_ready()).await;
    let data = clustered(200, DIM, 10, 0.5, 3);
    // 40 single writes and a batch of 60 through A.
    for i in 0..40 {
        a.upsert(
            Uuid::now_v7(),
            &data[i * DIM..][..DIM],
            payload(i),
            Expect::Any,
        )
        .await
        .unwrap();
    }
    let batch: Vec<NewPoint> = (40..100)
        .map(|i| NewPoint::new(Uuid::now_v7(), data[i * DIM..][..DIM].to_vec(), payload(i)))
        .collect();
    a.upsert_many(batch).await.unwrap();
    // And 10 through B, so each instance also has the other's writes to apply.
    for i in 100..110 {
        b.upsert(
            Uuid::now_v7(),
            &data[i * DIM..][..DIM],
            payload(i),
            Expect::Any,
        )
        .await
        .unwrap();
    }
    wait_until("A saw every entry", || {
        let r = a.replication();
        r.own_skipped + r.refreshed >= 110
    })
    .await;
    wait_until("B saw every entry", || {
        let r = b.replication();
        r.own_skipped + r.refreshed >= 110
    })
    .await;
    let (ra, rb) = (a.replication(), b.replication());
    // Each read back from the store exactly what the other wrote.
    assert_eq!((ra.own_skipped, ra.refreshed), (100, 10), "{ra:?}");
    assert_eq!((rb.own_skipped, rb.refreshed), (10, 100), "{rb:?}");
    assert_eq!(a.index().len(), 110);
    assert_eq!(b.index().len(), 110);
    assert_mirrors_store(&a).await;
    assert_mirrors_store(&b).await;
}

/// A record collection (no vectors): versioned, expiring, snapshotted and
/// reloaded like any other, found by id and payload; vectors stored with a
/// record (as older servers wrote them) are ignored, and similarity search is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_collection_keeps_records_without_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.redb");
    let (plain, legacy, expiring) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    {
        let c = DurableCollection::open(
            vector_index::CollectionConfig::records(),
            EmbeddedStore::open(&path).unwrap(),
        )
        .await
        .unwrap();
        let v1 = c
            .upsert_document(plain, &[], payload(0), b"one", Expect::Absent)
            .await
            .unwrap();
        // A record an older server wrote with a one-element vector.
        c.upsert_document(legacy, &[1.0], payload(1), b"two", Expect::Absent)
            .await
            .unwrap();
        let mut p = payload(2);
        p.expires_at = Some(now_millis() + 30);
        c.upsert(expiring, &[], p, Expect::Any).await.unwrap();
        assert_eq!(c.replication().rejected, 0);
        // Versioned like any record.
        let err = c
            .upsert_document(plain, &[], payload(0), b"stale", Expect::Version(v1 + 100))
            .await
            .unwrap_err();
        assert!(matches!(err, IndexError::VersionConflict { .. }), "{err}");
        assert_eq!(c.get(plain).await.unwrap().unwrap().document, b"one");
        assert!(c.index().contains(legacy));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            c.ids_matching(&Filter::all()).len(),
            2,
            "the expired one is hidden"
        );
        // No similarity search on records.
        let q = Query::new(vec![1.0], 5);
        assert!(matches!(
            c.search(&q),
            Err(IndexError::InvalidParameter { .. })
        ));
        c.snapshot().await.unwrap();
    }
    // Reopened from its snapshot: the same records.
    let c = DurableCollection::open(
        vector_index::CollectionConfig::records(),
        EmbeddedStore::open(&path).unwrap(),
    )
    .await
    .unwrap();
    assert!(c.replication().restored_from_snapshot);
    assert_eq!(c.replication().snapshots_rejected, 0);
    let mut ids = c.ids_matching(&Filter::all());
    ids.sort();
    let mut want = vec![plain, legacy];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(c.get(legacy).await.unwrap().unwrap().document, b"two");
}

/// What servers stored before record collections existed (one-element
/// vectors and a graph snapshot) opens as a record collection: the snapshot
/// is refused as not its own and every record is loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_dimension_collection_opens_as_a_record_collection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.redb");
    let id = Uuid::now_v7();
    {
        let old = DurableCollection::open(
            vector_index::CollectionConfig::new(1),
            EmbeddedStore::open(&path).unwrap(),
        )
        .await
        .unwrap();
        old.upsert_document(id, &[1.0], payload(0), b"bound", Expect::Absent)
            .await
            .unwrap();
        old.snapshot().await.unwrap();
    }
    let c = DurableCollection::open(
        vector_index::CollectionConfig::records(),
        EmbeddedStore::open(&path).unwrap(),
    )
    .await
    .unwrap();
    assert!(c.index().contains(id));
    assert_eq!(c.get(id).await.unwrap().unwrap().document, b"bound");
    let r = c.replication();
    assert!(
        !r.restored_from_snapshot && r.snapshots_rejected == 1,
        "{r:?}"
    );
}

/// Over a store keeping f16 vectors, the writer, a follower and a new
/// instance index exactly the vectors the store gives back (the writer
/// indexes what the store keeps, not what it was sent), and the writer's
/// follower still skips its own writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f16_records_are_the_vectors_every_instance_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    // An f32 graph, so that any difference between what was sent and what
    // the store keeps would show in the index.
    let index = config();
    let open = || async {
        let mut rc = RedisConfig::new(server.url(), "half");
        rc.vector_precision = vector_index::store::VectorPrecision::F16;
        let store = RedisStore::connect(rc).await.unwrap();
        let feed = store.feed().await.unwrap();
        DurableCollection::open_following(index.clone(), store, feed)
            .await
            .unwrap()
    };
    let (a, _fa) = open().await;
    let (b, _fb) = open().await;
    wait_until("both ready", || a.is_ready() && b.is_ready()).await;
    // Large elements too: f16 alone would overflow them.
    let data: Vec<f32> = clustered(60, DIM, 5, 0.5, 9)
        .into_iter()
        .map(|x| x * 1e6)
        .collect();
    for i in 0..20 {
        let v = &data[i * DIM..][..DIM];
        a.upsert(Uuid::now_v7(), v, payload(i), Expect::Any)
            .await
            .unwrap();
    }
    let batch: Vec<NewPoint> = (20..60)
        .map(|i| NewPoint::new(Uuid::now_v7(), data[i * DIM..][..DIM].to_vec(), payload(i)))
        .collect();
    a.upsert_many(batch).await.unwrap();
    wait_until("B has every point", || b.index().len() == 60).await;
    wait_until("A saw its own entries", || {
        a.replication().own_skipped >= 60
    })
    .await;
    assert_eq!(a.replication().refreshed, 0, "{:?}", a.replication());
    let (c, _fc) = open().await;
    wait_until("a new instance is ready", || c.is_ready()).await;
    let records = store_contents(a.store()).await;
    assert_eq!(records.len(), 60);
    for (id, stored) in &records {
        let unit = vector_index::vector::normalized(stored, DIM).unwrap();
        for instance in [&a, &b, &c] {
            assert_eq!(instance.index().get(*id).unwrap().vector, unit, "{id}");
        }
    }
}
