//! One conformance suite, run against both stores (Redis is a real server).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use test_support::redis_server::RedisServer;
use vector_index::store::{
    AnyStore, Cursor, EmbeddedStore, Entry, Expect, NewPoint, RedisConfig, RedisStore, Store,
    VectorPrecision,
};
use vector_index::{IndexError, Payload, Uuid};

fn payload(i: u32) -> Payload {
    let mut p = Payload::new("ns");
    p.tags = vec![format!("t{i}"), "ü🙂".into()];
    p.created_at = i64::from(i);
    p.expires_at = Some(1_000 + i64::from(i));
    p
}

fn vector(i: u32) -> Vec<f32> {
    vec![i as f32, -0.0, f32::MIN_POSITIVE, 1e30]
}

/// `vector(i)` as `s` gives it back at its precision.
fn stored(s: &impl Store, i: u32) -> Vec<f32> {
    s.vector_precision().round(&vector(i)).into_owned()
}

async fn versions_and_conflicts(s: &impl Store) {
    let id = Uuid::now_v7();
    let v1 = s
        .put(id, &vector(1), &payload(1), Expect::Absent)
        .await
        .unwrap();
    assert!(v1 > 0);
    let r = s.get(id).await.unwrap().unwrap();
    assert_eq!(
        (r.id, r.version, &r.vector, &r.payload),
        (id, v1, &stored(s, 1), &payload(1))
    );

    let err = s
        .put(id, &vector(2), &payload(2), Expect::Absent)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        IndexError::VersionConflict {
            id,
            expected: Expect::Absent,
            found: Some(v1)
        }
    );
    let v2 = s
        .put(id, &vector(2), &payload(2), Expect::Version(v1))
        .await
        .unwrap();
    assert!(v2 > v1);
    let err = s
        .put(id, &vector(3), &payload(3), Expect::Version(v1))
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
    // A rejected write changed nothing.
    assert_eq!(s.get(id).await.unwrap().unwrap().payload, payload(2));
    let v3 = s
        .put(id, &vector(3), &payload(3), Expect::Any)
        .await
        .unwrap();
    assert!(v3 > v2);

    let err = s.delete(id, Expect::Version(v2)).await.unwrap_err();
    assert!(matches!(err, IndexError::VersionConflict { found: Some(f), .. } if f == v3));
    assert!(s.get(id).await.unwrap().is_some());
    assert_eq!(s.delete(id, Expect::Version(v3)).await.unwrap(), Some(v3));
    assert_eq!(s.get(id).await.unwrap(), None);
    assert_eq!(s.delete(id, Expect::Any).await.unwrap(), None);
    let err = s.delete(id, Expect::Version(v3)).await.unwrap_err();
    assert_eq!(
        err,
        IndexError::VersionConflict {
            id,
            expected: Expect::Version(v3),
            found: None
        }
    );

    // Recreated: a fresh, larger version, never an old one (no ABA).
    let v4 = s
        .put(id, &vector(4), &payload(4), Expect::Absent)
        .await
        .unwrap();
    assert!(v4 > v3);
    let err = s
        .put(id, &vector(5), &payload(5), Expect::Version(v1))
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::VersionConflict { .. }));
}

async fn scan_pages_through_everything(s: &impl Store) {
    let mut want = HashSet::new();
    for i in 0..250 {
        let id = Uuid::now_v7();
        s.put(id, &vector(i), &payload(i), Expect::Any)
            .await
            .unwrap();
        want.insert(id);
    }
    let mut seen = HashSet::new();
    let mut cursor = Cursor::default();
    let mut pages = 0;
    loop {
        let page = s.scan(cursor, 50).await.unwrap();
        pages += 1;
        for r in page.records {
            let i = r.payload.created_at as u32;
            assert_eq!(r.vector, stored(s, i));
            seen.insert(r.id);
        }
        match page.next {
            Some(c) => cursor = c,
            None => break,
        }
        assert!(pages < 1000, "scan does not terminate");
    }
    assert!(pages > 1, "250 records at 50 a page need several pages");
    assert!(
        want.is_subset(&seen),
        "scan missed {} records",
        want.difference(&seen).count()
    );
}

