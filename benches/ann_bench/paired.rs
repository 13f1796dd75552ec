//! `--paired`: usearch at several quantizations in one process, their
//! searches interleaved query by query (each query asks every graph, in an
//! order that turns from query to query), so a machine whose speed moves
//! from second to second slows each of them alike. Prints each one's QPS and
//! recall, and its speed against the first, per search width: the medians
//! over `--paired-rounds` rounds, and the spread of the per-round ratios.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde_json::json;
use vector_index::synthetic::recall_at;
use vector_index::{BackendKind, Collection, Query, Strategy};

use super::{Args, Error, build, config, dataset};

/// Builds one graph per quantization of `args.paired`, then measures them side by side.
pub(super) fn run(args: &Args, dir: &Path) -> Result<(), Error> {
    let ds = dataset::load(dir)?;
    let (dim, n) = (ds.meta.dim, ds.meta.n_base);
    let mut systems: Vec<(String, Collection)> = Vec::new();
    for q in &args.paired {
        let mut one = args.clone();
        one.quantization = *q;
        let (c, secs) = build(config(&one, BackendKind::Usearch, dim, n), &ds.base, dim, 2);
        c.wait_idle();
        let name = format!("{q:?}").to_lowercase();
        println!("{name}: built in {secs:.1} s on 2 threads");
        systems.push((name, c));
    }
    let mut json = match &args.json {
        Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    println!(
        "\n== paired: {n} x {dim}, {} queries, M={}, ef_construction={}, {} rounds, median QPS (recall@10), speed against {}",
        ds.meta.n_queries, args.m, args.ef_construction, args.paired_rounds, systems[0].0
    );
    for &ef in &args.ef {
        // Seconds spent per round and system, and each system's answers (first round).
        let mut secs = vec![vec![0f64; systems.len()]; args.paired_rounds];
        let mut found = vec![Vec::with_capacity(ds.meta.n_queries); systems.len()];
        for (round, spent) in secs.iter_mut().enumerate() {
            for (j, row) in ds.queries.chunks_exact(dim).enumerate() {
                let turn = (j + round) % systems.len();
                for s in (0..systems.len()).map(|i| (i + turn) % systems.len()) {
                    let query = Query::new(row.to_vec(), 10)
                        .ef(ef)
                        .strategy(Strategy::Graph);
                    let t = Instant::now();
                    let r = systems[s].1.search(&query).expect("search");
                    spent[s] += t.elapsed().as_secs_f64();
                    if round == 0 {
                        found[s].push(r.hits.iter().map(|h| h.id.as_u128() as u32).collect());
                    }
                }
            }
        }
        let mut line = format!("ef {ef:>4}:");
        for (s, (name, _)) in systems.iter().enumerate() {
            let recall = recall_at(10, &found[s], &ds.gt);
            let qps = median(
                secs.iter()
                    .map(|r| ds.meta.n_queries as f64 / r[s])
                    .collect(),
            );
            let ratios: Vec<f64> = secs.iter().map(|r| r[0] / r[s]).collect();
            let (low, high) = spread(&ratios);
            let ratio = median(ratios.clone());
            line += &format!("  {name} {qps:>6.0} ({recall:.4})");
            if s > 0 {
                line += &format!(" {ratio:.2}x [{low:.2}-{high:.2}]");
            }
            if let Some(f) = json.as_mut() {
                writeln!(
                    f,
                    "{}",
                    json!({
                        "paired": true, "quantization": name, "ef": ef, "n": n, "dim": dim,
                        "m": args.m, "ef_construction": args.ef_construction,
                        "recall_at_10": recall, "qps_median": qps,
                        "speed_vs_first_median": ratio, "speed_vs_first_rounds": ratios,
                    })
                )?;
            }
        }
        println!("{line}");
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn spread(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}
