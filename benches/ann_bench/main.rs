//! `ann-bench`: recall, latency, throughput and memory of the ANN backends.
//!
//! A benchmark, not a test: it prints a table and writes one JSON object per
//! line. With `--backend all` each backend runs in its own child process, so
//! one backend's freed memory cannot flatter or spoil the next one's RSS.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a CLI tool: failing loudly is right

mod dataset;
mod paired;
mod serve;
#[path = "../common/text.rs"]
mod text;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use serde_json::{Value, json};
use vector_index::synthetic::{ground_truth, recall_at};
use vector_index::{
    BackendKind, Collection, CollectionConfig, Field, Filter, Payload, Quantization, Query,
    Strategy, Uuid,
};

/// Filtered-search selectivities and the tag that selects each: point `i`
/// carries `{tag}-{i % every}`, so each selectivity has `every` disjoint sets
/// and query `j` filters on set `j % every`.
const SELECTIVITIES: [(f64, &str, usize); 5] = [
    (0.5, "p50", 2),
    (0.1, "p10", 10),
    // Near the planner's crossover at 100k points.
    (0.04, "p4", 25),
    (0.01, "p1", 100),
    (0.001, "p01", 1000),
];

/// Measures ANN backends on a dataset directory or on generated clustered data.
#[derive(Parser, Debug, Clone)]
#[command(name = "ann-bench")]
struct Args {
    /// Dataset directory (meta.json, base.f32, queries.f32, gt.i32); generated when absent.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Backend to measure: hnsw, usearch, graph or all (`--serve`: usearch unless named).
    #[arg(long, default_value = "all")]
    backend: String,
    /// Search widths to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    ef: Vec<usize>,
    /// Write one JSON object per line here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Generated data: clustered vectors, or the load bench's texts embedded.
    #[arg(long, value_enum, default_value = "clustered")]
    corpus: dataset::Corpus,
    /// Generated data: the local model's directory (for `--corpus minilm-text`).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Generated data: number of base vectors.
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// Generated data: dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Generated data: number of queries.
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Generated data: random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where generated datasets are cached.
    #[arg(long, default_value = "bench-out")]
    out_dir: PathBuf,
    /// Graph connectivity (M).
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// Construction width (ef_construction).
    #[arg(long, default_value_t = 128)]
    ef_construction: usize,
    /// How usearch stores vectors: f32, f16 or i8.
    #[arg(long, default_value = "f32")]
    quantization: Quantization,
    /// Search width used for the filtered rows.
    #[arg(long, default_value_t = 64)]
    filtered_ef: usize,
    /// Queries used for the forced-plan filtered rows (a forced graph search on a
    /// narrow filter can take 100 ms a query).
    #[arg(long, default_value_t = 100)]
    forced_queries: usize,
    /// Planner cost ratio (graph over exact); default: the backend's measured value.
    #[arg(long)]
    cost_ratio: Option<f64>,
    /// Compare these usearch graphs (e.g. `f16,i8`, or
    /// `f16,f16:efc=100:ef=96`: a quantization, then optionally an
    /// ef_construction and a search width of its own) in one process, their
    /// searches interleaved query by query: speed ratios a noisy machine
    /// cannot skew. Only unfiltered searches are measured.
    #[arg(long, value_delimiter = ',')]
    paired: Vec<paired::Spec>,
    /// Rounds over the queries per search width in `--paired` mode.
    #[arg(long, default_value_t = 5)]
    paired_rounds: usize,
    /// Build one usearch graph (at `--quantization`), then search the slices
    /// of queries asked on stdin: another process interleaves its own
    /// searches with ours (`benches/versus_hnswlib.py --paired`).
    #[arg(long)]
    serve: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("ann-bench: {e}");
        std::process::exit(2);
    }
}

type Error = Box<dyn std::error::Error>;