async fn concurrent_writers_get_distinct_versions(s: &(impl Store + Clone)) {
    let id = Uuid::now_v7();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for i in 0..20 {
                    versions.push(
                        s.put(id, &vector(t * 100 + i), &payload(i), Expect::Any)
                            .await
                            .unwrap(),
                    );
                }
                versions
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "versions must be unique");
    let last = s.get(id).await.unwrap().unwrap();
    assert_eq!(
        last.version,
        *all.iter().max().unwrap(),
        "the newest write wins"
    );
}

/// Concurrent conditional writes (committed together on the embedded store)
/// still see each other: one create wins, one update per version wins.
async fn racing_conditional_writes_have_one_winner(s: &(impl Store + Clone)) {
    let id = Uuid::now_v7();
    let race = |expect: Expect| {
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move { s.put(id, &vector(t), &payload(t), expect).await })
            })
            .collect();
        async move {
            let mut won = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    Ok(v) => won.push(v),
                    Err(IndexError::VersionConflict { .. }) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            won
        }
    };
    let created = race(Expect::Absent).await;
    assert_eq!(created.len(), 1, "exactly one create wins: {created:?}");
    let updated = race(Expect::Version(created[0])).await;
    assert_eq!(updated.len(), 1, "exactly one update wins: {updated:?}");
    let current = updated[0];
    assert_eq!(s.get(id).await.unwrap().unwrap().version, current);
    let deletes: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.delete(id, Expect::Version(current)).await })
        })
        .collect();
    let mut deleted = 0;
    for d in deletes {
        if d.await.unwrap().is_ok() {
            deleted += 1;
        }
    }
    assert_eq!(deleted, 1, "exactly one delete wins");
    assert!(s.get(id).await.unwrap().is_none());
}

async fn batches_write_in_order(s: &impl Store) {
    assert_eq!(s.put_many(&[]).await.unwrap(), Vec::<u64>::new());
    let ids: Vec<Uuid> = (0..100).map(|_| Uuid::now_v7()).collect();
    let mut items: Vec<_> = ids
        .iter()
        .zip(0..)
        .map(|(id, i)| {
            NewPoint::new(*id, vector(i), payload(i)).with_document(format!("doc {i}").into())
        })
        .collect();
    // The same id twice: the later entry wins.
    items.push(NewPoint::new(ids[0], vector(500), payload(500)));
    let versions = s.put_many(&items).await.unwrap();
    assert_eq!(versions.len(), 101);
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions follow batch order"
    );
    let first = s.get(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (first.version, first.vector),
        (versions[100], stored(s, 500))
    );
    assert!(first.document.is_empty(), "the later entry had no document");
    let last = s.get(ids[99]).await.unwrap().unwrap();
    assert_eq!((last.version, last.payload), (versions[99], payload(99)));
    assert_eq!(last.document, b"doc 99");
    let both = s.get_many(&[ids[5], ids[0]]).await.unwrap();
    assert_eq!(both[0].as_ref().unwrap().document, b"doc 5");

    // Entries are the records without their vectors, absent ones included.
    let asked = [ids[5], Uuid::now_v7(), ids[0], ids[99]];
    let records = s.get_many(&asked).await.unwrap();
    let entries = s.get_entries(&asked).await.unwrap();
    assert_eq!(entries.len(), asked.len());
    for (record, entry) in records.into_iter().zip(&entries) {
        assert_eq!(record.map(Entry::from).as_ref(), entry.as_ref());
    }
    assert!(entries[1].is_none(), "never written");
    assert_eq!(entries[3].as_ref().unwrap().document, b"doc 99");
    assert_eq!(s.get_entries(&[]).await.unwrap(), Vec::new());

    // A single write keeps its document; a later write without one clears it.
    let id = Uuid::now_v7();
    let doc: Vec<u8> = (0..=255u8).collect();
    s.put_document(id, &vector(1), &payload(1), &doc, Expect::Absent)
        .await
        .unwrap();
    assert_eq!(s.get(id).await.unwrap().unwrap().document, doc);
    s.put(id, &vector(1), &payload(1), Expect::Any)
        .await
        .unwrap();
    assert!(s.get(id).await.unwrap().unwrap().document.is_empty());
}

