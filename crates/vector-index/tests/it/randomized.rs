//! Randomised add / upsert / delete / search sequences against brute force.

use crate::common::{Model, collection};
use proptest::prelude::*;
use vector_index::{BackendKind, Field, Filter, IndexError, Payload, Plan, Query, TimeField, Uuid};

const DIM: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        id: u8,
        v: Vec<i8>,
        ns: u8,
        tag: u8,
        t: i64,
    },
    /// Re-upserts a stored point with the vector it has and a new payload
    /// (the update that keeps the point's place in the graph).
    Repay {
        nth: u8,
        ns: u8,
        tag: u8,
        t: i64,
    },
    Delete {
        id: u8,
    },
    Search {
        q: Vec<i8>,
        k: usize,
        filter: u8,
    },
}

fn vector() -> impl Strategy<Value = Vec<i8>> {
    prop::collection::vec(-8i8..=8, DIM).prop_filter("non-zero", |v| v.iter().any(|x| *x != 0))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (any::<u8>(), vector(), 0u8..3, 0u8..4, 0i64..100)
            .prop_map(|(id, v, ns, tag, t)| Op::Upsert { id, v, ns, tag, t }),
        2 => (any::<u8>(), 0u8..3, 0u8..4, 0i64..100)
            .prop_map(|(nth, ns, tag, t)| Op::Repay { nth, ns, tag, t }),
        2 => any::<u8>().prop_map(|id| Op::Delete { id }),
        2 => (vector(), 1usize..12, 0u8..8).prop_map(|(q, k, filter)| Op::Search { q, k, filter }),
    ]
}

fn floats(v: &[i8]) -> Vec<f32> {
    v.iter().map(|x| f32::from(*x)).collect()
}

fn uuid(id: u8) -> Uuid {
    Uuid::from_u128(u128::from(id) + 1)
}

fn payload(ns: u8, tag: u8, t: i64) -> Payload {
    Payload {
        namespace: format!("ns{ns}"),
        agent_id: Some(format!("agent{}", tag % 2)),
        tags: vec![format!("t{tag}"), "all".into()],
        created_at: t,
        updated_at: t,
        expires_at: (tag == 3).then_some(t + 10),
        // An attribute shared with another field's value must not match it.
        attributes: vec![format!("k=v{}", tag % 3), "t1".into()],
        ..Payload::default()
    }
}

fn filter(n: u8) -> Filter {
    match n {
        0 => Filter::all(),
        1 => Filter::all().eq(Field::Namespace, "ns1"),
        2 => Filter::all()
            .eq(Field::Namespace, "ns0")
            .any_of(Field::Tag, ["t1", "t2"]),
        3 => Filter::all().range(TimeField::Created, Some(20), Some(70)),
        4 => Filter::all().eq(Field::Agent, "agent1").not_expired_at(50),
        5 => Filter::all()
            .eq(Field::Attribute, "k=v1")
            .any_of(Field::Tag, ["t1", "t4"]),
        6 => Filter::all().all_tags(["t0", "all"]),
        _ => Filter::all().eq(Field::Namespace, "ns0").not(
            Filter::all()
                .eq(Field::Attribute, "k=v2")
                .range(TimeField::Updated, None, Some(60)),
        ),
    }
}

