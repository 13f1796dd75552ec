//! Helpers shared by vector-index's integration tests: a brute-force model of
//! a collection and every record of a store (Redis servers and polling come
//! from the `test-support` crate).
#![allow(dead_code, clippy::expect_used)]

use std::collections::HashMap;

use vector_index::store::{Cursor, Record, Store};
use vector_index::vector::{dot, normalized};
use vector_index::{BackendKind, Collection, CollectionConfig, Filter, GraphParams, Payload, Uuid};

/// What the collection should contain, kept the obvious way.
#[derive(Default)]
pub struct Model {
    /// Every live point, by id, with its unit vector.
    pub points: HashMap<Uuid, (Vec<f32>, Payload)>,
}

impl Model {
    /// Inserts or replaces a point.
    pub fn upsert(&mut self, id: Uuid, v: &[f32], p: Payload) {
        let unit = normalized(v, v.len()).expect("model vectors are valid");
        self.points.insert(id, (unit, p));
    }

    /// Exact top-k `(id, score)` of the points matching `filter`, best first.
    pub fn top_k(&self, q: &[f32], k: usize, filter: &Filter) -> Vec<(Uuid, f32)> {
        let q = normalized(q, q.len()).expect("model queries are valid");
        let mut all: Vec<(Uuid, f32)> = self
            .points
            .iter()
            .filter(|(_, (_, p))| filter.matches(p))
            .map(|(id, (v, _))| (*id, dot(&q, v)))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    /// True similarity of `id` to `q`, if `id` is present.
    pub fn score(&self, id: Uuid, q: &[f32]) -> Option<f32> {
        let q = normalized(q, q.len()).ok()?;
        self.points.get(&id).map(|(v, _)| dot(&q, v))
    }
}

/// A small-graph configuration: exact scans up to `exact_scan_max` points, graph plans above.
pub fn config(backend: BackendKind, dim: usize, exact_scan_max: u64) -> CollectionConfig {
    let mut c = CollectionConfig::new(dim).with_backend(backend);
    c.graph = GraphParams {
        connectivity: 8,
        ef_construction: 64,
        capacity_hint: 64,
        rebuild_tombstone_ratio: 0.1,
        ..GraphParams::default()
    };
    c.planner.exact_scan_min = exact_scan_max;
    c.planner.cost_ratio = Some(0.0);
    c
}

/// A collection built from [`config`].
pub fn collection(backend: BackendKind, dim: usize, exact_scan_max: u64) -> Collection {
    Collection::new(config(backend, dim, exact_scan_max)).expect("valid config")
}

/// Every record in `store`, once each (scans may repeat), in id order.
pub async fn all_records(store: &impl Store) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut cursor = Cursor::default();
    loop {
        let page = store.scan(cursor, 500).await.expect("scan");
        out.extend(page.records);
        match page.next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    out.sort_by_key(|r| r.id);
    out.dedup_by_key(|r| r.id);
    out
}
