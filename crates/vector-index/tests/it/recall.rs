//! ANN recall on clustered data, through the graph plans (exact scans disabled).

use vector_index::synthetic::{clustered, ground_truth, recall_at};
use vector_index::{
    BackendKind, Collection, CollectionConfig, Field, Filter, IndexError, Payload, Plan,
    Quantization, Query, Strategy, Uuid,
};

const N: usize = 5_000;
const DIM: usize = 64;
const QUERIES: usize = 200;

fn graph_only(backend: BackendKind, quantization: Quantization) -> CollectionConfig {
    let mut config = CollectionConfig::new(DIM).with_backend(backend);
    config.planner.exact_scan_min = 0;
    config.planner.cost_ratio = Some(0.0);
    config.graph.quantization = quantization;
    config
}

fn build(backend: BackendKind, quantization: Quantization) -> Collection {
    let c = Collection::new(graph_only(backend, quantization)).unwrap();
    let (base, _) = data();
    for (i, row) in base.chunks_exact(DIM).enumerate() {
        let mut p = Payload::new("ns");
        // Half the points carry the tag: a 50% filter.
        if i % 2 == 0 {
            p.tags.push("even".into());
        }
        c.upsert(Uuid::from_u128(i as u128), row, p).unwrap();
    }
    c
}

/// Base rows and queries drawn from the same clusters.
fn data() -> (Vec<f32>, Vec<f32>) {
    let mut base = clustered(N + QUERIES, DIM, 50, 0.5, 7);
    let queries = base.split_off(N * DIM);
    (base, queries)
}

fn as_index(id: Uuid) -> u32 {
    id.as_u128() as u32
}

fn recall(backend: BackendKind, quantization: Quantization) -> Collection {
    let c = build(backend, quantization);
    let (base, queries) = data();
    let truth = ground_truth(&base, &queries, DIM, 10);
    let found: Vec<Vec<u32>> = queries
        .chunks_exact(DIM)
        .map(|q| {
            let r = c.search(&Query::new(q.to_vec(), 10)).unwrap();
            assert_eq!(r.plan, Plan::Graph);
            r.hits.iter().map(|h| as_index(h.id)).collect()
        })
        .collect();
    let r = recall_at(10, &found, &truth);
    assert!(r >= 0.9, "{backend}: recall@10 = {r}");

    // Filtered: truth restricted to the even rows.
    let even: Vec<f32> = base
        .chunks_exact(DIM)
        .step_by(2)
        .flatten()
        .copied()
        .collect();
    let truth: Vec<Vec<u32>> = ground_truth(&even, &queries, DIM, 10)
        .into_iter()
        .map(|t| t.into_iter().map(|i| i * 2).collect())
        .collect();
    let filter = Filter::all().eq(Field::Tag, "even");
    let found: Vec<Vec<u32>> = queries
        .chunks_exact(DIM)
        .map(|q| {
            let r = c
                .search(&Query::new(q.to_vec(), 10).filter(filter.clone()))
                .unwrap();
            assert_ne!(r.plan, Plan::Exact);
            assert!(r.hits.iter().all(|h| as_index(h.id).is_multiple_of(2)));
            r.hits.iter().map(|h| as_index(h.id)).collect()
        })
        .collect();
    let r = recall_at(10, &found, &truth);
    assert!(r >= 0.9, "{backend}: filtered recall@10 = {r}");
    c
}

#[test]
fn hnsw_recall_at_10_is_at_least_0_9() {
    recall(BackendKind::Hnsw, Quantization::F32);
}

#[test]
fn usearch_recall_at_10_is_at_least_0_9() {
    recall(BackendKind::Usearch, Quantization::F32);
}

#[test]
fn graph_recall_at_10_is_at_least_0_9_at_f32_f16_and_i8() {
    recall(BackendKind::Graph, Quantization::F32);
    recall(BackendKind::Graph, Quantization::F16);
    recall(BackendKind::Graph, Quantization::I8);
}

#[test]
fn usearch_f16_keeps_recall_and_its_snapshot_restores_the_same_graph() {
    let c = recall(BackendKind::Usearch, Quantization::F16);
    let bytes = c.snapshot("").unwrap();
    let (base, queries) = data();
    // Exact scans read the stored halves back: the ranking is brute force's.
    let truth = ground_truth(&base, &queries, DIM, 10);
    let found: Vec<Vec<u32>> = queries
        .chunks_exact(DIM)
        .map(|q| {
            let r = c
                .search(&Query::new(q.to_vec(), 10).strategy(Strategy::Exact))
                .unwrap();
            assert_eq!(r.plan, Plan::Exact);
            r.hits.iter().map(|h| as_index(h.id)).collect()
        })
        .collect();
    let r = recall_at(10, &found, &truth);
    assert!(r >= 0.99, "f16 exact recall@10 = {r}");
    // Restored under either setting, the saved f16 graph answers alike.
    for setting in [Quantization::F16, Quantization::F32] {
        let (restored, _) =
            Collection::restore(graph_only(BackendKind::Usearch, setting), &bytes).unwrap();
        for q in queries.chunks_exact(DIM).take(20) {
            let query = Query::new(q.to_vec(), 10);
            let ids = |c: &Collection| -> Vec<Uuid> {
                c.search(&query)
                    .unwrap()
                    .hits
                    .iter()
                    .map(|h| h.id)
                    .collect()
            };
            assert_eq!(ids(&restored), ids(&c));
        }
    }
}

#[test]
fn hnsw_refuses_quantized_vectors_with_a_typed_error() {
    let err = Collection::new(graph_only(BackendKind::Hnsw, Quantization::F16)).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::InvalidParameter {
                name: "quantization",
                ..
            }
        ),
        "{err}"
    );
}