/// Runs `ops`, checking each search; `exact` says whether plans must be exact.
fn run(backend: BackendKind, exact_scan_max: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let c = collection(backend, DIM, exact_scan_max);
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Upsert { id, v, ns, tag, t } => {
                let replaced = c
                    .upsert(uuid(*id), &floats(v), payload(*ns, *tag, *t))
                    .unwrap();
                prop_assert_eq!(replaced, model.points.contains_key(&uuid(*id)));
                model.upsert(uuid(*id), &floats(v), payload(*ns, *tag, *t));
            }
            Op::Repay { nth, ns, tag, t } => {
                let mut ids: Vec<Uuid> = model.points.keys().copied().collect();
                ids.sort();
                if ids.is_empty() {
                    continue;
                }
                let id = ids[usize::from(*nth) % ids.len()];
                let v = model.points[&id].0.clone();
                prop_assert!(c.upsert(id, &v, payload(*ns, *tag, *t)).unwrap());
                model.upsert(id, &v, payload(*ns, *tag, *t));
            }
            Op::Delete { id } => {
                let existed = c.delete(uuid(*id)).unwrap();
                prop_assert_eq!(existed, model.points.remove(&uuid(*id)).is_some());
            }
            Op::Search { q, k, filter: f } => {
                let q = floats(q);
                let f = filter(*f);
                let got = c
                    .search(&Query::new(q.clone(), *k).filter(f.clone()))
                    .unwrap();
                let want = model.top_k(&q, *k, &f);
                let allowed = model.points.values().filter(|(_, p)| f.matches(p)).count();
                prop_assert_eq!(got.allowed as usize, allowed);
                // Never a disallowed, deleted or duplicated id, always best first.
                let mut seen = std::collections::HashSet::new();
                for h in &got.hits {
                    prop_assert!(seen.insert(h.id), "duplicate {}", h.id);
                    let (_, p) = model.points.get(&h.id).ok_or_else(|| {
                        TestCaseError::fail(format!("returned absent id {}", h.id))
                    })?;
                    prop_assert!(f.matches(p), "returned id outside the filter");
                    let true_score = model.score(h.id, &q).unwrap();
                    prop_assert!((true_score - h.score).abs() < 1e-4);
                }
                prop_assert!(got.hits.windows(2).all(|w| w[0].score >= w[1].score));
                // The fallback guarantees a full page whenever one exists.
                prop_assert_eq!(got.hits.len(), want.len());
                if got.plan.is_exact() {
                    for (h, (_, s)) in got.hits.iter().zip(&want) {
                        prop_assert!(
                            (h.score - s).abs() < 1e-5,
                            "rank score {} vs {}",
                            h.score,
                            s
                        );
                    }
                }
                if exact_scan_max > 0 {
                    prop_assert_eq!(got.plan, Plan::Exact);
                }
            }
        }
        prop_assert_eq!(c.len() as usize, model.points.len());
    }
    c.wait_idle();
    // After everything settles, every point is still readable as written.
    for (id, (v, p)) in &model.points {
        let point = c.get(*id).unwrap();
        prop_assert_eq!(&point.payload, p);
        for (a, b) in point.vector.iter().zip(v) {
            prop_assert!((a - b).abs() < 1e-6);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn exact_plans_match_brute_force_hnsw(ops in prop::collection::vec(op(), 1..200)) {
        run(BackendKind::Hnsw, u64::MAX, &ops)?;
    }

    #[test]
    fn exact_plans_match_brute_force_usearch(ops in prop::collection::vec(op(), 1..200)) {
        run(BackendKind::Usearch, u64::MAX, &ops)?;
    }

    #[test]
    fn graph_plans_stay_inside_the_filter_hnsw(ops in prop::collection::vec(op(), 1..300)) {
        run(BackendKind::Hnsw, 0, &ops)?;
    }

    #[test]
    fn graph_plans_stay_inside_the_filter_usearch(ops in prop::collection::vec(op(), 1..300)) {
        run(BackendKind::Usearch, 0, &ops)?;
    }

    #[test]
    fn exact_plans_match_brute_force_graph(ops in prop::collection::vec(op(), 1..200)) {
        run(BackendKind::Graph, u64::MAX, &ops)?;
    }

    #[test]
    fn graph_plans_stay_inside_the_filter_graph(ops in prop::collection::vec(op(), 1..300)) {
        run(BackendKind::Graph, 0, &ops)?;
    }
}

/// The typed error `normalized` input should produce, if any.
fn expected_error(v: &[f32], dim: usize) -> Option<IndexError> {
    if v.len() != dim {
        return Some(IndexError::DimensionMismatch {
            expected: dim,
            got: v.len(),
        });
    }
    if let Some(index) = v.iter().position(|x| !x.is_finite()) {
        return Some(IndexError::NonFinite { index });
    }
    v.iter()
        .all(|x| *x == 0.0)
        .then_some(IndexError::ZeroVector)
}

fn any_vector() -> impl Strategy<Value = Vec<f32>> {
    let component = prop_oneof![
        4 => any::<f32>(),
        1 => Just(0.0f32),
        1 => Just(f32::NAN),
        1 => Just(f32::MAX),
        1 => Just(f32::MIN_POSITIVE),
    ];
    prop::collection::vec(component, 0..(DIM + 3))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_vector_is_accepted_or_gets_its_typed_error(v in any_vector(), k in 0usize..1500) {
        for backend in BackendKind::ALL {
            let c = collection(backend, DIM, 0);
            let id = uuid(1);
            c.upsert(id, &[1.0; DIM], payload(0, 0, 0)).unwrap();
            let before = c.get(id).unwrap();
            let want = expected_error(&v, DIM);
            match c.upsert(uuid(2), &v, payload(0, 0, 0)) {
                Ok(_) => prop_assert!(want.is_none()),
                Err(e) => prop_assert_eq!(Some(e), want.clone()),
            }
            let k_error = (k == 0 || k > c.config().max_k).then_some(IndexError::InvalidK {
                got: k,
                max: c.config().max_k,
            });
            match c.search(&Query::new(v.clone(), k)) {
                Ok(r) => {
                    prop_assert!(want.is_none() && k_error.is_none());
                    prop_assert!(r.hits.iter().all(|h| h.score.is_finite()));
                }
                Err(e) => prop_assert_eq!(Some(e), k_error.or(want)),
            }
            // A rejected write leaves the earlier point untouched.
            prop_assert_eq!(c.get(id).unwrap(), before);
        }
    }
}