fn run(mut args: Args) -> Result<(), Error> {
    if args.dataset.is_none() {
        let prefix = match args.corpus {
            dataset::Corpus::Clustered => "synthetic",
            dataset::Corpus::MemoryText => "memory-text",
            dataset::Corpus::MinilmText => "minilm-text",
        };
        let dir = args.out_dir.join(format!(
            "{prefix}-{}x{}-q{}-seed{}",
            args.n, args.dim, args.queries, args.seed
        ));
        if !dir.join("meta.json").exists() {
            eprintln!("generating {} ...", dir.display());
            dataset::generate(
                &dir,
                args.corpus,
                args.n,
                args.queries,
                args.dim,
                args.seed,
                args.model_dir.as_deref(),
            )?;
        }
        args.dataset = Some(dir);
    }
    if !args.paired.is_empty() {
        let dir = args.dataset.clone().unwrap_or_default();
        return paired::run(&args, &dir);
    }
    if args.serve {
        let dir = args.dataset.clone().unwrap_or_default();
        return serve::run(&args, &dir);
    }
    if args.backend == "all" {
        if let Some(path) = &args.json {
            std::fs::File::create(path)?;
        }
        for kind in BackendKind::ALL {
            let status = Command::new(std::env::current_exe()?)
                .args(child_args(&args, kind))
                .status()?;
            if !status.success() {
                return Err(format!("the {kind} run failed").into());
            }
        }
        return Ok(());
    }
    let kind: BackendKind = args.backend.parse()?;
    let dir = args.dataset.clone().unwrap_or_default();
    bench_backend(&args, kind, &dir)
}

fn child_args(args: &Args, kind: BackendKind) -> Vec<String> {
    let mut v = vec![
        "--backend".into(),
        kind.name().into(),
        "--dataset".into(),
        args.dataset
            .clone()
            .unwrap_or_default()
            .display()
            .to_string(),
        "--ef".into(),
        args.ef
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(","),
        "--m".into(),
        args.m.to_string(),
        "--ef-construction".into(),
        args.ef_construction.to_string(),
        "--quantization".into(),
        format!("{:?}", args.quantization).to_lowercase(),
        "--filtered-ef".into(),
        args.filtered_ef.to_string(),
        "--forced-queries".into(),
        args.forced_queries.to_string(),
    ];
    if let Some(r) = args.cost_ratio {
        v.extend(["--cost-ratio".into(), r.to_string()]);
    }
    if let Some(j) = &args.json {
        v.push("--json".into());
        v.push(j.display().to_string());
    }
    v
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn payload(i: usize) -> Payload {
    let mut p = Payload::new("bench");
    for (_, tag, every) in SELECTIVITIES {
        p.tags.push(set_tag(tag, every, i));
    }
    p
}

/// The tag of the allowed set that point (or query) `i` belongs to.
fn set_tag(tag: &str, every: usize, i: usize) -> String {
    format!("{tag}-{}", i % every)
}

/// Exact top-10 of query `j` among the points of its allowed set (`i % every
/// == j % every`). Consecutive queries filter on different sets, as searches
/// scoped to many users or sessions do, so a query never finds its set's
/// vectors left in the CPU cache by the one before (one set for every query
/// measured the exact scan about 5x faster than a server sees it).
fn filtered_truth(base: &[f32], queries: &[f32], dim: usize, every: usize) -> Vec<Vec<u32>> {
    let n_queries = queries.len() / dim;
    let mut truth = vec![Vec::new(); n_queries];
    for set in 0..every.min(n_queries) {
        let members: Vec<f32> = base
            .chunks_exact(dim)
            .skip(set)
            .step_by(every)
            .flatten()
            .copied()
            .collect();
        let asking: Vec<usize> = (set..n_queries).step_by(every).collect();
        let rows: Vec<f32> = asking
            .iter()
            .flat_map(|&j| &queries[j * dim..(j + 1) * dim])
            .copied()
            .collect();
        for (&j, found) in asking.iter().zip(ground_truth(&members, &rows, dim, 10)) {
            truth[j] = found
                .into_iter()
                .map(|i| (i as usize * every + set) as u32)
                .collect();
        }
    }
    truth
}

fn config(args: &Args, kind: BackendKind, dim: usize, n: usize) -> CollectionConfig {
    let mut c = CollectionConfig::new(dim).with_backend(kind);
    c.graph.connectivity = args.m;
    c.graph.ef_construction = args.ef_construction;
    c.graph.quantization = args.quantization;
    // Headroom so the last inserts do not trigger a capacity doubling.
    c.graph.capacity_hint = n + n / 16 + 256;
    c.planner.cost_ratio = args.cost_ratio;
    c
}

/// Inserts every base row with `threads` writers; returns the collection and seconds taken.
fn build(cfg: CollectionConfig, base: &[f32], dim: usize, threads: usize) -> (Collection, f64) {
    let c = Collection::new(cfg).expect("valid config");
    let n = base.len() / dim;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let c = &c;
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let row = &base[i * dim..(i + 1) * dim];
                    c.upsert(Uuid::from_u128(i as u128), row, payload(i))
                        .expect("insert");
                }
            });
        }
    });
    (c, start.elapsed().as_secs_f64())
}

