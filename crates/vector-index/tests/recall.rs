//! ANN recall on clustered data, through the graph plans (exact scans disabled).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use vector_index::synthetic::{clustered, ground_truth, recall_at};
use vector_index::{
    BackendKind, Collection, CollectionConfig, Field, Filter, Payload, Plan, Query, Uuid,
};

const N: usize = 5_000;
const DIM: usize = 64;
const QUERIES: usize = 200;

fn build(backend: BackendKind) -> Collection {
    let mut config = CollectionConfig::new(DIM).with_backend(backend);
    config.planner.exact_scan_min = 0;
    config.planner.cost_ratio = Some(0.0);
    let c = Collection::new(config).unwrap();
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

fn recall(backend: BackendKind) {
    let c = build(backend);
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
}

#[test]
fn hnsw_recall_at_10_is_at_least_0_9() {
    recall(BackendKind::Hnsw);
}

#[test]
fn usearch_recall_at_10_is_at_least_0_9() {
    recall(BackendKind::Usearch);
}
