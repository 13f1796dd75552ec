//! Collection snapshots: restore gives the same answers; damage is detected.

use crate::common::collection;
use vector_index::synthetic::clustered;
use vector_index::{BackendKind, Collection, Filter, IndexError, Payload, Query, Strategy, Uuid};

const DIM: usize = 16;

fn build(backend: BackendKind) -> (Collection, Vec<f32>) {
    let c = collection(backend, DIM, 0);
    let data = clustered(3000, DIM, 20, 0.5, 5);
    for (i, row) in data.chunks_exact(DIM).enumerate().take(2000) {
        let mut p = Payload::new(if i % 2 == 0 { "even" } else { "odd" });
        p.tags = vec![format!("t{}", i % 7)];
        c.upsert(Uuid::from_u128(i as u128), row, p).unwrap();
    }
    // Updates and deletes leave retired keys behind in the graph.
    for i in (0..2000).step_by(5) {
        c.upsert(
            Uuid::from_u128(i),
            &data[(2000 + i as usize % 1000) * DIM..][..DIM],
            Payload::new("moved"),
        )
        .unwrap();
    }
    for i in (1..2000).step_by(7) {
        c.delete(Uuid::from_u128(i)).unwrap();
    }
    (c, data)
}

#[test]
fn restored_collections_answer_like_the_original() {
    for backend in BackendKind::ALL {
        let (c, data) = build(backend);
        let bytes = c.snapshot("position 42").unwrap();
        let (r, meta) = Collection::restore(c.config().clone(), &bytes).unwrap();
        assert_eq!(meta, "position 42");
        assert_eq!(r.len(), c.len());
        let mut ids = r.ids_matching(&Filter::all());
        let mut want = c.ids_matching(&Filter::all());
        ids.sort();
        want.sort();
        assert_eq!(ids, want);
        for id in want.iter().take(200) {
            assert_eq!(r.get(*id), c.get(*id), "{backend}");
        }
        for q in data.chunks_exact(DIM).skip(2500).take(50) {
            for f in [
                Filter::all(),
                Filter::all().eq(vector_index::Field::Namespace, "odd"),
            ] {
                let query = Query::new(q.to_vec(), 10)
                    .filter(f)
                    .strategy(Strategy::Exact);
                assert_eq!(
                    r.search(&query).unwrap().hits,
                    c.search(&query).unwrap().hits,
                    "{backend}"
                );
            }
        }
        // The restored collection keeps working, with fresh keys.
        let id = Uuid::from_u128(10_000);
        r.upsert(id, &data[..DIM], Payload::new("new")).unwrap();
        assert!(r.delete(Uuid::from_u128(0)).unwrap());
        let hits = r.search(&Query::new(data[..DIM].to_vec(), 1)).unwrap().hits;
        assert_eq!(hits[0].id, id);
        assert_eq!(r.len(), c.len());
    }
}

#[test]
fn damaged_or_mismatched_snapshots_are_refused() {
    let (c, _) = build(BackendKind::Usearch);
    let bytes = c.snapshot("").unwrap();
    let config = c.config().clone();
    let refuse = |b: &[u8]| match Collection::restore(config.clone(), b) {
        Err(IndexError::CorruptSnapshot(_)) => {}
        other => panic!("expected CorruptSnapshot, got {:?}", other.map(|(_, m)| m)),
    };
    refuse(&[]);
    refuse(&bytes[..bytes.len() / 2]);
    refuse(&bytes[..bytes.len() - 1]);
    for at in [0, 9, 20, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x55;
        refuse(&damaged);
    }
    let mut other_dim = config.clone();
    other_dim.dim = DIM + 1;
    assert!(matches!(
        Collection::restore(other_dim, &bytes),
        Err(IndexError::CorruptSnapshot(_))
    ));
    let other_backend = config.clone().with_backend(BackendKind::Hnsw);
    assert!(matches!(
        Collection::restore(other_backend, &bytes),
        Err(IndexError::CorruptSnapshot(_))
    ));
}
