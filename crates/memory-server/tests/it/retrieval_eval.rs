//! The retrieval-quality sets through the real binary. On
//! eval/retrieval-set.json: hybrid search is never worse than the better
//! single mode by more than a small margin, the default fusion ranks at least
//! as well as the other, and a contextual-text template makes "who" and
//! "when" questions answerable. On eval/conversations-set.json: the default
//! configuration does not drop below the figures docs/benchmarks.md reports,
//! with the built-in embedder and with the local model out of the box.

use crate::support::{Server, config_toml, fetched_model, free_port};
use memory_client::SearchMode;
use retrieval_eval::{self as eval, EvalSet, MODES, Report};

/// How far hybrid may trail the better single mode (recall@10, MRR).
const MARGIN: f64 = 0.01;

const CONTEXTUAL: &str = "template = \"{agent_id} for {user_id} on {created_at:date}: {text}\"\n";

fn load_set(name: &str) -> EvalSet {
    let path = format!("{}/../../eval/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn run(extra: &str) -> Report {
    run_set("retrieval-set.json", extra, &MODES).await
}

async fn run_set(name: &str, extra: &str, modes: &[SearchMode]) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, extra),
    );
    let c = s.client();
    let set = load_set(name);
    let keys = eval::load(&c, &set, &set.namespace).await.unwrap();
    assert_eq!(keys.len(), set.memories.len());
    let report = eval::evaluate(
        &c,
        &set,
        &set.namespace,
        &keys,
        modes,
        &eval::Tuning::default(),
    )
    .await
    .unwrap();
    println!("{}", report.table());
    // What retrieval-eval does after a run: the loaded memories go again.
    eval::unload(&c, &keys).await.unwrap();
    let left = c.namespaces().await.unwrap();
    assert!(
        left.namespaces.iter().all(|n| n.namespace != set.namespace),
        "the set's namespace outlived the run: {left:?}"
    );
    report
}

/// A mode's recall@10 and MRR over all questions.
fn figures(report: &Report, mode: SearchMode) -> (f64, f64) {
    let m = report.mode(mode).unwrap();
    (m.overall.recall_at(10).unwrap(), m.overall.mrr)
}

fn check_hybrid_keeps_up(report: &Report) {
    let (vector10, vector_mrr) = figures(report, SearchMode::Vector);
    let (keyword10, keyword_mrr) = figures(report, SearchMode::Keyword);
    let (hybrid10, hybrid_mrr) = figures(report, SearchMode::Hybrid);
    let best10 = vector10.max(keyword10);
    let best_mrr = vector_mrr.max(keyword_mrr);
    assert!(
        hybrid10 >= best10 - MARGIN,
        "hybrid recall@10 {hybrid10} trails the best single mode's {best10}"
    );
    assert!(
        hybrid_mrr >= best_mrr - MARGIN,
        "hybrid MRR {hybrid_mrr} trails the best single mode's {best_mrr}"
    );
}

#[tokio::test]
async fn hybrid_keeps_up_with_the_best_single_mode_and_templates_add_context() {
    let plain = run("").await;
    check_hybrid_keeps_up(&plain);
    let contextual = run(&format!("[search]\n{CONTEXTUAL}")).await;
    check_hybrid_keeps_up(&contextual);

    // The default fusion (weighted) was chosen on this set: it must rank at
    // least as well as rrf, with and without the template.
    for (template, default) in [("", &plain), (CONTEXTUAL, &contextual)] {
        let rrf = run(&format!("[search]\nfusion = \"rrf\"\n{template}")).await;
        let (w10, w_mrr) = figures(default, SearchMode::Hybrid);
        let (r10, r_mrr) = figures(&rrf, SearchMode::Hybrid);
        assert!(
            w10 >= r10 && w_mrr >= r_mrr,
            "template {template:?}: default fusion R@10 {w10} MRR {w_mrr}, rrf R@10 {r10} MRR {r_mrr}"
        );
    }
    let context_recall = |r: &Report| {
        r.mode(SearchMode::Hybrid).unwrap().by_kind["context"]
            .recall_at(10)
            .unwrap()
    };
    assert!(
        context_recall(&contextual) > context_recall(&plain) + 0.2,
        "who/when questions: {} with the template vs {} without",
        context_recall(&contextual),
        context_recall(&plain)
    );
}

/// Recall@5 and recall@25 of the default configuration (built-in embedder,
/// hybrid weighted search, its default template: a turn's speaker and date,
/// then its text) on eval/conversations-set.json,
/// per kind, as docs/benchmarks.md reports them, less 0.01 for float noise.
/// A change that lowers one fails here; one that raises it should raise
/// the floor.
const CONVERSATION_FLOORS: [(&str, f64, f64); 5] = [
    ("all", 0.491, 0.562),
    ("single-hop", 0.419, 0.419),
    ("multi-hop", 0.494, 0.592),
    ("temporal", 0.79, 0.99),
    ("open-domain", 0.24, 0.24),
];

/// The same with the local model, as the container image runs out of the
/// box (`auto` finds the model: hybrid, alpha 0.7, the `chat` template):
/// recall@5 and @25 as docs/benchmarks.md reports them, less 0.01. These
/// are the figures that meet issue 21's target on this set (0.60 / 0.85).
const LOCAL_CONVERSATION_FLOORS: [(&str, f64, f64); 5] = [
    ("all", 0.734, 0.854),
    ("single-hop", 0.71, 0.856),
    ("multi-hop", 0.755, 0.836),
    ("temporal", 0.902, 0.99),
    ("open-domain", 0.537, 0.704),
];

#[tokio::test]
async fn the_default_configuration_holds_its_recall_on_the_conversation_set() {
    let report = run_set("conversations-set.json", "", &[SearchMode::Hybrid]).await;
    check_floors(&report, &CONVERSATION_FLOORS);
}

#[tokio::test]
async fn the_model_out_of_the_box_holds_its_recall_on_the_conversation_set() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = fetched_model(tmp.path());
    // Only the model directory: provider, alpha and template are the defaults.
    let extra = format!("[embedder]\nmodel_dir = \"{}\"\n", model_dir.display());
    let report = run_set("conversations-set.json", &extra, &[SearchMode::Hybrid]).await;
    check_floors(&report, &LOCAL_CONVERSATION_FLOORS);
}

fn check_floors(report: &Report, floors: &[(&str, f64, f64)]) {
    let hybrid = report.mode(SearchMode::Hybrid).unwrap();
    assert!(hybrid.overall.questions >= 300);
    for &(kind, floor5, floor25) in floors {
        let scores = if kind == "all" {
            &hybrid.overall
        } else {
            &hybrid.by_kind[kind]
        };
        let (r5, r25) = (scores.recall_at(5).unwrap(), scores.recall_at(25).unwrap());
        assert!(
            r5 >= floor5 && r25 >= floor25,
            "{kind}: recall@5 {r5} (floor {floor5}), recall@25 {r25} (floor {floor25})"
        );
    }
}