struct Run {
    recall: f64,
    qps: f64,
    p50_us: f64,
    p99_us: f64,
    plan: String,
}

fn search_all(
    c: &Collection,
    queries: &[f32],
    dim: usize,
    truth: &[Vec<u32>],
    q: impl Fn(usize, Vec<f32>) -> Query,
) -> Run {
    let mut lat = Vec::with_capacity(truth.len());
    let mut found = Vec::with_capacity(truth.len());
    let mut plans = std::collections::BTreeMap::<&str, usize>::new();
    let start = Instant::now();
    for (j, row) in queries.chunks_exact(dim).enumerate() {
        let t = Instant::now();
        let r = c.search(&q(j, row.to_vec())).expect("search");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        *plans.entry(r.plan.name()).or_default() += 1;
        found.push(
            r.hits
                .iter()
                .map(|h| h.id.as_u128() as u32)
                .collect::<Vec<_>>(),
        );
    }
    let total = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let plan = plans
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(p, _)| p.to_string())
        .unwrap_or_default();
    Run {
        recall: recall_at(10, &found, truth),
        qps: lat.len() as f64 / total,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        plan,
    }
}

fn bench_backend(args: &Args, kind: BackendKind, dir: &Path) -> Result<(), Error> {
    let ds = dataset::load(dir)?;
    let (dim, n) = (ds.meta.dim, ds.meta.n_base);
    if u32::try_from(n).is_err() || ds.meta.gt_k < 10 {
        return Err("need fewer than 2^32 base vectors and gt_k >= 10".into());
    }
    let raw_per_vector = (dim * 4) as f64;
    println!(
        "\n== {kind}: {n} x {dim}, {} queries, M={}, ef_construction={}, quantization={:?}",
        ds.meta.n_queries, args.m, args.ef_construction, args.quantization
    );

    // Two-thread build first, measured for memory (a fresh process), then kept for queries.
    let rss0 = rss_bytes();
    let (c, build2) = build(config(args, kind, dim, n), &ds.base, dim, 2);
    c.wait_idle();
    let rss_growth = rss_bytes().saturating_sub(rss0) as f64;
    let own_bytes = c.stats().backend_bytes as f64;
    let (one, build1) = build(config(args, kind, dim, n), &ds.base, dim, 1);
    drop(one);
    let ips1 = n as f64 / build1;
    let ips2 = n as f64 / build2;
    println!(
        "build: 1 thread {build1:.1} s ({ips1:.0} inserts/s), 2 threads {build2:.1} s ({ips2:.0} inserts/s)"
    );
    println!(
        "memory per vector: index's own figure {:.0} B ({:.2}x raw), RSS growth {:.0} B ({:.2}x raw); raw = {raw_per_vector} B",
        own_bytes / n as f64,
        own_bytes / n as f64 / raw_per_vector,
        rss_growth / n as f64,
        rss_growth / n as f64 / raw_per_vector
    );

    let mut json = match &args.json {
        Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    let mut emit = |v: Value| -> Result<(), Error> {
        if let Some(f) = json.as_mut() {
            writeln!(f, "{v}")?;
        }
        Ok(())
    };
    let common = json!({
        "backend": kind.name(), "n": n, "dim": dim, "m": args.m,
        "ef_construction": args.ef_construction,
        "quantization": format!("{:?}", args.quantization).to_lowercase(),
        "build_s": build1, "build_s_2t": build2,
        "inserts_per_s": ips2, "inserts_per_s_1t": ips1,
        "bytes_per_vector": own_bytes / n as f64,
        "bytes_per_vector_rss": rss_growth / n as f64,
    });
    let with = |extra: Value| {
        let mut v = common.clone();
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    };

    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>9}  plan",
        "ef", "recall@10", "QPS", "p50 us", "p99 us"
    );
    for &ef in &args.ef {
        let r = search_all(&c, &ds.queries, dim, &ds.gt, |_, v| {
            Query::new(v, 10).ef(ef).strategy(Strategy::Graph)
        });
        println!(
            "{ef:>6} {:>9.4} {:>9.0} {:>9.0} {:>9.0}  {}",
            r.recall, r.qps, r.p50_us, r.p99_us, r.plan
        );
        emit(with(json!({
            "ef": ef, "recall_at_10": r.recall, "qps": r.qps,
            "p50_us": r.p50_us, "p99_us": r.p99_us, "plan": r.plan,
        })))?;
    }

    println!("filtered, ef={}:", args.filtered_ef);
    println!(
        "{:>11} {:>8} {:>9} {:>9} {:>9} {:>9}  plan",
        "selectivity", "strategy", "recall@10", "QPS", "p50 us", "p99 us"
    );
    // Per selectivity: (allowed, exact p50, graph p50), to estimate the planner's cost ratio.
    let mut forced: Vec<(f64, f64, f64)> = Vec::new();
    for (sel, tag, every) in SELECTIVITIES {
        let allowed = n.div_ceil(every) as f64;
        let (mut exact_p50, mut graph_p50) = (0.0, 0.0);
        let truth = filtered_truth(&ds.base, &ds.queries, dim, every);
        for (name, strategy) in [
            ("auto", Strategy::Auto),
            ("exact", Strategy::Exact),
            ("graph", Strategy::Graph),
        ] {
            let count = if strategy == Strategy::Auto {
                ds.meta.n_queries
            } else {
                args.forced_queries.min(ds.meta.n_queries)
            };
            let (queries, truth) = (&ds.queries[..count * dim], &truth[..count]);
            let r = search_all(&c, queries, dim, truth, |j, v| {
                Query::new(v, 10)
                    .ef(args.filtered_ef)
                    .filter(Filter::all().eq(Field::Tag, set_tag(tag, every, j)))
                    .strategy(strategy)
            });
            println!(
                "{sel:>11} {name:>8} {:>9.4} {:>9.0} {:>9.0} {:>9.0}  {}",
                r.recall, r.qps, r.p50_us, r.p99_us, r.plan
            );
            emit(with(json!({
                "ef": args.filtered_ef, "selectivity": sel, "strategy": name, "plan": r.plan,
                "recall_at_10": r.recall, "qps": r.qps, "p50_us": r.p50_us, "p99_us": r.p99_us,
                "queries": count,
            })))?;
            match strategy {
                Strategy::Exact => exact_p50 = r.p50_us,
                Strategy::Graph => graph_p50 = r.p50_us,
                Strategy::Auto => {}
            }
        }
        forced.push((allowed, exact_p50, graph_p50));
    }
    // exact ≈ e * allowed and filtered graph ≈ g * live / allowed, so g / e =
    // (graph * allowed / live) / (exact / allowed).
    let mut ratios: Vec<f64> = forced
        .iter()
        .filter(|(a, e, g)| *a > 0.0 && *e > 0.0 && *g > 0.0)
        .map(|(a, e, g)| (g * a / n as f64) / (e / a))
        .collect();
    ratios.sort_by(f64::total_cmp);
    if let Some(median) = ratios.get(ratios.len() / 2) {
        let formatted: Vec<String> = ratios.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "planner cost ratio g/e per selectivity: [{}], median {median:.0} (exact below {:.0} allowed points at this size)",
            formatted.join(", "),
            (median * n as f64).sqrt()
        );
        emit(with(
            json!({ "cost_ratio_median": median, "cost_ratios": ratios }),
        ))?;
    }
    Ok(())
}