async fn conditional_batches_write_all_or_nothing(s: &(impl Store + Clone)) {
    assert_eq!(s.put_all(&[]).await.unwrap(), Vec::<u64>::new());
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let va = s
        .put(a, &vector(1), &payload(1), Expect::Absent)
        .await
        .unwrap();
    let vb = s
        .put(b, &vector(2), &payload(2), Expect::Absent)
        .await
        .unwrap();

    // One stale expectation refuses the whole batch, naming the record.
    let stale = vec![
        (NewPoint::new(c, vector(3), payload(3)), Expect::Absent),
        (NewPoint::new(a, vector(4), payload(4)), Expect::Version(va)),
        (
            NewPoint::new(b, vector(5), payload(5)),
            Expect::Version(vb + 1_000),
        ),
    ];
    match s.put_all(&stale).await {
        Err(IndexError::VersionConflict { id, found, .. }) => {
            assert_eq!((id, found), (b, Some(vb)));
        }
        other => panic!("expected a conflict on b, got {other:?}"),
    }
    assert!(
        s.get(c).await.unwrap().is_none(),
        "nothing of a refused batch is stored"
    );
    assert_eq!(s.get(a).await.unwrap().unwrap().version, va);

    // All expectations met: every point is written, versions in order, and a
    // repeated id is checked against the batch's own earlier write.
    let items = vec![
        (
            NewPoint::new(c, vector(3), payload(3)).with_document(b"c".to_vec()),
            Expect::Absent,
        ),
        (NewPoint::new(a, vector(4), payload(4)), Expect::Version(va)),
        (NewPoint::new(b, vector(5), payload(5)), Expect::Any),
    ];
    let versions = s.put_all(&items).await.unwrap();
    assert_eq!(versions.len(), 3);
    assert!(versions.windows(2).all(|w| w[0] < w[1]));
    let got = s.get_many(&[a, b, c]).await.unwrap();
    assert_eq!(got[0].as_ref().unwrap().vector, stored(s, 4));
    assert_eq!(got[1].as_ref().unwrap().version, versions[2]);
    assert_eq!(got[2].as_ref().unwrap().document, b"c");
    let twice = vec![
        (
            NewPoint::new(a, vector(6), payload(6)),
            Expect::Version(versions[1]),
        ),
        (
            NewPoint::new(a, vector(7), payload(7)),
            Expect::Version(versions[1]),
        ),
    ];
    assert!(
        matches!(
            s.put_all(&twice).await,
            Err(IndexError::VersionConflict { .. })
        ),
        "the second write of a must expect the first one's version"
    );
    assert_eq!(s.get(a).await.unwrap().unwrap().vector, stored(s, 4));

    // Racing batches over the same record: exactly one wins.
    let d = Uuid::now_v7();
    let vd = s
        .put(d, &vector(8), &payload(8), Expect::Absent)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let fresh = Uuid::now_v7();
                let batch = vec![
                    (NewPoint::new(fresh, vector(i), payload(i)), Expect::Absent),
                    (NewPoint::new(d, vector(i), payload(i)), Expect::Version(vd)),
                ];
                (fresh, s.put_all(&batch).await.is_ok())
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        let (fresh, won) = t.await.unwrap();
        winners += usize::from(won);
        assert_eq!(
            s.get(fresh).await.unwrap().is_some(),
            won,
            "a loser stored nothing"
        );
    }
    assert_eq!(winners, 1, "exactly one conditional batch wins");
}

/// Entries read before a write never stand in for it afterwards, whatever
/// the write (the embedded store keeps recent entries decoded).
async fn entries_follow_every_write(s: &impl Store) {
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let doc = |e: Option<Entry>| e.map(|e| (e.version, e.document));
    let read = |ids: [Uuid; 2]| async move {
        let mut entries = s.get_entries(&ids).await.unwrap().into_iter();
        (doc(entries.next().unwrap()), doc(entries.next().unwrap()))
    };
    assert_eq!(read([a, b]).await, (None, None));
    let va = s
        .put_document(a, &vector(1), &payload(1), b"a1", Expect::Absent)
        .await
        .unwrap();
    assert_eq!(read([a, b]).await, (Some((va, b"a1".to_vec())), None));
    let vs = s
        .put_many(&[
            NewPoint::new(a, vector(2), payload(2)).with_document(b"a2".to_vec()),
            NewPoint::new(b, vector(2), payload(2)).with_document(b"b2".to_vec()),
        ])
        .await
        .unwrap();
    assert_eq!(
        read([a, b]).await,
        (Some((vs[0], b"a2".to_vec())), Some((vs[1], b"b2".to_vec())))
    );
    let vs = s
        .put_all(&[(
            NewPoint::new(b, vector(3), payload(3)).with_document(b"b3".to_vec()),
            Expect::Version(vs[1]),
        )])
        .await
        .unwrap();
    assert_eq!(read([b, a]).await.0, Some((vs[0], b"b3".to_vec())));
    // A refused write changes nothing, and the entry still reads.
    s.put(a, &vector(4), &payload(4), Expect::Absent)
        .await
        .unwrap_err();
    assert_eq!(read([a, b]).await.0.map(|(_, d)| d), Some(b"a2".to_vec()));
    s.delete(a, Expect::Any).await.unwrap();
    assert_eq!(read([a, b]).await, (None, Some((vs[0], b"b3".to_vec()))));
}

