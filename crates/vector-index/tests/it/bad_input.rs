//! Every bad input gets its typed error and leaves the collection unchanged.

use crate::common::collection;
use vector_index::{
    BackendKind, Collection, CollectionConfig, GraphParams, IndexError, Payload, Query, Uuid,
};

const DIM: usize = 4;

fn seeded(backend: BackendKind) -> Collection {
    let c = collection(backend, DIM, u64::MAX);
    c.upsert(
        Uuid::from_u128(1),
        &[1.0, 0.0, 0.0, 0.0],
        Payload::new("ns"),
    )
    .unwrap();
    c
}

#[test]
fn bad_vectors_are_rejected_on_write_and_search() {
    for backend in BackendKind::ALL {
        let c = seeded(backend);
        let id = Uuid::from_u128(1);
        let cases: Vec<(Vec<f32>, IndexError)> = vec![
            (
                vec![1.0; 3],
                IndexError::DimensionMismatch {
                    expected: 4,
                    got: 3,
                },
            ),
            (
                vec![1.0; 5],
                IndexError::DimensionMismatch {
                    expected: 4,
                    got: 5,
                },
            ),
            (
                vec![],
                IndexError::DimensionMismatch {
                    expected: 4,
                    got: 0,
                },
            ),
            (
                vec![1.0, f32::NAN, 0.0, 0.0],
                IndexError::NonFinite { index: 1 },
            ),
            (
                vec![0.0, 0.0, f32::INFINITY, 0.0],
                IndexError::NonFinite { index: 2 },
            ),
            (
                vec![0.0, 0.0, 0.0, f32::NEG_INFINITY],
                IndexError::NonFinite { index: 3 },
            ),
            (vec![0.0; 4], IndexError::ZeroVector),
            (vec![-0.0; 4], IndexError::ZeroVector),
        ];
        for (v, err) in cases {
            assert_eq!(
                c.upsert(id, &v, Payload::new("ns")),
                Err(err.clone()),
                "{backend}"
            );
            assert_eq!(
                c.search(&Query::new(v, 1)).map(|_| ()),
                Err(err),
                "{backend}"
            );
        }
        // Nothing changed: the original point is intact.
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(id).unwrap().vector, vec![1.0, 0.0, 0.0, 0.0]);
    }
}

#[test]
fn extreme_but_finite_vectors_are_accepted() {
    for backend in BackendKind::ALL {
        let c = seeded(backend);
        for (i, v) in [
            [f32::MAX; 4],
            [f32::MIN_POSITIVE; 4],
            [1e-45, 0.0, 0.0, 0.0],
        ]
        .iter()
        .enumerate()
        {
            c.upsert(Uuid::from_u128(10 + i as u128), v, Payload::new("ns"))
                .unwrap();
            let r = c.search(&Query::new(v.to_vec(), 1)).unwrap();
            assert!(r.hits[0].score <= 1.0 + 1e-5, "{backend}");
        }
    }
}

#[test]
fn bad_k_and_ef_are_rejected() {
    for backend in BackendKind::ALL {
        let c = seeded(backend);
        let q = || Query::new(vec![1.0; DIM], 1);
        let max_k = c.config().max_k;
        for k in [0, max_k + 1, usize::MAX] {
            let query = Query { k, ..q() };
            assert_eq!(
                c.search(&query),
                Err(IndexError::InvalidK { got: k, max: max_k })
            );
        }
        for ef in [0, c.config().max_ef + 1, usize::MAX] {
            let err = c.search(&q().ef(ef)).unwrap_err();
            assert!(
                matches!(err, IndexError::InvalidParameter { name: "ef", .. }),
                "{err}"
            );
        }
        assert_eq!(
            c.search(&Query::new(vec![1.0; DIM], max_k))
                .unwrap()
                .hits
                .len(),
            1
        );
    }
}

#[test]
fn bad_payload_is_rejected() {
    for backend in BackendKind::ALL {
        let c = seeded(backend);
        let err = c
            .upsert(Uuid::from_u128(2), &[1.0; DIM], Payload::new(""))
            .unwrap_err();
        assert!(matches!(err, IndexError::InvalidPayload(_)));
        assert_eq!(c.len(), 1);
    }
}

#[test]
fn absurd_graph_parameters_are_typed_errors_not_exits() {
    // hnsw_rs calls `exit` above 256 connections; the check must come first.
    let bad = [
        GraphParams {
            connectivity: 300,
            ..GraphParams::default()
        },
        GraphParams {
            connectivity: 0,
            ..GraphParams::default()
        },
        GraphParams {
            ef_construction: 0,
            ..GraphParams::default()
        },
        GraphParams {
            ef_construction: usize::MAX,
            ..GraphParams::default()
        },
        GraphParams {
            rebuild_tombstone_ratio: 0.0,
            ..GraphParams::default()
        },
        GraphParams {
            rebuild_tombstone_ratio: f64::NAN,
            ..GraphParams::default()
        },
    ];
    for backend in BackendKind::ALL {
        for graph in &bad {
            let mut config = CollectionConfig::new(DIM).with_backend(backend);
            config.graph = graph.clone();
            let err = Collection::new(config).unwrap_err();
            assert!(matches!(err, IndexError::InvalidParameter { .. }), "{err}");
        }
        for dim in [0, 1 << 20] {
            let err =
                Collection::new(CollectionConfig::new(dim).with_backend(backend)).unwrap_err();
            assert!(
                matches!(err, IndexError::InvalidParameter { name: "dim", .. }),
                "{err}"
            );
        }
    }
}

#[test]
fn empty_collections_answer_with_no_hits() {
    for backend in BackendKind::ALL {
        for exact_scan_max in [0, u64::MAX] {
            let c = collection(backend, DIM, exact_scan_max);
            let r = c.search(&Query::new(vec![1.0; DIM], 5)).unwrap();
            assert!(r.hits.is_empty());
            assert_eq!(c.delete(Uuid::from_u128(9)), Ok(false));
            assert!(c.get(Uuid::from_u128(9)).is_none());
        }
    }
}