/// A write acknowledged is what every later read of entries sees, while
/// other readers fill whatever the store keeps with what they read before.
/// They also read a dozen other records, so that a small entry cache keeps
/// losing this one and reading it again across the writer's commits.
async fn entries_read_while_written_never_go_back(s: &(impl Store + Clone + 'static)) {
    let id = Uuid::now_v7();
    s.put_document(id, &vector(0), &payload(0), b"0", Expect::Absent)
        .await
        .unwrap();
    let mut asked = vec![id];
    for i in 0..12 {
        let other = Uuid::now_v7();
        s.put(other, &vector(i), &payload(i), Expect::Absent)
            .await
            .unwrap();
        asked.push(other);
    }
    let asked = std::sync::Arc::new(asked);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (s, stop, asked) = (s.clone(), stop.clone(), asked.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Each reader in its own order, the written id among the rest.
                    let mut ids = asked.to_vec();
                    ids.rotate_left(r * 4);
                    s.get_entries(&ids).await.unwrap();
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    for n in 1..=300u32 {
        let version = s
            .put_document(
                id,
                &vector(n),
                &payload(n),
                n.to_string().as_bytes(),
                Expect::Any,
            )
            .await
            .unwrap();
        let seen = s.get_entries(&[id]).await.unwrap().remove(0).unwrap();
        assert_eq!(
            (seen.version, seen.document),
            (version, n.to_string().into_bytes()),
            "write {n} acknowledged, then an older entry read"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.await.unwrap() > 0, "each reader ran beside the writes");
    }
}

async fn suite(s: &(impl Store + Clone + 'static)) {
    entries_follow_every_write(s).await;
    entries_read_while_written_never_go_back(s).await;
    batches_write_in_order(s).await;
    conditional_batches_write_all_or_nothing(s).await;
    versions_and_conflicts(s).await;
    scan_pages_through_everything(s).await;
    concurrent_writers_get_distinct_versions(s).await;
    racing_conditional_writes_have_one_winner(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_conforms_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("points.redb");
    let id = Uuid::now_v7();
    {
        let s = EmbeddedStore::open(&path).unwrap();
        suite(&s).await;
        s.put(id, &vector(7), &payload(7), Expect::Absent)
            .await
            .unwrap();
    }
    let s = EmbeddedStore::open(&path).unwrap();
    assert_eq!(s.get(id).await.unwrap().unwrap().vector, vector(7));
}

/// An entry cache of a few entries: the records readers ask for keep
/// leaving it and coming back, across the writer's commits, and a read that
/// raced a commit must not put the older entry back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_with_a_tiny_entry_cache_never_reads_behind_a_write() {
    let dir = tempfile::tempdir().unwrap();
    // About eight of the test's entries (an entry over an eighth of the
    // budget is never kept).
    let s = EmbeddedStore::open(dir.path().join("entries.redb"))
        .unwrap()
        .with_entry_cache(8 * 320);
    for _ in 0..4 {
        entries_read_while_written_never_go_back(&s).await;
    }
    let held = s.entry_cache();
    assert!(held.entries > 0 && held.entries < 13, "{held:?}");
    assert!(held.hits > 0 && held.misses > 0, "{held:?}");
}

/// A page cache far smaller than the file: every read past it goes to disk,
/// and the store must behave the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_with_a_tiny_page_cache_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small-cache.redb");
    let s = EmbeddedStore::open_with_cache(&path, 64 * 1024).unwrap();
    suite(&s).await;
    let ids: Vec<Uuid> = (0..2_000).map(|_| Uuid::now_v7()).collect();
    let points = ids
        .iter()
        .enumerate()
        .map(|(i, id)| NewPoint {
            id: *id,
            vector: vector(i as u32),
            payload: payload(i as u32),
            document: vec![b'x'; 512],
        })
        .collect::<Vec<_>>();
    s.put_many(&points).await.unwrap();
    drop(s);
    let s = EmbeddedStore::open_with_cache(&path, 64 * 1024).unwrap();
    let got = s.get_many(&ids).await.unwrap();
    for (i, r) in got.into_iter().enumerate() {
        let r = r.expect("every record reads back");
        assert_eq!(r.vector, vector(i as u32));
        assert_eq!(r.document.len(), 512);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_conforms_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start(dir.path());
    let s = RedisStore::connect(RedisConfig::new(server.url(), "conformance"))
        .await
        .unwrap();
    suite(&s).await;
    let id = Uuid::now_v7();
    let v = s
        .put(id, &vector(7), &payload(7), Expect::Absent)
        .await
        .unwrap();
    server.kill();
    // Down: fails fast and typed, not after the default TCP timeout.
    let started = Instant::now();
    let err = s.get(id).await.unwrap_err();
    assert!(matches!(err, IndexError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    server.restart();
    // Back: the same store object reconnects by itself.
    let mut back = None;
    for _ in 0..50 {
        match s.get(id).await {
            Ok(r) => {
                back = r;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let r = back.expect("the acknowledged write survives a kill -9 with appendfsync always");
    assert_eq!((r.version, r.vector), (v, vector(7)));
}

/// Stores keeping f16 vectors pass the same suite (a vector reads back as
/// `round` says, within 0.1 % of what was written), and records written at
/// f32 read back exactly once the file is reopened at f16.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f16_stores_conform_and_read_older_f32_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open_with(dir.path().join("half.redb"), 1 << 20, VectorPrecision::F16)
        .unwrap();
    suite(&s).await;

    // One file, written at f32, then at f16, then read at f32 again.
    let path = dir.path().join("mixed.redb");
    let (old, fresh) = (Uuid::now_v7(), Uuid::now_v7());
    let embedding: Vec<f32> = (0..384).map(|i| (i as f32 * 0.7).cos() * 0.05).collect();
    EmbeddedStore::open(&path)
        .unwrap()
        .put(old, &embedding, &payload(1), Expect::Absent)
        .await
        .unwrap();
    let half = EmbeddedStore::open_with(&path, 1 << 20, VectorPrecision::F16).unwrap();
    half.put(fresh, &embedding, &payload(2), Expect::Absent)
        .await
        .unwrap();
    drop(half);
    let s = EmbeddedStore::open(&path).unwrap();
    assert_eq!(s.get(old).await.unwrap().unwrap().vector, embedding);
    let back = s.get(fresh).await.unwrap().unwrap().vector;
    assert_ne!(back, embedding, "kept at f16, not f32");
    for (x, y) in embedding.iter().zip(&back) {
        assert!((x - y).abs() <= 1e-3 * 0.05, "{x} read back as {y}");
    }

    let server = RedisServer::start(dir.path());
    let mut config = RedisConfig::new(server.url(), "half");
    config.vector_precision = VectorPrecision::F16;
    let redis = RedisStore::connect(config).await.unwrap();
    suite(&redis).await;
    redis
        .put(fresh, &embedding, &payload(1), Expect::Absent)
        .await
        .unwrap();
    assert_eq!(redis.get(fresh).await.unwrap().unwrap().vector, back);
}

/// `AnyStore`, the one type servers hold, conforms over either store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_store_conforms_over_both_stores() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = AnyStore::from(EmbeddedStore::open(dir.path().join("any.redb")).unwrap());
    suite(&embedded).await;
    let server = RedisServer::start(dir.path());
    let redis = AnyStore::from(
        RedisStore::connect(RedisConfig::new(server.url(), "any"))
            .await
            .unwrap(),
    );
    suite(&redis).await;
}

#[tokio::test]
async fn unreachable_redis_is_unavailable_and_bad_names_are_rejected() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = RedisConfig::new(format!("redis://127.0.0.1:{port}"), "c");
    config.connect_timeout = Duration::from_millis(300);
    let err = RedisStore::connect(config).await.unwrap_err();
    assert!(matches!(err, IndexError::Unavailable(_)), "{err}");
    let err = RedisStore::connect(RedisConfig::new("redis://127.0.0.1:1", "a{b}"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::InvalidParameter {
                name: "collection",
                ..
            }
        ),
        "{err}"
    );
}
